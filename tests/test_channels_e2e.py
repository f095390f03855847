"""Whole conversations over WeChat and Telegram, through the running stack and a trained model.

The gateway talks to local fakes of the WeChat API and the Telegram Bot API (started by
``channel_fakes`` in conftest); customers are simulated the way each platform delivers
them: signed, encrypted XML pushes and secret-token Bot API updates. Assertions read the
ticket rows and the transcript, not the exact wording of answers.
"""
from __future__ import annotations

import concurrent.futures
import itertools
import time

import pytest

from bot.profile import business as profile
from bot.store.tickets import TicketStore
from bot.store.transcripts import TranscriptStore
from tests.channel_harness import eventually
from tests.fakes.telegram import TELEGRAM_SECRET, TELEGRAM_TOKEN, TelegramCustomer
from tests.fakes.wechat import (WECHAT_AES_KEY, WECHAT_APPID, WECHAT_SECRET, WECHAT_TOKEN,
                                WeChatPusher, option)

pytestmark = pytest.mark.e2e

_ids = itertools.count(1)


class WeChatCustomer:
    def __init__(self, assistant, fakes, name: str) -> None:
        self.pusher = WeChatPusher(f"{assistant.url}/webhooks/wechat", WECHAT_TOKEN, WECHAT_APPID,
                                   WECHAT_AES_KEY)
        self.api = fakes.wechat
        self.openid = f"oKefu_{name}_{next(_ids)}_{int(time.time())}"

    @property
    def conversation_id(self) -> str:
        return f"wechat:{self.openid}"

    def answer(self, status_reply) -> str:
        """The passive reply, or (when the bot took longer than WeChat waits) the pushed one."""
        status, reply = status_reply
        assert status == 200, status_reply
        if reply != "success":
            return reply
        before = len(self.api.sent_to(self.openid))
        return "\n\n".join(eventually(lambda: self.api.sent_to(self.openid)[before:], 60))

    def say(self, text: str) -> str:
        return self.answer(self.pusher.post(self.pusher.message_xml(self.openid, content=text)))

    def subscribe(self) -> str:
        return self.answer(self.pusher.post(self.pusher.message_xml(self.openid, "event",
                                                                    event="subscribe")))


@pytest.fixture
def wechat_customer(assistant, channel_fakes, request):
    return WeChatCustomer(assistant, channel_fakes, request.node.name[5:25])


@pytest.fixture
def telegram_customer(assistant, channel_fakes):
    return TelegramCustomer(f"{assistant.url}/webhooks/telegram", TELEGRAM_SECRET,
                            channel_fakes.telegram, 880000 + next(_ids))


def tickets_of(conversation_id):
    return TicketStore().for_customer(conversation_id, open_only=False)


# --- WeChat -----------------------------------------------------------------------------------


def test_wechat_faq_answer(wechat_customer):
    facts = profile.load_profile()
    reply = wechat_customer.say("运费怎么算的")
    assert f"{facts['shipping']['free_over_yuan']}元" in reply


def test_wechat_complaint_with_numbered_buttons_becomes_a_ticket(wechat_customer):
    welcome = wechat_customer.subscribe()
    reply = wechat_customer.say(option(welcome, "我要投诉"))        # the welcome's button, by number
    reply = wechat_customer.say(option(reply, "物流配送"))           # the category's button
    wechat_customer.say("快递员把我的冰箱磕坏了，态度还很差")
    wechat_customer.say("DD202611200088")
    reply = wechat_customer.say("13812345678")
    [ticket] = tickets_of(wechat_customer.conversation_id)
    assert ticket.kind == "complaint" and ticket.category == "物流配送"
    assert ticket.channel == "wechat" and ticket.customer_id == f"wechat:{wechat_customer.openid}"
    assert ticket.number in reply and ticket.phone == "138****5678"


def test_wechat_triple_retry_is_processed_once(wechat_customer):
    pusher = wechat_customer.pusher
    xml = pusher.message_xml(wechat_customer.openid, content="保修期是多久")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: pusher.post(xml), range(4)))
    assert all(status == 200 for status, _ in results)
    texts = {reply for _, reply in results} - {"success"}
    assert len(texts) <= 1                                    # the same reply, or success
    lines = TranscriptStore().transcript(wechat_customer.conversation_id)
    assert [line["text"] for line in lines if line["author"] == "customer"] == ["保修期是多久"]


