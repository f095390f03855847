"""The 微信客服 channel without a model: protocol, the pull, WeCom's rules, handoffs, restarts.

The gateway is the real one (``create_app``: router, handoff service, event bus, the
connector) with a scripted Rasa; WeCom is :class:`tests.fakes.wecom.FakeWeCom` (its API and
its encrypted callbacks, written from WeCom's documentation).
"""
from __future__ import annotations

import concurrent.futures
import time

import pytest

from bot.gateway.app import create_app
from bot.settings import Settings
from bot.store.agents import AgentStore
from bot.store.handoffs import HandoffStore
from bot.store.transcripts import TranscriptStore
from bot.store.wecom_kf import KfStore
from connectors.wechat import kf, kf_pull
from connectors.wechat.crypto import WeChatCrypto, signature
from tests.channel_harness import ScriptedRasa, eventually
from tests.conftest import free_port
from tests.fakes import ThreadedServer
from tests.fakes.wecom import OPEN_KFID, Callbacks, FakeWeCom

HANDOFF_REPLY = [{"text": "好的，正在为您转接人工客服～"},
                 {"custom": {"kefu": {"event": "handoff", "in_hours": True,
                                      "reason": "request_human"}}}]


class KfRasa(ScriptedRasa):
    async def send(self, sender, text):
        if text == "转人工":
            with self.lock:
                self.calls.append((sender, text))
            return HANDOFF_REPLY
        return await super().send(sender, text)


class KfGateway:
    """The whole gateway in this process, its Rasa scripted."""

    def __init__(self, wecom: FakeWeCom, requeue_after: float = 60.0) -> None:
        self.rasa = KfRasa()
        # rasa_timeout: the replayer takes a dead gateway's line after it (+ 10 s)
        self.app = create_app(Settings(requeue_after=requeue_after, rate_burst=1000,
                                       rate_per_minute=6000, rasa_timeout=1.0))
        self.app["router"].rasa = self.rasa
        self.server = ThreadedServer(self.app, free_port()).start()
        self.url = self.server.url
        self.callbacks = wecom.connect(self.url)

    @property
    def channel(self) -> kf.KfChannel:
        return self.app["wecom_kf"]

    def run(self, coro, timeout: float = 30):
        import asyncio
        return asyncio.run_coroutine_threadsafe(coro, self.server.loop).result(timeout)

    def stop(self) -> None:
        self.server.stop()


def lines(user: str, author: str | None = None):
    rows = TranscriptStore().transcript(f"wecom_kf:{user}")
    return [r for r in rows if author is None or r["author"] == author]


@pytest.fixture
def wecom():
    api = FakeWeCom().start()
    yield api
    api.stop()


@pytest.fixture
def start(tmp_path, monkeypatch, wecom):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/kefu.db")
    monkeypatch.setattr(kf, "SEND_LEASE", 1.0)
    monkeypatch.setattr(kf, "SWEEP_EVERY", 0.3)
    gateways = []

    def make(handoff: str = "kefu", **kw) -> KfGateway:
        for key, value in wecom.env(handoff).items():
            monkeypatch.setenv(key, value)
        gateway = KfGateway(wecom, **kw)
        gateways.append(gateway)
        return gateway

    yield make
    for gateway in gateways:
        gateway.stop()


@pytest.fixture
def gateway(start):
    return start()


def say(wecom: FakeWeCom, user: str, text: str, replies: int = 1, times: int = 1):
    """The customer writes; WeCom calls back; wait until ``replies`` more messages arrived."""
    before = len(wecom.sent_to(user))
    wecom.customer_message(user, text)
    assert all(status == 200 and body == "success" for status, body in wecom.notify(times=times))
    got = eventually(lambda: wecom.sent_to(user)[before:] if
                     len(wecom.sent_to(user)) >= before + replies else None, 15)
    assert got, f"no reply to {text!r}"
    return "\n\n".join(got)


# --- the scheme: WeCom's own sample, the receive id is the CorpID -----------------------------


