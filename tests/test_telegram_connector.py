"""The Telegram connector without a model: webhook refusals, updates, buttons, flood limits.

python-telegram-bot talks to :class:`tests.fakes.telegram.FakeBotAPI` (its ``base_url``
points there); the gateway is the real router and connector with a scripted Rasa.
"""
from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings, strategies as st

from connectors import telegram
from connectors.telegram import FloodGate, parse_update
from tests.channel_harness import use_greeting, Gateway, eventually
from tests.conftest import free_port
from tests.fakes import ThreadedServer
from tests.fakes.telegram import TELEGRAM_SECRET, TELEGRAM_TOKEN, FakeBotAPI, TelegramCustomer


@pytest.fixture
def bot_api():
    api = FakeBotAPI(TELEGRAM_TOKEN).start()
    yield api
    api.stop()


def _gateway(tmp_path, monkeypatch, bot_api, mode="webhook"):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/kefu.db")
    for key, value in {**bot_api.customer_bot_env(), "KEFU_TELEGRAM_MODE": mode}.items():
        monkeypatch.setenv(key, value)
    use_greeting(monkeypatch, tmp_path)
    return Gateway(telegram.setup)


@pytest.fixture
def gateway(tmp_path, monkeypatch, bot_api):
    gw = _gateway(tmp_path, monkeypatch, bot_api)
    yield gw
    gw.stop()


_chat_ids = itertools.count(910001)


@pytest.fixture
def customer(gateway, bot_api):
    return TelegramCustomer(f"{gateway.url}/webhooks/telegram", TELEGRAM_SECRET, bot_api,
                            next(_chat_ids))


def test_off_without_token(monkeypatch, caplog):
    from aiohttp import web
    monkeypatch.delenv("KEFU_TELEGRAM_TOKEN", raising=False)
    app = web.Application()
    app["senders"] = {}
    with caplog.at_level("INFO"):
        telegram.setup(app)
    assert "telegram" not in app["senders"]
    server = ThreadedServer(app, free_port()).start()
    try:
        customer = TelegramCustomer(f"{server.url}/webhooks/telegram", TELEGRAM_SECRET, None, 1)
        assert customer.post(customer.message_update("hi")) == 404
    finally:
        server.stop()
    assert sum("telegram connector off" in r.getMessage() for r in caplog.records) == 1


def test_bot_uses_the_configured_api_base(gateway, bot_api):
    channel = gateway.app["telegram"]
    assert channel.bot.base_url == f"{bot_api.url}/bot{TELEGRAM_TOKEN}"
    assert "getMe" in bot_api.methods()


def test_start_greets_with_an_inline_keyboard_and_a_press_comes_back_as_the_choice(customer, gateway,
                                                                                   bot_api):
    [greeting] = customer.say("/start")
    rows = greeting["reply_markup"]["inline_keyboard"]
    assert [b["text"] for row in rows for b in row] == ["我要投诉", "报修/安装", "长按钮"]
    assert rows[0][0]["callback_data"] == "我要投诉"
    assert rows[2][0]["callback_data"] == "#3"              # over 64 bytes: looked up again
    replies = customer.press(greeting, "报修/安装")
    assert replies[0]["text"] == "收到：我要报修"
    methods = bot_api.methods()
    assert "answerCallbackQuery" in methods and "editMessageReplyMarkup" in methods
    [greeting] = customer.say("/start")
    assert customer.press(greeting, "长按钮")[0]["text"].startswith('收到：/inform{"product"')
    chat = f"telegram:{customer.chat_id}"
    assert gateway.rasa.texts(chat)[:1] == ["我要报修"]      # /start is the welcome, no bot turn


def test_typed_number_picks_an_option_too(customer, gateway):
    customer.say("/start")
    assert customer.say("1")[0]["text"] == "收到：我要投诉"


def test_non_text_message_gets_a_polite_answer(customer, gateway):
    [reply] = customer.say(None, photo=[{"file_id": "f1", "file_unique_id": "u1", "width": 10,
                                         "height": 10}])
    assert "文字" in reply["text"] and gateway.rasa.calls == []


def test_wrong_or_missing_secret_is_refused_unprocessed(customer, gateway, bot_api):
    update = customer.message_update("你好")
    assert customer.post(update, secret="wrong") == 403
    assert customer.post(update, secret=False) == 403
    assert customer.post(update, secret="") == 403
    assert gateway.rasa.calls == [] and bot_api.sent(customer.chat_id) == []