def test_wechat_forged_signature_is_refused(wechat_customer):
    pusher = wechat_customer.pusher
    assert pusher.post(pusher.message_xml(wechat_customer.openid, content="你好"),
                       forge=True)[0] == 403
    assert TranscriptStore().transcript(wechat_customer.conversation_id) == []


# --- Telegram ---------------------------------------------------------------------------------


def test_telegram_faq_answer(telegram_customer):
    facts = profile.load_profile()
    replies = telegram_customer.say("运费怎么算的")
    assert f"{facts['shipping']['free_over_yuan']}元" in "\n".join(r["text"] for r in replies)


def test_telegram_complaint_with_inline_buttons_becomes_a_ticket(telegram_customer, channel_fakes):
    [greeting] = telegram_customer.say("/start")
    replies = telegram_customer.press(greeting, "我要投诉")
    [category] = [r for r in replies if r.get("reply_markup")]
    telegram_customer.press(category, "物流配送")
    telegram_customer.say("快递员把我的冰箱磕坏了，态度还很差")
    telegram_customer.say("DD202611200088")
    replies = telegram_customer.say("13812345678")
    conversation = f"telegram:{telegram_customer.chat_id}"
    [ticket] = tickets_of(conversation)
    assert ticket.kind == "complaint" and ticket.category == "物流配送"
    assert ticket.channel == "telegram" and ticket.customer_id == conversation
    assert ticket.number in "\n".join(r["text"] for r in replies)
    methods = channel_fakes.telegram.methods()
    assert "answerCallbackQuery" in methods and "editMessageReplyMarkup" in methods


def test_telegram_wrong_secret_is_refused(telegram_customer):
    assert telegram_customer.post(telegram_customer.message_update("你好"), secret="nope") == 403
    assert TranscriptStore().transcript(f"telegram:{telegram_customer.chat_id}") == []


# --- a person answers on the customer's own channel (the senders contract) --------------------


def _agent_replies(assistant, conversation_id: str, *texts: str) -> None:
    from tests.handoff_helpers import AgentClient, make_agent

    agent = AgentClient(assistant.url).login(*make_agent("ch"))
    handoff = agent.handoff_for(conversation_id)
    status, _ = agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/claim", {})
    assert status == 200
    for text in texts:
        if callable(text):
            text = text()
        status, _ = agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/reply", {"text": text})
        assert status == 200


def test_wechat_agent_reply_arrives_as_a_customer_service_message(assistant, wechat_customer):
    wechat_customer.say("转人工")
    _agent_replies(assistant, wechat_customer.conversation_id, "您好，我是客服小艾。")
    sent = eventually(lambda: [t for t in wechat_customer.api.sent_to(wechat_customer.openid)
                               if "客服小艾" in t], 60)
    assert sent == ["您好，我是客服小艾。"]


def test_wechat_expired_access_token_is_refreshed_once(assistant, wechat_customer, channel_fakes):
    api, openid = channel_fakes.wechat, wechat_customer.openid
    wechat_customer.say("转人工")

    def expire_after_first():
        eventually(lambda: any("第一条" in t for t in api.sent_to(openid)), 60)
        api.expire_all()                          # WeChat now answers 42001 for that token
        expire_after_first.fetches = api.token_fetches
        return "第二条：令牌过期之后"

    _agent_replies(assistant, wechat_customer.conversation_id, "第一条", expire_after_first)
    assert eventually(lambda: any("第二条" in t for t in api.sent_to(openid)), 60)
    assert api.token_fetches == expire_after_first.fetches + 1


def test_telegram_agent_reply_arrives_in_the_chat(assistant, telegram_customer):
    telegram_customer.say("转人工")
    _agent_replies(assistant, f"telegram:{telegram_customer.chat_id}", "您好，我是客服小艾。")
    sent = eventually(lambda: [m["text"] for m in telegram_customer.api.sent(telegram_customer.chat_id)
                               if "客服小艾" in m["text"]], 60)
    assert sent == ["您好，我是客服小艾。"]


def test_no_credential_or_phone_reaches_the_gateway_log(assistant, channel_fakes):
    log = (assistant.log_dir / "gateway.log").read_text(encoding="utf-8")
    assert "wechat connector on" in log                        # the log is the right one
    for secret in (TELEGRAM_TOKEN, TELEGRAM_SECRET, WECHAT_SECRET, WECHAT_AES_KEY,
                   *channel_fakes.wechat.valid_tokens, *channel_fakes.wechat.expired_tokens):
        assert secret not in log
    assert "13812345678" not in log
