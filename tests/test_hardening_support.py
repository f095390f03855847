"""Issue 18, items 6-10, against real aiohttp servers and the SQL store (no trained model).

6  a stalled console subscriber cannot break a handed-off customer's turn
7  the outbox: a row refused for good is dead-lettered and does not block later rows; a
   target far behind never holds back another target;
   transient failures back off per row up to a maximum; pushes to customers survive an
   outage of their channel, in order; dead letters in the console, and their retry
8  the agents' Telegram group: only linked, active agents claim, only from the group's own
   messages; one getUpdates poller across replicas (a lease with the offset)
9  sign-in: the client address only from trusted proxies, back-off (never a lockout) shared
   by replicas; own password change, admin reset, deactivation and revoked sessions end
   sessions; the new routes refuse anonymous requests
10 flooding: a per-address limit on top of the per-conversation one, an admission limit
   on turns in Rasa (busy notice, line pending, replayed), bounded per-conversation state
"""
from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.gateway.app import create_app
from bot.settings import Settings, networks
from bot.store.agents import AgentStore
from bot.store.handoffs import HandoffStore
from bot.store.transcripts import TranscriptStore
from bot.support import events
from bot.support.handoffs import HandoffService
from bot.support.outbox import Rejected, TryLater, Unreachable
from tests.fakes import served