def test_wecom_sample_url_check_decrypts_and_verifies():
    echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    assert signature("QDG6eK", "1409659589", "263014780", echostr) == \
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    crypto = WeChatCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                          "wx5823bf96d3bd56c7")
    assert crypto.decrypt(echostr) == "1616140317555161061"


def test_off_without_configuration(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/kefu.db")
    for name in kf.REQUIRED:
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level("INFO", logger="connectors.wechat.kf"):
        app = create_app(Settings())
    assert "wecom_kf" not in app
    off = [r for r in caplog.records if r.name == "connectors.wechat.kf"]
    assert len(off) == 1 and "off" in off[0].getMessage()
    server = ThreadedServer(app, free_port()).start()
    try:
        assert Callbacks(f"{server.url}/webhooks/wecom-kf").verify("x")[0] == 404
        assert Callbacks(f"{server.url}/webhooks/wecom-kf").post_event(OPEN_KFID, "t")[0] == 404
    finally:
        server.stop()


# --- callbacks: URL check and refusals --------------------------------------------------------


def test_url_verification_answers_the_plaintext(gateway):
    cb = gateway.callbacks
    assert cb.verify("1616140317555161061") == (200, "1616140317555161061")
    assert cb.verify("1616140317555161061", forge=True)[0] == 403
    assert cb.verify("1616140317555161061", receive_id="wwsomeothercorp0000")[0] == 403
    assert Callbacks(cb.url, token="another-token").verify("x")[0] == 403


def test_forged_malformed_and_oversized_callbacks_are_refused(gateway, wecom):
    cb, user = gateway.callbacks, "wmRefused"
    wecom.customer_message(user, "你好")
    token = "ENCrefused"
    wecom.sync_tokens.add(token)
    assert cb.post_event(OPEN_KFID, token, forge=True)[0] == 403
    assert cb.post_event(OPEN_KFID, token, receive_id="wwsomeothercorp0000")[0] == 403
    enc = cb.encrypt(cb.event_xml(OPEN_KFID, token))
    assert cb.post_raw(b"<xml><ToUserName>x</ToUserName></xml>", cb.signed_query(""))[0] == 400
    assert cb.post_raw(b"not xml at all <", cb.signed_query(enc))[0] == 400
    assert cb.post_raw(b'<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
                       cb.signed_query(enc))[0] == 400
    assert cb.post_raw(cb.envelope("!!notbase64!!"), cb.signed_query("!!notbase64!!"))[0] == 400
    assert cb.post_raw(b"<xml><Encrypt>" + b"A" * 70000 + b"</Encrypt></xml>",
                       cb.signed_query(enc))[0] == 413
    time.sleep(0.5)
    assert wecom.sync_calls == [] and lines(user) == []


def test_callback_is_answered_at_once_while_the_bot_is_slow(gateway, wecom):
    gateway.rasa.release.clear()                       # Rasa takes as long as the test wants
    wecom.customer_message("wmSlow", "保修期多久")
    started = time.monotonic()
    [(status, body)] = wecom.notify()
    assert (status, body) == (200, "success") and time.monotonic() - started < 2
    assert eventually(lambda: gateway.rasa.texts("wecom_kf:wmSlow"), 10)
    gateway.rasa.release.set()
    assert eventually(lambda: wecom.sent_to("wmSlow"), 10) == ["收到：保修期多久\n\n还有什么可以帮您？"]


# --- the pull ---------------------------------------------------------------------------------


def test_welcome_on_enter_session_and_numbered_options(gateway, wecom):
    user = "wmWelcome"
    wecom.enter_session(user)
    wecom.notify()
    [welcome] = eventually(lambda: wecom.sent_calls(user), 10)
    greeting = kf_pull.welcome()
    assert welcome["kind"] == "on_event" and greeting.text in welcome["text"]["content"]
    assert f"1. {greeting.buttons[0].title}" in welcome["text"]["content"]
    say(wecom, user, "1")
    # the typed number reached Rasa as the first button's payload
    assert gateway.rasa.texts(f"wecom_kf:{user}") == [greeting.buttons[0].payload]
    assert len(wecom.sent_to(user)) == 2


def test_triple_callback_and_relisted_cursor_give_no_duplicate_replies(gateway, wecom):
    user = "wmTriple"
    wecom.customer_message(user, "运费怎么算")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: wecom.notify()[0], range(3)))
    assert all(r == (200, "success") for r in results)
    assert eventually(lambda: wecom.sent_to(user), 10)
    wecom.relist_next = 1                              # the next cursor re-lists that message
    say(wecom, user, "保修期多久")
    wecom.notify(times=2)
    time.sleep(1.0)
    assert wecom.sent_to(user) == ["收到：运费怎么算\n\n还有什么可以帮您？",
                                   "收到：保修期多久\n\n还有什么可以帮您？"]
    assert gateway.rasa.texts(f"wecom_kf:{user}") == ["运费怎么算", "保修期多久"]
    assert [l["text"] for l in lines(user, "customer")] == ["运费怎么算", "保修期多久"]