def test_malformed_and_oversized_bodies_are_refused(customer, gateway):
    assert customer.post(None, raw=b"{not json") == 400
    assert customer.post(None, raw=b"[1, 2]") == 400
    assert customer.post({"message": {"text": "no update id"}}) == 400
    assert customer.post({"update_id": 5, "message": {"text": "no chat, no date"}}) == 400
    assert customer.post({"update_id": 6, "message": "text"}) == 400
    big = customer.message_update("长" * 30000)
    assert customer.post(big) == 413
    assert gateway.rasa.calls == []
    assert customer.say("还在吗")[0]["text"] == "收到：还在吗"


def test_a_redelivered_update_is_processed_once(customer, gateway, bot_api):
    update = customer.message_update("我的订单")
    assert [customer.post(update) for _ in range(3)] == [200, 200, 200]
    assert gateway.rasa.texts(f"telegram:{customer.chat_id}") == ["我的订单"]
    assert len(bot_api.sent(customer.chat_id)) == 2


def test_push_sends_to_the_chat(gateway, bot_api):
    from bot.messages import OutboundMessage
    gateway.run(gateway.app["senders"]["telegram"]("424242", [OutboundMessage("客服回复了您")]))
    assert [m["text"] for m in bot_api.sent(424242)] == ["客服回复了您"]


def test_polling_mode_needs_no_public_url(tmp_path, monkeypatch, bot_api):
    gw = _gateway(tmp_path, monkeypatch, bot_api, mode="polling")
    try:
        customer = TelegramCustomer(f"{gw.url}/webhooks/telegram", TELEGRAM_SECRET, bot_api, 930001)
        assert customer.post(customer.message_update("webhook?")) == 404   # no webhook to spoof
        bot_api.push(customer.message_update("轮询你好"))
        sent = eventually(lambda: bot_api.sent(930001))
        assert sent[0]["text"] == "收到：轮询你好"
        assert "deleteWebhook" in bot_api.methods()
    finally:
        gw.stop()


# --- flood limits: the schedule, not the clock -----------------------------------------------


def test_flood_gate_spaces_one_chat_by_a_second_and_all_by_a_thirtieth():
    gate = FloodGate()
    assert [gate.reserve("a", now=0.0) for _ in range(3)] == pytest.approx([0.0, 1.0, 2.0])
    gate = FloodGate()
    slots = [gate.reserve(f"chat{i}", now=0.0) for i in range(60)]
    assert slots == pytest.approx([i / 30 for i in range(60)])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.floats(0, 0.5)), max_size=120))
def test_flood_gate_never_exceeds_the_limits_and_keeps_every_message(sends):
    gate, now, booked = FloodGate(), 0.0, []
    for chat, pause in sends:
        now += pause
        at = gate.reserve(chat, now=now)
        assert at >= now
        booked.append((chat, at))
    assert len(booked) == len(sends)                       # nothing dropped
    times = sorted(at for _, at in booked)
    for i, t in enumerate(times):                          # ≤ 30 in any one-second window
        assert sum(1 for u in times[i:i + 31] if u < t + 1.0 - 1e-9) <= 30
    for chat in set(c for c, _ in booked):
        mine = [at for c, at in booked if c == chat]
        assert all(b - a >= 1.0 - 1e-9 for a, b in zip(mine, mine[1:]))


# --- the update parser ----------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["update_id", "message", "text", "chat",
                                                       "id", "date", "message_id", "from",
                                                       "callback_query", "data", "type"]),
                                      inner, max_size=5), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_update_parser_accepts_or_refuses_with_value_error_only(data):
    try:
        update = parse_update(data)
    except ValueError:
        return
    assert isinstance(update.update_id, int)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200), st.integers(1, 2**40))
def test_update_parser_keeps_text_and_chat(text, chat_id):
    data = {"update_id": 1, "message": {"message_id": 1, "date": 1700000000, "text": text,
                                        "chat": {"id": chat_id, "type": "private"}}}
    update = parse_update(json.loads(json.dumps(data)))
    assert update.message.text == text and update.message.chat.id == chat_id


def test_a_long_answer_arrives_whole(customer):
    replies = customer.say("超长回答")                          # 5000 characters and buttons
    assert "".join(r["text"] for r in replies) == "这是一段很长的回答。" * 500
    assert [len(r["text"]) for r in replies] == [4096, 904]
    assert "reply_markup" not in replies[0] and replies[1]["reply_markup"]["inline_keyboard"]


def test_group_chats_are_not_served(customer, gateway, bot_api):
    update = customer.message_update("大家好")
    update["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "某个群"}
    assert customer.post(update) == 200
    assert gateway.rasa.calls == [] and bot_api.sent(-100123) == []