NOWHERE = "http://127.0.0.1:9"          # nothing listens: Rasa and the action server are "down"


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/hardening.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")
    monkeypatch.setenv("KEFU_OUTBOX_BACKOFF", "0.05")
    monkeypatch.setenv("KEFU_OUTBOX_MAX_BACKOFF", "0.2")
    for name in ("KEFU_TELEGRAM_AGENT_TOKEN", "KEFU_TELEGRAM_TOKEN", "KEFU_WECHAT_TOKEN",
                 "KEFU_WECOM_WEBHOOK", "KEFU_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def settings(**overrides) -> Settings:
    return Settings(**{"rasa_url": NOWHERE, "action_url": NOWHERE, **overrides})


async def until(probe, timeout: float = 20.0, what: str = "condition"):
    """Poll ``probe`` (sync or async) until truthy; no timing is asserted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def sign_in(client: TestClient, name: str, password: str, **headers) -> TestClient:
    resp = await client.post("/api/agent/login", json={"name": name, "password": password},
                             headers=headers)
    assert resp.status == 200, await resp.text()
    return client


# --- 6: live updates never break a customer's turn -------------------------------------------


def test_a_stalled_console_subscriber_cannot_break_a_handed_off_turn(db):
    async def scenario():
        app = create_app(settings())
        async with served(app) as client:
            service, live = app["handoff"], app["live_updates"]
            await service.open("web:stall", "web", "stall", ticket_number=None,
                               reason="request_human")
            stalled = live.subscribe()              # a console tab that stopped reading
            for n in range(stalled.maxsize):
                stalled.put_nowait({"type": "filler", "n": n})
            healthy = live.subscribe()
            resp = await client.post("/api/chat", json={"sender": "stall", "message": "还在吗"})
            assert resp.status == 200, await resp.text()
            replies = (await resp.json())["messages"]     # relayed to the agents, not the bot
            assert all(m["author"] != "bot" for m in replies)
            assert stalled not in live.subscribers          # the slow one is dropped ...
            got = [healthy.get_nowait() for _ in range(healthy.qsize())]
            assert {"type": events.CUSTOMER_MESSAGE, "handoff": 1} in got   # ... others served
            lines = TranscriptStore().transcript("web:stall")
            assert [l["text"] for l in lines if l["author"] == "customer"] == ["还在吗"]
    asyncio.run(scenario())


# --- 7: the outbox ------------------------------------------------------------------------


class Robot:
    """A WeCom group robot (``/cgi-bin/webhook/send``) whose answer the test chooses."""

    def __init__(self) -> None:
        self.received, self.answer = [], lambda content: 0

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        content = body["text"]["content"]
        self.received.append(content)
        code = self.answer(content)
        return web.json_response({"errcode": code, "errmsg": "ok" if code == 0 else "refused"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self.send)
        return app


def _alerting_service(url: str):
    from bot.workspace.alerts import WeComAlerts

    service = HandoffService()
    alerts = WeComAlerts(service, url)
    alerts.attach(service.bus)
    return service, alerts


async def _rounds(service: HandoffService, probe, what: str, timeout: float = 20.0):
    backoff: dict = {}

    async def one():
        await service.outbox_round(backoff)
        return probe()
    return await until(one, timeout, what)


def test_a_row_refused_for_good_is_dead_lettered_and_later_rows_still_go_out(db, monkeypatch):
    robot = Robot()
    robot.answer = lambda content: 93000 if "第一条" in content else 0    # invalid for good

    async def scenario():
        async with served(robot.app()) as server:
            service, alerts = _alerting_service(str(server.make_url("/cgi-bin/webhook/send")))
            failed = []
            service.bus.subscribe(events.DELIVERY_FAILED, lambda e: _append(failed, e))
            for text in ("第一条", "第二条", "第三条"):
                await service.enqueue("wecom", {"msgtype": "text", "text": {"content": text}})
            await _rounds(service, lambda: "第三条" in robot.received, "later alerts")
            await alerts.close()
            return service, failed

    service, failed = asyncio.run(scenario())
    assert robot.received == ["第一条", "第二条", "第三条"]        # tried once, not retried
    dead = service.store.outbox.dead_letters()
    assert [d["last_error"] for d in dead] == ["rejected: WeCom errcode 93000: refused"]
    assert service.store.pending("wecom") == []
    assert [e["outbox_id"] for e in failed] == [dead[0]["id"]]    # the consoles are told


async def _append(items, event):
    items.append(event)


def test_transient_failures_back_off_per_row_then_dead_letter_keeping_order(db, monkeypatch):
    monkeypatch.setenv("KEFU_OUTBOX_MAX_ATTEMPTS", "3")
    robot = Robot()
    robot.answer = lambda content: -1 if content.startswith("A") else 0   # -1: system busy

    async def scenario():
        async with served(robot.app()) as server:
            service, alerts = _alerting_service(str(server.make_url("/cgi-bin/webhook/send")))
            for text, key in (("A1", "c1"), ("A2 after A1", "c1"), ("B1", "c2")):
                await service.outbox.enqueue("wecom", {"msgtype": "text", "text": {"content": text}},
                                             key=key)
            # B1 (another conversation) goes at once; A1 is retried with backoff, A2 waits
            await _rounds(service, lambda: "B1" in robot.received, "the other conversation")
            assert "A2 after A1" not in robot.received
            await _rounds(service, lambda: len(service.store.outbox.dead_letters()) == 2,
                          "A1 and A2 given up")
            await alerts.close()
            return service

    service = asyncio.run(scenario())
    # B1 is not held up by A1; A1 is tried KEFU_OUTBOX_MAX_ATTEMPTS times; A2 (same
    # conversation) only after A1 is given up, then gets its own attempts
    assert robot.received == ["A1", "B1", "A1", "A1"] + ["A2 after A1"] * 3
    assert [d["attempts"] for d in service.store.outbox.dead_letters()] == [3, 3]
    assert {d["last_error"] for d in service.store.outbox.dead_letters()} == {
        "3 attempts: try later: WeCom errcode -1"}


def test_a_conversation_with_many_rows_waiting_does_not_hide_the_others(db, monkeypatch):
    # the stuck row's backoff outlasts the round however slow the machine (the fixture's
    # 0.05 s could pass between two passes of one round: a second attempt, not the one asserted)
    monkeypatch.setenv("KEFU_OUTBOX_BACKOFF", "60")
    monkeypatch.setenv("KEFU_OUTBOX_MAX_BACKOFF", "60")
    sent = []

    async def deliver(row):
        if row["key"] == "stuck":
            raise TryLater("busy for this one")
        sent.append(row["payload"]["n"])
        return True

    async def scenario():
        service = HandoffService()
        service.deliverers["wecom"] = deliver
        for n in range(250):                       # more than a round reads at once
            await service.outbox.enqueue("wecom", {"n": n}, key="stuck")
        for n in (1000, 1001):
            await service.outbox.enqueue("wecom", {"n": n}, key="other")
        await service.outbox_round({})
        return service

    service = asyncio.run(scenario())
    assert sent == [1000, 1001]                    # in order, not behind the stuck conversation
    waiting = service.store.pending("wecom", limit=1000)
    assert len(waiting) == 250 and [r["attempts"] for r in waiting[:2]] == [1, 0]


def test_a_target_far_behind_never_holds_back_another_targets_rows(db):
    """The chaos row 'WeCom refuses every alert': thousands of lines for the agents' group
    were being sent when the alerts came; the WeCom rows waited for the whole backlog (and
    went out once the robot took messages again, never refused and so never dead-lettered)."""
    released, in_flight, alerted = asyncio.Event(), asyncio.Event(), asyncio.Event()
    group_sent, alerts = [], []

    async def group(row):                          # the agents' group, its backlog stuck
        in_flight.set()
        await released.wait()
        group_sent.append(row["payload"]["n"])
        return True

    async def wecom(row):
        alerts.append(row["payload"]["n"])
        alerted.set()
        return True

    async def scenario():
        service = HandoffService()
        service.deliverers.update(telegram=group, wecom=wecom)
        for n in range(20):
            await service.outbox.enqueue("telegram", {"n": n}, key=f"handoff:{n}")
        loop = asyncio.create_task(service.outbox_loop())
        try:
            await asyncio.wait_for(in_flight.wait(), 20)
            await service.outbox.enqueue("wecom", {"n": "alert"}, key="handoff:99")
            await asyncio.wait_for(alerted.wait(), 20)      # while the group is still stuck
            still_stuck = list(group_sent)
            released.set()
            await until(lambda: len(group_sent) == 20, 20, "the group's backlog")
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        return service, still_stuck

    service, still_stuck = asyncio.run(scenario())
    assert alerts == ["alert"] and still_stuck == []
    assert group_sent == list(range(20))           # the backlog itself still in order, each once
    assert service.store.pending("telegram") == [] and service.store.pending("wecom") == []


def test_a_push_to_an_unreachable_channel_waits_uncharged_and_arrives_in_order(db):
    delivered, down = [], [True]

    async def sender(user_id, messages):
        if down[0]:
            raise Unreachable("connection refused")
        if "拒收" in messages[0].text:
            raise Rejected("chat not found")
        delivered.extend((user_id, m.text, m.author) for m in messages)

    async def scenario():
        service = HandoffService(senders={"telegram": sender})
        handoff = await service.open("telegram:42", "telegram", "42", ticket_number=None,
                                     reason="request_human")
        for text in ("第一句", "拒收", "第二句"):
            await service.tell_customer(handoff, text, author="agent")
        for _ in range(5):
            await service.outbox_round({})
        waiting = service.store.pending("customer:telegram")
        assert [r["attempts"] for r in waiting] == [0, 0, 0, 0]   # an outage charges nothing
        down[0] = False
        await _rounds(service, lambda: len(delivered) == 3, "the pushes")
        return service

    service = asyncio.run(scenario())
    assert [text for _, text, _ in delivered] == [
        "已为您转接人工客服，您现在排在第 1 位，请稍候～您可以继续留言，客服会看到。", "第一句", "第二句"]
    assert [d["last_error"] for d in service.store.outbox.dead_letters()] == [
        "rejected: chat not found"]
    lines = TranscriptStore().transcript("telegram:42")          # the transcript has all of them
    assert [l["text"] for l in lines][1:] == ["第一句", "拒收", "第二句"]


def test_agent_replies_to_a_telegram_customer_survive_a_telegram_outage_in_order(db, monkeypatch):
    """The real Telegram connector against a fake Bot API that goes down (502) for a while."""
    from tests.fakes.telegram import TELEGRAM_SECRET, TELEGRAM_TOKEN, FakeBotAPI

    api, down = FakeBotAPI(TELEGRAM_TOKEN), [False]

    async def bot_api(request):
        if down[0]:
            return web.Response(status=502, text="Bad Gateway")
        return await api.dispatch(request)

    async def scenario():
        fake = web.Application()
        fake.router.add_route("*", "/bot{token}/{method}", bot_api)
        async with served(fake) as telegram:
            monkeypatch.setenv("KEFU_TELEGRAM_TOKEN", TELEGRAM_TOKEN)
            monkeypatch.setenv("KEFU_TELEGRAM_SECRET", TELEGRAM_SECRET)
            monkeypatch.setenv("KEFU_TELEGRAM_API_BASE", str(telegram.make_url("")).rstrip("/"))
            AgentStore().create("amy", "password-amy")
            app = create_app(settings())
            async with served(app) as client:
                await sign_in(client, "amy", "password-amy")
                amy = AgentStore().by_name("amy")
                handoff = await app["handoff"].open("telegram:4242", "telegram", "4242",
                                                    ticket_number=None, reason="request_human",
                                                    agent=amy)
                await until(lambda: api.sent(4242), what="the claimed notice")
                down[0] = True
                for text in ("第一条回复", "第二条回复", "第三条回复"):
                    resp = await client.post(f"/api/agent/handoffs/{handoff.id}/reply",
                                             json={"text": text})
                    assert resp.status == 200          # the agent is not kept waiting
                store = app["handoff"].store
                await until(lambda: any((r["last_error"] or "").startswith("unreachable")
                                        for r in store.pending("customer:telegram")),
                            timeout=60, what="a failed delivery")
                assert [r["attempts"] for r in store.pending("customer:telegram")] == [0, 0, 0]
                down[0] = False
                await until(lambda: len(api.sent(4242)) == 4, timeout=60, what="the replies")
                await asyncio.sleep(0.5)
                assert store.pending("customer:telegram") == []

    asyncio.run(scenario())
    assert [m["text"] for m in api.sent(4242)][1:] == ["第一条回复", "第二条回复", "第三条回复"]


def test_a_web_chat_push_writes_the_transcript_and_no_outbox_row(db):
    async def scenario():
        app = create_app(settings())
        service = app["handoff"]
        handoff = await service.open("web:mailbox", "web", "mailbox", ticket_number=None,
                                     reason="request_human")
        await service.tell_customer(handoff, "您好", author="agent")
        return service

    service = asyncio.run(scenario())
    assert service.store.outbox.counts() == {}
    assert [l["text"] for l in TranscriptStore().transcript("web:mailbox")][-1] == "您好"


def test_dead_letters_in_the_console_and_their_retry(db):
    async def scenario():
        app = create_app(settings())
        service = app["handoff"]
        attempts = []

        async def flaky(user_id, messages):
            attempts.append(messages[0].text)
            if len(attempts) == 1:
                raise Rejected("blocked by the user")

        service.senders["wechat"] = flaky
        admin = AgentStore().create("boss", "password-boss", role="admin")
        amy = AgentStore().create("amy", "password-amy")
        AgentStore().create("bob", "password-bob")
        handoff = await service.open("wechat:o1", "wechat", "o1", ticket_number=None,
                                     reason="request_human", agent=amy)
        await service.outbox_round({})
        async with served(app) as client:
            await sign_in(client, "bob", "password-bob")
            resp = await client.get("/api/agent/outbox")
            assert resp.status == 200 and (await resp.json())["dead"] == []    # not Bob's
            await sign_in(client, "amy", "password-amy")
            body = await (await client.get("/api/agent/outbox")).json()
            [dead] = body["dead"]
            assert dead["target"] == "customer:wechat" and dead["handoff_id"] == handoff.id
            assert "blocked by the user" in dead["last_error"] and "已接入" in dead["text"]
            resp = await client.post(f"/api/agent/outbox/{dead['id']}/retry", json={})
            assert resp.status == 200
            await until(lambda: len(attempts) == 2, what="the retried push")
            assert (await client.post(f"/api/agent/outbox/{dead['id']}/retry", json={})).status == 409
            await sign_in(client, "boss", "password-boss")
            body = await (await client.get("/api/agent/outbox")).json()
            assert body["dead"] == [] and admin.is_admin
        return attempts

    assert asyncio.run(scenario()) == ["客服「amy」已接入，为您服务。"] * 2


# --- 8: the agents' Telegram group --------------------------------------------------------


def _group(service: HandoffService, api, poll_timeout: int = 1):
    from bot.workspace.agents_group import AgentsGroup

    group = AgentsGroup(service, token=api.token, group=api.group,
                        api_base=api.url, poll_timeout=poll_timeout)
    group.attach(service.bus)
    return group


@pytest.fixture
def agents_api():
    from tests.fakes.telegram import agents_bot_api

    api = agents_bot_api().start()
    yield api
    api.stop()


def test_only_linked_active_agents_claim_and_only_from_the_groups_own_message(db, agents_api):
    api = agents_api
    agents = AgentStore()
    wang = agents.create("wang", "password-wang", display_name="王客服", telegram_user_id="7001")
    agents.create("li", "password-li", telegram_user_id="7003")
    agents.set_active(agents.by_name("li").id, False)

    async def scenario():
        service = HandoffService()
        group = _group(service, api)
        poller = asyncio.ensure_future(group.poll_loop())
        try:
            handoff = await service.open("web:tg-claim", "web", "tg-claim", ticket_number=None,
                                         reason="request_human")
            await _rounds(service, lambda: any(m.get("reply_markup") for m in api.sent()),
                          "the card")
            card = next(m for m in api.sent() if m.get("reply_markup"))

            def answered(n):
                return lambda: len(api.answers) >= n

            api.press(api.user(7002, "路人"), card, f"claim:{handoff.id}")      # nobody's account
            await until(answered(1), what="the answer to a stranger")
            api.press(api.user(7003, "李"), card, f"claim:{handoff.id}")       # deactivated
            await until(answered(2), what="the answer to a deactivated agent")
            api.press(api.user(7001, "王客服"), card, f"claim:{handoff.id}", chat_id=-100999)
            await until(answered(3), what="the answer to a press elsewhere")
            assert HandoffStore().get(handoff.id).status == "queued"
            api.reply(api.user(7002, "路人"), card, "我来回复客户")           # no reply either
            await until(lambda: any("未关联" in m["text"] for m in api.sent()), what="a warning")
            api.press(api.user(7001, "王客服"), card, f"claim:{handoff.id}")
            await until(lambda: HandoffStore().get(handoff.id).status == "claimed", what="claim")
            return handoff
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            await group.shutdown()

    handoff = asyncio.run(scenario())
    assert HandoffStore().get(handoff.id).agent_id == wang.id
    texts = [a.get("text", "") for a in api.answers]
    assert "未关联" in texts[0] and "未关联" in texts[1] and "不是客服组" in texts[2]
    assert not any(l["author"] == "agent" for l in TranscriptStore().transcript("web:tg-claim"))
    assert agents.for_telegram_user("7002") is None          # nobody was provisioned


def test_one_poller_across_replicas_and_the_next_goes_on_from_the_offset(db, agents_api):
    api = agents_api
    AgentStore().create("wang", "password-wang", telegram_user_id="7001")

    async def scenario():
        replicas = [HandoffService(), HandoffService()]      # two gateways, one database
        groups = [_group(s, api) for s in replicas]
        loops = [asyncio.ensure_future(g.poll_loop()) for g in groups]
        try:
            handoff = await replicas[0].open("web:tg-lease", "web", "tg-lease", ticket_number=None,
                                             reason="request_human")
            await _rounds(replicas[0], lambda: any(m.get("reply_markup") for m in api.sent()),
                          "the card")
            card = next(m for m in api.sent() if m.get("reply_markup"))
            api.press(api.user(7001, "王"), card, f"claim:{handoff.id}")
            await until(lambda: HandoffStore().get(handoff.id).status == "claimed", what="claim")
            polls = api.polls
            await until(lambda: api.polls >= polls + 3, what="more polls")
            holder = next(i for i, g in enumerate(groups)
                          if g.lease.owner == _lease_owner(g.lease))
            # the holder stops (a replica shut down): the other takes over at the stored offset
            loops[holder].cancel()
            await asyncio.gather(loops[holder], return_exceptions=True)
            await groups[holder].shutdown()
            api.reply(api.user(7001, "王"), card, "您好，我来处理")
            other = 1 - holder
            await until(lambda: any(l["author"] == "agent" for l in
                                    TranscriptStore().transcript("web:tg-lease")), what="the reply")
            await until(lambda: _lease_owner(groups[other].lease) == groups[other].lease.owner,
                        what="the other replica holding the lease")
            await asyncio.sleep(1.5)                         # the claim is not handled again
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            for g in groups:
                await g.shutdown()

    asyncio.run(scenario())
    assert api.conflicts == 0                      # never two getUpdates at once
    replies = [l for l in TranscriptStore().transcript("web:tg-lease") if l["author"] == "agent"]
    assert [l["text"] for l in replies] == ["您好，我来处理"]
    claimed = [l for l in TranscriptStore().transcript("web:tg-lease") if "已接入" in l["text"]]
    assert len(claimed) == 1
    assert len([a for a in api.answers if "已认领" in a.get("text", "")]) == 1


def _lease_owner(lease) -> str | None:
    from bot.store.engine import retrying
    from bot.store.schema import Lease

    return retrying(lambda s: (s.get(Lease, lease.name) or Lease()).owner, engine=lease.engine)


# --- 9: sign-in ---------------------------------------------------------------------------


def test_the_client_address_comes_from_trusted_proxies_only():
    from ipaddress import ip_network

    from bot.gateway.clients import client_address

    proxies = (ip_network("10.0.0.0/8"), ip_network("127.0.0.1/32"))
    assert client_address("203.0.113.9", ["198.51.100.1"], proxies) == "203.0.113.9"  # not a proxy
    assert client_address("127.0.0.1", ["198.51.100.1"], proxies) == "198.51.100.1"
    # the client may send its own header: only the right-most untrusted entry counts
    assert client_address("127.0.0.1", ["1.2.3.4, 198.51.100.1, 10.1.2.3"], proxies) == "198.51.100.1"
    assert client_address("127.0.0.1", ["1.2.3.4", "198.51.100.1"], proxies) == "198.51.100.1"
    assert client_address("127.0.0.1", ["not-an-ip"], proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", [], proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"      # none trusted


@pytest.fixture
def quick_backoff(monkeypatch):
    """The throttle's rules with fewer free tries and a name back-off of a fraction of a second
    (the pair's stays long), so the test neither waits nor depends on how fast it runs."""
    from bot.store import throttle

    monkeypatch.setattr(throttle, "KINDS", {"pair": throttle.Kind(3, 10.0, 60.0),
                                            "name": throttle.Kind(3, 0.2, 0.4),
                                            "addr": throttle.Kind(30, 10.0, 60.0)})


def test_failed_sign_ins_back_off_per_name_never_lock_out_and_replicas_agree(db, quick_backoff):
    async def attempt(client, password, address):
        resp = await client.post("/api/agent/login", json={"name": "amy", "password": password},
                                 headers={"X-Forwarded-For": address})
        return resp.status, resp.headers.get("Retry-After")

    async def scenario():
        AgentStore().create("amy", "password-amy")
        trusted = settings(trusted_proxies=networks("127.0.0.1"))
        one, two = create_app(trusted), create_app(trusted)       # two replicas, one database
        async with served(one) as a, served(two) as b:
            statuses = [(await attempt(a if n % 2 else b, "wrong", "198.51.100.7"))[0]
                        for n in range(12)]
            assert statuses[:3] == [401] * 3                     # the free tries for the pair
            assert 429 in statuses                               # then a growing wait (both replicas)
            status, retry_after = await attempt(a, "wrong", "198.51.100.7")
            assert status == 429 and int(retry_after) >= 1
            # the real agent elsewhere: at most the name's short back-off, then signed in
            deadline = time.monotonic() + 5
            while True:
                status, _ = await attempt(b, "password-amy", "203.0.113.20")
                if status != 429 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert status == 200
            # the attacker's own address still waits (its pair backs off much longer)
            assert (await attempt(a, "password-amy", "198.51.100.7"))[0] == 429
    asyncio.run(scenario())


def test_without_a_trusted_proxy_the_forwarded_header_changes_nothing(db, quick_backoff):
    async def scenario():
        AgentStore().create("amy", "password-amy")
        async with served(create_app(settings())) as client:
            statuses = []
            for n in range(8):                  # a new forged address every time: one client
                resp = await client.post("/api/agent/login", json={"name": "amy", "password": "x"},
                                         headers={"X-Forwarded-For": f"192.0.2.{n}"})
                statuses.append(resp.status)
            assert 429 in statuses
    asyncio.run(scenario())


def test_password_change_reset_deactivation_and_revoked_sessions(db):
    async def scenario():
        store = AgentStore()
        store.create("root", "password-root", role="admin")
        amy = store.create("amy", "password-amy")
        app = create_app(settings())
        async with served(app) as admin:
            laptop, phone = TestClient(admin.server), TestClient(admin.server)   # Amy's two sessions
            await sign_in(admin, "root", "password-root")
            await sign_in(laptop, "amy", "password-amy")
            await sign_in(phone, "amy", "password-amy")
            sessions = (await (await laptop.get("/api/agent/sessions")).json())["sessions"]
            assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1

            # her own password: the current one is checked; her other sessions end
            bad = await laptop.post("/api/agent/password", json={"current_password": "nope",
                                                                 "new_password": "password-new1"})
            assert bad.status == 403
            ok = await laptop.post("/api/agent/password", json={
                "current_password": "password-amy", "new_password": "password-new1"})
            assert ok.status == 200
            assert (await phone.get("/api/agent/me")).status == 401
            assert (await laptop.get("/api/agent/me")).status == 200
            assert store.authenticate("amy", "password-new1") is not None

            # an agent cannot use the admin routes
            for path in (f"/api/agent/agents/{amy.id}/password", f"/api/agent/agents/{amy.id}/deactivate",
                         f"/api/agent/agents/{amy.id}/sessions/revoke", f"/api/agent/agents/{amy.id}/telegram"):
                assert (await laptop.post(path, json={"password": "x" * 10})).status == 403, path

            # revoking: one session by id, then every session of hers by an admin
            await sign_in(phone, "amy", "password-new1")
            sessions = (await (await laptop.get("/api/agent/sessions")).json())["sessions"]
            other = next(s["id"] for s in sessions if not s["current"])
            assert (await laptop.post("/api/agent/sessions/revoke", json={"session_id": other})).status == 200
            assert (await phone.get("/api/agent/me")).status == 401
            assert (await admin.post(f"/api/agent/agents/{amy.id}/sessions/revoke", json={})).status == 200
            assert (await laptop.get("/api/agent/me")).status == 401

            # an admin's reset: the new password works, every session of hers had ended
            await sign_in(laptop, "amy", "password-new1")
            assert (await admin.post(f"/api/agent/agents/{amy.id}/password",
                                     json={"password": "password-reset"})).status == 200
            assert (await laptop.get("/api/agent/me")).status == 401
            await sign_in(laptop, "amy", "password-reset")

            # deactivation ends the session at once and refuses sign-in; activation undoes it
            assert (await admin.post(f"/api/agent/agents/{amy.id}/deactivate", json={})).status == 200
            assert (await laptop.get("/api/agent/me")).status == 401
            resp = await laptop.post("/api/agent/login", json={"name": "amy", "password": "password-reset"})
            assert resp.status == 401
            listed = (await (await admin.get("/api/agent/agents?all=1")).json())["agents"]
            assert {a["name"]: a["active"] for a in listed} == {"root": True, "amy": False}
            assert (await admin.post(f"/api/agent/agents/{amy.id}/activate", json={})).status == 200
            await sign_in(laptop, "amy", "password-reset")
            # and the link that lets her claim in the agents' group
            resp = await admin.post(f"/api/agent/agents/{amy.id}/telegram", json={"telegram_user_id": "7001"})
            assert resp.status == 200 and store.for_telegram_user("7001").id == amy.id
            assert (await admin.post(f"/api/agent/agents/{store.by_name('root').id}/deactivate",
                                     json={})).status == 409          # not oneself
            await phone.session.close()
            await laptop.session.close()
    asyncio.run(scenario())


NEW_ROUTES = [("POST", "/api/agent/password"), ("GET", "/api/agent/sessions"),
              ("POST", "/api/agent/sessions/revoke"), ("POST", "/api/agent/agents/1/password"),
              ("POST", "/api/agent/agents/1/deactivate"), ("POST", "/api/agent/agents/1/activate"),
              ("POST", "/api/agent/agents/1/telegram"), ("POST", "/api/agent/agents/1/sessions/revoke"),
              ("GET", "/api/agent/outbox"), ("POST", "/api/agent/outbox/1/retry")]


def test_the_new_account_and_outbox_routes_refuse_anonymous_requests(db):
    async def scenario():
        async with served(create_app(settings())) as client:
            for method, path in NEW_ROUTES:
                resp = await client.request(method, path, json={} if method == "POST" else None)
                assert resp.status == 401, (method, path, resp.status)
    asyncio.run(scenario())


# --- 10: flooding ---------------------------------------------------------------------------


class SlowRasa:
    """Rasa's REST channel, status and the action server's health, answering when let go."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.inside = 0
        self.most_inside = 0
        self.texts = []

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.texts.append(body["message"])
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            await self.release.wait()
        finally:
            self.inside -= 1
        return web.json_response([{"recipient_id": body["sender"], "text": f"答：{body['message']}"}])

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self.webhook)
        app.router.add_get("/status", lambda r: _json({"model_file": "m.tar.gz"}))
        app.router.add_get("/health", lambda r: _json({"status": "ok"}))
        return app


async def _json(body):
    return web.json_response(body)


def test_one_address_cannot_flood_with_new_sender_ids_but_clients_behind_a_proxy_can_talk(db):
    async def scenario():
        app = create_app(settings(rate_per_address_minute=60, rate_address_burst=3,
                                  trusted_proxies=networks("127.0.0.1")))
        async with served(app) as client:
            statuses = []
            for n in range(5):                     # a new conversation id every message
                resp = await client.post("/api/chat", json={"sender": f"flood{n}", "message": "hi"},
                                         headers={"X-Forwarded-For": "198.51.100.50"})
                statuses.append(resp.status)
            assert statuses == [200, 200, 200, 429, 429]
            assert resp.headers["Retry-After"] == "1"
            refused = await resp.json()
            assert "too many" in refused["error"]
            # another customer behind the same proxy is not affected
            resp = await client.post("/api/chat", json={"sender": "calm", "message": "hi"},
                                     headers={"X-Forwarded-For": "198.51.100.51"})
            assert resp.status == 200
            # nothing of the refused messages was stored
            assert TranscriptStore().transcript("web:flood4") == []
    asyncio.run(scenario())


def test_over_the_admission_limit_the_customer_hears_busy_and_the_line_is_replayed(db):
    from bot.gateway.router import BUSY_TEXT, Replayer

    rasa = SlowRasa()

    async def scenario():
        async with served(rasa.app()) as fake:
            base = str(fake.make_url("")).rstrip("/")
            app = create_app(settings(rasa_url=base, action_url=base, max_concurrent_turns=2,
                                      reply_timeout=30))
            async with served(app) as client:
                async def say(sender, text):
                    resp = await client.post("/api/chat", json={"sender": sender, "message": text})
                    return [m["text"] for m in (await resp.json())["messages"]]

                first = [asyncio.ensure_future(say(f"c{n}", f"问题{n}")) for n in range(2)]
                await until(lambda: rasa.inside == 2, what="two turns in Rasa")
                assert await asyncio.wait_for(say("c2", "问题2"), 5) == [BUSY_TEXT]   # at once
                assert TranscriptStore().pending()[0]["text"] == "问题2"
                rasa.release.set()
                assert [await f for f in first] == [["答：问题0"], ["答：问题1"]]
                router = app["router"]
                assert await Replayer(router).run_once() == 1       # the waiting line, answered
                lines = TranscriptStore().transcript("web:c2")
                assert [l["text"] for l in lines][-1] == "答：问题2"
                assert router.admission.active == 0
                assert len(router.locks) == 0                    # no per-conversation state left
        return rasa

    rasa = asyncio.run(scenario())
    assert rasa.most_inside == 2


def test_per_conversation_state_stays_bounded():
    from bot.gateway.admission import TurnLocks
    from bot.gateway.router import RateLimiter

    limiter = RateLimiter(60, 5, max_keys=100)
    for n in range(10_000):                             # a flood of new ids
        limiter.allow(f"web:new{n}")
    assert len(limiter._buckets) <= 100
    hot = RateLimiter(60, 2, max_keys=10)
    assert hot.allow("flooder") and hot.allow("flooder") and not hot.allow("flooder")
    for n in range(5):                                 # others come and go: the hot one stays
        hot.allow(f"other{n}")
    assert not hot.allow("flooder")

    async def locks():
        turn_locks, order = TurnLocks(), []

        async def turn(conversation, n):
            async with turn_locks[conversation]:
                order.append((conversation, n, "in"))
                await asyncio.sleep(0.01)
                order.append((conversation, n, "out"))

        await asyncio.gather(*(turn(f"c{n % 50}", n) for n in range(500)))
        same = [(n, step) for c, n, step in order if c == "c7"]
        assert same == [(n, step) for n in range(7, 500, 50) for step in ("in", "out")]  # serial, FIFO
        return len(turn_locks)

    assert asyncio.run(locks()) == 0


# --- schema: revision 0004 ------------------------------------------------------------------


def test_revision_0004_moves_waiting_agent_side_rows_and_stops_provisioned_accounts(scratch_pg):
    from alembic import command
    from sqlalchemy import text

    from bot.store.migrations import alembic_config

    with scratch_pg.connect() as conn:
        command.upgrade(alembic_config(conn), "0e5b7a3c9d21")        # the revision before
        conn.commit()
        conn.execute(text(
            "INSERT INTO agent_outbox (target, handoff_id, payload, created_at, attempts, delivered_at) "
            "VALUES ('telegram', 5, '{\"op\": \"thread\"}', now(), 2, NULL), "
            "('wecom', NULL, '{}', now(), 0, now()), ('wecom', NULL, '{\"n\": 1}', now(), 9, NULL)"))
        conn.execute(text(
            "INSERT INTO agents (name, display_name, role, password_hash, active, created_at, "
            "telegram_user_id) VALUES ('tg-7', 'x', 'agent', NULL, 1, now(), '7'), "
            "('amy', 'amy', 'agent', 'scrypt$1', 1, now(), '8')"))
        conn.commit()
        command.upgrade(alembic_config(conn), "4e8b1d0c7a52")
        conn.commit()
        rows = conn.execute(text("SELECT target, handoff_id, order_key, attempts FROM outbox "
                                 "ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("telegram", 5, "handoff:5", 0), ("wecom", None, None, 0)]
        active = dict(conn.execute(text("SELECT name, active FROM agents")).all())
        assert active == {"tg-7": 0, "amy": 1}
