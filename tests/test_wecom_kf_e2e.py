"""Whole 微信客服 conversations through a running stack and a really trained model.

The stack (action server, Rasa, gateway) runs as real processes with its own database; WeCom
is :class:`tests.fakes.wecom.FakeWeCom` in this process, speaking WeCom's wire format both
ways (encrypted callbacks to the gateway, the ``/cgi-bin/kf`` API the gateway calls).
Assertions read the fake's record of what was sent, the ticket rows and the transcript.
"""
from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from cryptography.fernet import Fernet

from bot.profile import business as profile
from bot.store.agents import AgentStore
from bot.store.engine import engine_for
from bot.store.handoffs import HandoffStore
from bot.store.tickets import TicketStore
from bot.store.transcripts import TranscriptStore
from tests.channel_harness import eventually
from tests.conftest import FAKE_NOW, start_stack
from tests.fakes.wechat import option
from tests.fakes.wecom import FakeWeCom
from tests.handoff_helpers import AgentClient

pytestmark = pytest.mark.e2e

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def wecom():
    api = FakeWeCom().start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def kf_stack(trained_model, wecom, tmp_path_factory):
    work = tmp_path_factory.mktemp("kefu-wecom-kf")
    url = f"sqlite:///{work}/kefu.db"
    stack = start_stack(trained_model, work, {
        "KEFU_DATABASE_URL": url, "KEFU_DATA_KEY": Fernet.generate_key().decode(),
        "KEFU_FAKE_NOW": FAKE_NOW, **wecom.env("kefu")})
    wecom.connect(stack.url)
    stack.engine = engine_for(url)          # this process reads the stack's database
    yield stack
    stack.stop()


class KfCustomer:
    """A WeChat user writing to the 微信客服 account; WeCom delivers and records."""

    def __init__(self, stack, api: FakeWeCom, name: str) -> None:
        self.stack, self.api = stack, api
        self.user = f"wm{name}{next(_ids)}{int(time.time()) % 100000}"

    @property
    def conversation_id(self) -> str:
        return f"wecom_kf:{self.user}"

    def received(self):
        return self.api.sent_to(self.user)

    def wait_replies(self, before: int, timeout: float = 60) -> str:
        """Everything sent after ``before`` once the bot's answer has settled."""
        eventually(lambda: len(self.received()) > before, timeout)
        settled, count = time.monotonic(), len(self.received())
        while time.monotonic() - settled < 1.0:          # a second without a new message
            time.sleep(0.1)
            if len(self.received()) != count:
                settled, count = time.monotonic(), len(self.received())
        got = self.received()[before:]
        assert got, "no reply"
        return "\n\n".join(got)

    def say(self, text: str, times: int = 1) -> str:
        before = len(self.received())
        self.api.customer_message(self.user, text)
        assert all(r == (200, "success") for r in self.api.notify(times=times))
        return self.wait_replies(before)

    def enter(self) -> str:
        self.api.enter_session(self.user)
        self.api.notify()
        [welcome] = eventually(lambda: [c for c in self.api.sent_calls(self.user)
                                        if c["kind"] == "on_event"], 60)
        return welcome["text"]["content"]

    def lines(self, author: str | None = None):
        rows = TranscriptStore(self.stack.engine).transcript(self.conversation_id)
        return [r for r in rows if author is None or r["author"] == author]


@pytest.fixture
def customer(kf_stack, wecom, request):
    return KfCustomer(kf_stack, wecom, request.node.name[5:20].replace("_", ""))


# --- the protocol -------------------------------------------------------------------------------


def test_url_verification_and_forged_callbacks(kf_stack, wecom):
    cb = wecom.callbacks
    assert cb.verify("7413009851209") == (200, "7413009851209")
    assert cb.verify("7413009851209", forge=True)[0] == 403
    assert cb.post_event("wkAJ2GCAAAkefuTestAccount0001", "ENCx", forge=True)[0] == 403
    assert cb.post_event("wkAJ2GCAAAkefuTestAccount0001", "ENCx",
                         receive_id="wwsomeothercorp0000")[0] == 403
    assert cb.post_raw(b"<xml><nope/>", cb.signed_query(""))[0] == 400
    assert cb.post_raw(b"<xml><ToUserName>x</ToUserName></xml>", cb.signed_query(""))[0] == 400


# --- whole conversations ------------------------------------------------------------------------


def test_faq_answer(customer):
    facts = profile.load_profile()
    reply = customer.say("运费怎么算的")
    assert f"{facts['shipping']['free_over_yuan']}元" in reply


def test_welcome_then_complaint_becomes_a_ticket(customer, kf_stack):
    welcome = customer.enter()
    reply = customer.say(option(welcome, "我要投诉"))          # the welcome's option, by number
    reply = customer.say(option(reply, "物流配送"))
    customer.say("快递员把我的冰箱磕坏了，态度还很差")
    customer.say("DD202611200088")
    reply = customer.say("13812345678")
    [ticket] = TicketStore(kf_stack.engine).for_customer(customer.conversation_id, open_only=False)
    assert ticket.kind == "complaint" and ticket.category == "物流配送"
    assert ticket.channel == "wecom_kf" and ticket.number in reply
    assert ticket.phone == "138****5678"