def test_has_more_pages_are_followed_in_order(gateway, wecom):
    wecom.page_size = 2
    user = "wmPages"
    texts = [f"第{i}个问题" for i in range(1, 6)]
    for text in texts:
        wecom.customer_message(user, text)
    wecom.notify()
    sent = eventually(lambda: len(wecom.sent_to(user)) == 5 and wecom.sent_to(user), 15)
    assert [s.split("\n")[0] for s in sent] == [f"收到：{t}" for t in texts]
    assert sum(1 for c in wecom.sync_calls if c["returned"]) == 3        # 2 + 2 + 1
    assert KfStore().cursor(OPEN_KFID)


def test_two_replicas_pull_each_message_once(start, wecom):
    first, second = start(), start()
    user = "wmReplicas"
    for i in range(4):
        wecom.customer_message(user, f"问题{i}")
        token = f"ENCrep{i}"
        wecom.sync_tokens.add(token)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda cb, token=token: cb.post_event(OPEN_KFID, token),
                          [Callbacks(f"{g.url}/webhooks/wecom-kf") for g in (first, second)]))
    sent = eventually(lambda: len(wecom.sent_to(user)) >= 4 and wecom.sent_to(user), 15)
    time.sleep(1.0)
    assert sorted(s.split("\n")[0] for s in wecom.sent_to(user)) == [f"收到：问题{i}" for i in range(4)]
    assert len(sent) == 4 and len(lines(user, "customer")) == 4


def test_non_text_message_gets_a_polite_answer_without_the_bot(gateway, wecom):
    user = "wmImage"
    wecom.customer_message(user, msgtype="image")
    wecom.notify()
    assert eventually(lambda: wecom.sent_to(user), 10) == [kf.UNSUPPORTED_TEXT]
    assert gateway.rasa.texts(f"wecom_kf:{user}") == []
    assert [l["text"] for l in lines(user, "customer")] == ["[图片]"]


def test_expired_access_token_is_refreshed_once(gateway, wecom):
    user = "wmToken"
    say(wecom, user, "你好")
    assert wecom.token_fetches == 1                    # cached, not fetched per call
    say(wecom, user, "在吗")
    assert wecom.token_fetches == 1
    wecom.expire_all()
    say(wecom, user, "还在吗")
    assert wecom.token_fetches == 2
    assert ("kf/sync_msg", 42001) in wecom.refused


# --- WeCom's limits ---------------------------------------------------------------------------


def test_long_answers_are_split_and_the_sixth_reply_is_kept_for_agents(gateway, wecom):
    user = "wmLong"
    wecom.customer_message(user, "超长回答")                     # 15 000 bytes + buttons
    wecom.notify()
    sent = eventually(lambda: len(wecom.sent_to(user)) == 5 and wecom.sent_to(user), 15)
    assert all(len(s.encode()) <= 2048 for s in sent)
    undelivered = eventually(lambda: [l for l in lines(user, "system")
                                      if (l["data"] or {}).get("kf_undelivered")], 10)
    assert "5条" in undelivered[0]["text"] and undelivered[0]["data"]["kf_undelivered"]["text"]
    assert not [r for r in wecom.refused if r[0] == "kf/send_msg"]    # never over the limit