def test_triple_callback_and_relisted_cursor_answer_once(customer, wecom):
    reply = customer.say("保修期是多久", times=3)
    wecom.relist_next = 1                        # WeCom's next cursor re-lists that message
    customer.api.customer_message(customer.user, "运费怎么算的")
    wecom.notify(times=3)
    eventually(lambda: len(customer.received()) >= 2, 60)
    time.sleep(2.0)
    assert customer.received()[0] == reply and len(customer.received()) == 2
    assert [l["text"] for l in customer.lines("customer")] == ["保修期是多久", "运费怎么算的"]


def test_has_more_pages(customer, wecom):
    wecom.page_size = 1
    try:
        for text in ("运费怎么算的", "保修期是多久", "可以开发票吗"):
            wecom.customer_message(customer.user, text)
        wecom.notify()
        eventually(lambda: len(customer.received()) >= 3, 90)
    finally:
        wecom.page_size = 1000
    assert [l["text"] for l in customer.lines("customer")] == ["运费怎么算的", "保修期是多久",
                                                                "可以开发票吗"]
    assert len(customer.received()) == 3


def test_non_text_message(customer):
    before = len(customer.received())
    customer.api.customer_message(customer.user, msgtype="image")
    customer.api.notify()
    reply = customer.wait_replies(before)
    assert "文字" in reply
    assert [l["text"] for l in customer.lines("customer")] == ["[图片]"]


def test_expired_token_is_refreshed(customer, wecom):
    customer.say("你好")
    fetches = wecom.token_fetches
    wecom.expire_all()
    facts = profile.load_profile()
    assert f"{facts['shipping']['free_over_yuan']}元" in customer.say("运费怎么算的")
    assert wecom.token_fetches == fetches + 1


def test_handoff_to_kefu_console_and_the_agent_reply_arrives(customer, kf_stack):
    customer.say("转人工")
    name, password = f"kf-{next(_ids)}-{int(time.time()) % 10000}", "a-long-password-2"
    AgentStore(kf_stack.engine).create(name, password, display_name="小艾")
    agent = AgentClient(kf_stack.url).login(name, password)
    handoff = agent.handoff_for(customer.conversation_id)
    assert agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/claim", {})[0] == 200
    assert agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/reply",
                      {"text": "您好，我是客服小艾。"})[0] == 200
    assert eventually(lambda: "您好，我是客服小艾。" in customer.received(), 60)


def test_restart_between_pull_and_reply(customer, kf_stack, wecom):
    held = asyncio.Event()
    wecom.hold[customer.user] = held                # WeCom takes the reply but never answers
    wecom.customer_message(customer.user, "运费怎么算的")
    wecom.notify()
    assert eventually(lambda: wecom.held, 60)
    kf_stack.kill("gateway")                        # the gateway dies mid-reply
    wecom.server.loop.call_soon_threadsafe(held.set)
    kf_stack.restart("gateway")
    facts = profile.load_profile()
    sent = eventually(lambda: customer.received(), 90)
    time.sleep(3.0)
    assert customer.received() == sent and len(sent) == 1
    assert f"{facts['shipping']['free_over_yuan']}元" in sent[0]
    assert [l["text"] for l in customer.lines("customer")] == ["运费怎么算的"]


def test_handoff_to_wecom_reception_staff(customer, kf_stack, wecom):
    kf_stack._env["KEFU_WECOM_KF_HANDOFF"] = "wecom"    # this test's gateway hands off to WeCom
    kf_stack.kill("gateway")
    kf_stack.restart("gateway")
    customer.say("转人工")
    assert eventually(lambda: [c for c in wecom.trans_calls
                               if c["external_userid"] == customer.user
                               and c["service_state"] == 2], 60)
    handoffs = HandoffStore(kf_stack.engine)
    held = eventually(lambda: (handoffs.active(customer.conversation_id) or None)
                      and handoffs.active(customer.conversation_id).agent_name == "企业微信接待", 60)
    assert held
    sent = len(customer.received())
    wecom.customer_message(customer.user, "人呢？")
    wecom.status_change(customer.user, 1, servicer="lisi")
    wecom.staff_message(customer.user, "lisi", "您好，我是客服李四")
    wecom.notify()
    assert eventually(lambda: [l["text"] for l in customer.lines("agent")] == ["您好，我是客服李四"], 60)
    time.sleep(2.0)
    assert len(customer.received()) == sent                       # the bot stays silent
    wecom.status_change(customer.user, 3)
    wecom.notify()
    assert eventually(lambda: handoffs.active(customer.conversation_id) is None, 60)
    assert customer.conversation_id in {h["conversation_id"] for h in
                                        handoffs.listing(agent_id=None, include_all=True)}