def test_no_reply_after_48_hours(gateway, wecom):
    user = "wmOld"
    wecom.customer_message(user, "很久以前的问题", at=time.time() - 49 * 3600)
    wecom.notify()
    assert eventually(lambda: [l for l in lines(user, "system")
                               if (l["data"] or {}).get("kf_undelivered")], 10)
    assert wecom.sent_to(user) == []
    assert [l["author"] for l in lines(user)][:2] == ["customer", "bot"]   # the answer is kept


def test_staff_session_keeps_the_bot_silent_until_wecom_ends_it(gateway, wecom):
    user = "wmStaff"
    say(wecom, user, "你好")
    wecom.status_change(user, 1, servicer="zhangsan")           # a receptionist took it
    wecom.staff_message(user, "zhangsan", "您好，我是客服张三")
    wecom.customer_message(user, "我的订单呢")
    wecom.notify()
    assert eventually(lambda: [l["text"] for l in lines(user, "customer")][-1:] == ["我的订单呢"], 10)
    assert eventually(lambda: [l["text"] for l in lines(user, "agent")] == ["您好，我是客服张三"], 10)
    time.sleep(0.5)
    assert gateway.rasa.texts(f"wecom_kf:{user}") == ["你好"] and len(wecom.sent_to(user)) == 1
    wecom.status_change(user, 3)                                # WeCom ended the session
    say(wecom, user, "还有个问题")
    assert gateway.rasa.texts(f"wecom_kf:{user}")[-1] == "还有个问题"


def test_send_failure_event_is_shown_to_agents(gateway, wecom):
    user = "wmFail"
    say(wecom, user, "你好")
    msgid = wecom.sent_calls(user)[0]["msgid"]
    wecom.send_fail(user, msgid, fail_type=10)
    wecom.notify()
    [line] = eventually(lambda: [l for l in lines(user, "system")
                                 if (l["data"] or {}).get("kf_send_fail")], 10)
    assert line["data"]["kf_send_fail"]["fail_msgid"] == msgid and "拒收" in line["text"]


# --- handoffs ---------------------------------------------------------------------------------


def agent(name="kf-agent"):
    store = AgentStore()
    return store.by_name(name) or store.create(name, "a-long-password-1", display_name="小王")


def test_handoff_to_kefu_console_keeps_the_session_with_the_assistant(gateway, wecom):
    user = "wmKefuHandoff"
    say(wecom, user, "转人工", replies=2)             # the queue notice and the bot's answer
    handoff = HandoffStore().active(f"wecom_kf:{user}")
    assert handoff is not None and handoff.status == "queued"
    service, person = gateway.app["handoff"], agent()
    gateway.run(service.claim(handoff.id, person))
    gateway.run(service.reply(handoff.id, person, "您好，我是小王，请问有什么可以帮您？"))
    assert eventually(lambda: "您好，我是小王，请问有什么可以帮您？" in wecom.sent_to(user), 10)
    assert wecom.trans_calls and all(c["service_state"] == 1 for c in wecom.trans_calls)
    before, sent = gateway.rasa.texts(f"wecom_kf:{user}"), len(wecom.sent_to(user))
    wecom.customer_message(user, "我的冰箱坏了")
    wecom.customer_message(user, msgtype="image")        # a photo for the agent, no bot note
    wecom.notify()
    assert eventually(lambda: [l["text"] for l in lines(user, "customer")][-2:] ==
                      ["我的冰箱坏了", "[图片]"], 10)
    time.sleep(1.0)
    assert gateway.rasa.texts(f"wecom_kf:{user}") == before          # the person has it
    assert len(wecom.sent_to(user)) == sent


def test_handoff_to_wecom_staff_transfers_after_the_replies(start, wecom):
    gateway = start(handoff="wecom")
    user = "wmWecomHandoff"
    say(wecom, user, "转人工")
    assert eventually(lambda: [c for c in wecom.trans_calls if c["service_state"] == 2], 10)
    assert wecom.session(user)["state"] == 2
    conversation = f"wecom_kf:{user}"
    assert "好的，正在为您转接人工客服～" in wecom.sent_to(user)    # sent before the transfer
    # kefu's queue notice went out too, or (after the transfer) is kept with a note
    assert eventually(lambda: len(wecom.sent_to(user)) == 2 or [
        l for l in lines(user, "system") if (l["data"] or {}).get("kf_undelivered")], 10)
    replies_before = len(wecom.sent_to(user))
    handoff = eventually(lambda: (HandoffStore().active(conversation) or None) and
                         HandoffStore().active(conversation).status == "claimed" and
                         HandoffStore().active(conversation), 10)
    assert handoff and handoff.agent_name == "企业微信接待"
    # afterwards the bot is silent; reception staff's lines are agent lines
    wecom.customer_message(user, "人呢")
    wecom.status_change(user, 1, servicer="lisi")
    wecom.staff_message(user, "lisi", "您好，我是李四")
    wecom.notify()
    assert eventually(lambda: [l["text"] for l in lines(user, "agent")] == ["您好，我是李四"], 10)
    assert gateway.rasa.texts(conversation) == ["转人工"]
    assert len(wecom.sent_to(user)) == replies_before
    wecom.status_change(user, 3)
    wecom.notify()
    assert eventually(lambda: HandoffStore().active(conversation) is None, 10)
    report = HandoffStore().report()
    assert report                                           # still counted by kefu's reports


# --- restarts -----------------------------------------------------------------------------------


def test_restart_between_pull_and_reply_loses_and_repeats_nothing(start, wecom):
    first = start(requeue_after=1.0)
    user = "wmRestart"
    first.rasa.release.clear()                               # the turn is under way …
    wecom.customer_message(user, "保修期多久")
    wecom.notify()
    assert eventually(lambda: first.rasa.texts(f"wecom_kf:{user}"), 10)
    first.stop()                                             # … when the gateway goes
    assert KfStore().cursor(OPEN_KFID)                       # the cursor had moved on
    second = start(requeue_after=1.0)
    sent = eventually(lambda: wecom.sent_to(user), 45)
    time.sleep(1.5)
    assert wecom.sent_to(user) == sent and len(sent) == 1
    assert "保修期多久" in sent[0]
    assert [l["text"] for l in lines(user, "customer")] == ["保修期多久"]
    assert second.rasa.texts(f"wecom_kf:{user}") == ["保修期多久"]


def test_restart_during_send_sends_the_reply_once(start, wecom):
    import asyncio

    first = start()
    user = "wmMidSend"
    gate = asyncio.Event()
    wecom.hold[user] = gate                                  # WeCom does not answer send_msg
    wecom.customer_message(user, "运费怎么算")
    wecom.notify()
    assert eventually(lambda: wecom.held, 10)
    first.stop()
    wecom.server.loop.call_soon_threadsafe(gate.set)
    start()
    sent = eventually(lambda: wecom.sent_to(user), 20)
    time.sleep(1.5)
    assert wecom.sent_to(user) == sent == ["收到：运费怎么算\n\n还有什么可以帮您？"]


def test_a_send_slower_than_its_lease_is_not_sent_twice(gateway, wecom):
    """The lease is renewed while WeCom is slow: the sweep (every 0.3 s here) leaves the row be."""
    import asyncio

    user = "wmSlowSend"
    gate = asyncio.Event()
    wecom.hold[user] = gate                                  # send_msg hangs for 3 leases
    wecom.customer_message(user, "运费怎么算")
    wecom.notify()
    assert eventually(lambda: wecom.held, 10)
    time.sleep(3.0)
    wecom.server.loop.call_soon_threadsafe(gate.set)
    sent = eventually(lambda: wecom.sent_to(user), 20)
    time.sleep(1.5)
    assert wecom.held == 1, "the sweep took a row still being sent"
    assert wecom.sent_to(user) == sent == ["收到：运费怎么算\n\n还有什么可以帮您？"]
