"""Handoff pieces without the stack: accounts and sessions, outside-hours behaviour, the
queue's claim rule, SLA breaches through the clocks (marked, escalated and alerted once)
and the WeCom robot alert (against a local fake).
Sign-in back-off: tests/test_hardening_support.py."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from aiohttp import web

from bot.profile import business as profile
from bot.store.agents import AgentError, AgentStore, hash_password, main as agents_main, verify_password
from bot.store.handoffs import HandoffError, HandoffStore
from bot.store.tickets import TicketStore
from bot.store.transcripts import TranscriptStore
from bot.messages import InboundMessage


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/unit.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")
    from actions import common
    common.store.cache_clear()
    yield
    common.store.cache_clear()


def test_passwords_are_hashed_with_scrypt_and_salted():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("scrypt$") and first != second and "correct" not in first
    assert verify_password("correct horse", first) and not verify_password("wrong horse", first)
    assert not verify_password("x", None) and not verify_password("x", "md5$abc")


def test_accounts_sessions_and_the_admin_command(db, monkeypatch, capsys):
    monkeypatch.setenv("KEFU_ADMIN_PASSWORD", "s3cret-passphrase")
    assert agents_main(["create-admin", "root"]) == 0
    assert agents_main(["create-admin", "root"]) == 1          # exists already
    store = AgentStore()
    admin = store.authenticate("root", "s3cret-passphrase")
    assert admin is not None and admin.role == "admin"
    assert store.authenticate("root", "wrong") is None
    assert store.authenticate("nobody", "s3cret-passphrase") is None
    with pytest.raises(AgentError):
        store.create("ann", "short")
    token = store.start_session(admin.id)
    assert store.session_agent(token).name == "root"
    store.end_session(token)
    assert store.session_agent(token) is None
    expired = store.start_session(admin.id, hours=-1)
    assert store.session_agent(expired) is None
    assert store.session_agent("forged-token") is None


def test_the_first_claim_wins(db):
    store, agents = HandoffStore(), AgentStore()
    amy, bob = agents.create("amy", "password-1"), agents.create("bob", "password-2")
    handoff, created = store.open(conversation_id="web:x", channel="web", user_id="x",
                                  ticket_number=None, reason="request_human")
    assert created and store.queue_position(handoff.id) == 1
    again, created = store.open(conversation_id="web:x", channel="web", user_id="x",
                                ticket_number=None, reason="request_human")
    assert not created and again.id == handoff.id                # one active handoff each
    assert store.claim(handoff.id, amy.id).agent_id == amy.id
    assert store.claim(handoff.id, amy.id).agent_id == amy.id    # idempotent for the holder
    with pytest.raises(HandoffError):
        store.claim(handoff.id, bob.id)
    store.close(handoff.id)
    with pytest.raises(HandoffError):
        store.claim(handoff.id, bob.id)


class FakeApp(dict):
    def __init__(self):
        super().__init__()
        self.pushed = []

        class Router:
            transcripts = TranscriptStore()

        async def push(user_id, messages):
            self.pushed.append((user_id, [m.text for m in messages]))

        self["router"] = Router()
        self["senders"] = {"wechat": push}


def _run_action(action, text: str, sender: str):
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    tracker = Tracker(sender, {}, {"text": text, "intent": {"name": "request_human"}},
                      [{"event": "user", "timestamp": 1.0, "text": text}], False, None, {}, None)
    dispatcher = CollectingDispatcher()
    action.run(dispatcher, tracker, {})
    return dispatcher.messages


def test_outside_service_hours_a_callback_ticket_and_no_queue(db, monkeypatch):
    from actions.service import RequestHuman
    from bot.support.handoffs import HandoffService

    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T23:30:00")     # shop closes at 21:00
    assert not profile.within_service_hours()
    messages = _run_action(RequestHuman(), "转人工", "wechat:night-owl")
    text = next(m["text"] for m in messages if m.get("text"))
    payload = next(m["custom"]["kefu"] for m in messages if m.get("custom"))
    assert "非人工服务时间" in text and payload["in_hours"] is False
    ticket = TicketStore().find(payload["ticket"])
    local_due = ticket.sla_due_at.astimezone(profile.shop_tz())
    assert (local_due.day, local_due.hour) == (28, 13)          # opening 09:00 + 4 h callback
    assert ticket.number in text

    app = FakeApp()
    service = HandoffService(transcripts=app["router"].transcripts, senders=app["senders"])
    message = InboundMessage(channel="wechat", user_id="night-owl", text="转人工")
    asyncio.run(service.on_kefu_event(message, payload))
    complaint = {"event": "ticket_created", "ticket": ticket.number, "kind": "complaint",
                 "priority": "high", "handoff": True}
    asyncio.run(service.on_kefu_event(message, complaint))
    assert HandoffStore().active("wechat:night-owl") is None      # nobody is queued at night
    assert app.pushed == []

    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-28T09:30:00")     # next morning: in hours
    asyncio.run(service.on_kefu_event(message, complaint))
    handoff = HandoffStore().active("wechat:night-owl")
    assert handoff is not None and handoff.priority == "high"
    asyncio.run(service.outbox_round())                          # pushes go through the outbox
    assert app.pushed and "第 1 位" in app.pushed[0][1][0]          # told the queue position


class Robot:
    """WeCom's group robot (``/cgi-bin/webhook/send``), served in the test's loop."""

    def __init__(self) -> None:
        self.received: list = []

    async def send(self, request):
        self.received.append((await request.json())["text"]["content"])
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self.send)
        return app

    def breaches(self, number: str) -> list:
        """The robot's alerts of ticket ``number`` being late (超时), whatever loop sent them."""
        return [text for text in self.received if "超时" in text and number in text]


def _complaint(key: str, priority: str = "normal"):
    # opened 11-27 10:00: first response due 11-29 10:00 (24 service hours, 09:00-21:00),
    # resolution (72 service hours) on 12-03
    ticket, _ = TicketStore().open_ticket(kind="complaint", category="物流配送", description="x",
                                          customer_id=f"web:{key}", channel="web",
                                          idempotency_key=key, priority=priority)
    return ticket


async def _drain(service, what: str):
    for _ in range(200):
        await service.outbox_round({})
        if not HandoffStore().pending("wecom"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the outbox kept {what}")


def test_a_clock_breach_is_marked_once_escalates_once_and_alerts_the_robot_once(db, monkeypatch):
    from bot.support.handoffs import HandoffService
    from bot.support.sla_clocks import SlaClocks
    from bot.workspace.alerts import WeComAlerts
    from tests.fakes import served

    robot = Robot()

    async def scenario():
        async with served(robot.app()) as server:
            service = HandoffService()
            alerts = WeComAlerts(service, str(server.make_url("/cgi-bin/webhook/send?key=k")))
            alerts.attach(service.bus)
            clocks = SlaClocks(service.bus, engine=service.store.engine)
            clocks.attach(service.bus)
            ticket = _complaint("late-1")
            handoff = await service.open("web:late-1", "web", "late-1", ticket_number=ticket.number,
                                         reason="complaint_high")
            assert await clocks.check_once() == []                      # not due yet
            monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-29T12:00:00")  # first response late
            first = await clocks.check_once()
            assert await clocks.check_once() == []                      # marked once
            await _drain(service, "the first alert")
            after_first = list(robot.breaches(ticket.number))
            monkeypatch.setenv("KEFU_FAKE_NOW", "2026-12-09T12:00:00")  # resolution late too
            second = await clocks.check_once()
            assert await clocks.check_once() == []
            await _drain(service, "the second alert")
            await alerts.close()
            return ticket, handoff, first, second, after_first

    ticket, handoff, first, second, after_first = asyncio.run(scenario())
    assert [(m["clock"], m["escalated"], m["handoff_id"]) for m in first] == [
        ("first_response", True, handoff.id)]
    assert [(m["clock"], m["escalated"]) for m in second] == [("resolution", False)]
    # one alert per breach: the first says it was escalated for the lead, the second not
    assert len(after_first) == 1 and "首次响应" in after_first[0] and "请组长处理" in after_first[0]
    alerts = robot.breaches(ticket.number)
    assert len(alerts) == 2 and "解决" in alerts[1] and "组长" not in alerts[1]
    found = TicketStore().find(ticket.number)
    kinds = [e["kind"] for e in found.events]
    assert kinds.count("sla_missed") == 2 and kinds.count("escalated") == 1
    assert found.priority == "high"                                     # normal -> high, once
    listed = HandoffStore().listing(agent_id=None, include_all=True)
    assert [h["sla_breached"] for h in listed if h["id"] == handoff.id] == [True]   # the ⚠
    assert HandoffStore().report()["sla_breaches"] == 1


def test_closed_and_answered_tickets_never_breach(db):
    from bot.store.sla_clocks import SlaClockStore

    closed = _complaint("closed-1")
    TicketStore().change_status(closed.number, "closed", actor="customer")   # withdrawn
    answered = _complaint("answered-1")
    assert SlaClockStore().responded(answered.number, profile.now())
    late = profile.now() + dt.timedelta(days=2, hours=2)        # first responses due, not resolution
    assert SlaClockStore().mark_missed(late) == []


def test_the_running_gateway_alerts_a_breach_once_and_an_answered_ticket_never(db, monkeypatch):
    """The gateway's own wiring (bot/gateway/app.py): whatever SLA loops it runs, a breach
    reaches WeCom's robot once, and a ticket whose first response was given does not at all."""
    from bot.gateway.app import create_app
    from bot.settings import Settings
    from bot.store.agents import AgentStore
    from bot.support.sla_clocks import SlaClocks
    from tests.fakes import served

    robot = Robot()
    rounds = [0]
    check_once = SlaClocks.check_once

    async def counted(self):
        found = await check_once(self)
        rounds[0] += 1
        return found

    monkeypatch.setattr(SlaClocks, "check_once", counted)
    for name in ("KEFU_TELEGRAM_AGENT_TOKEN", "KEFU_TELEGRAM_TOKEN", "KEFU_WECHAT_TOKEN", "KEFU_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)

    async def wait_for(probe, what: str):
        for _ in range(600):
            if probe():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    async def scenario():
        async with served(robot.app()) as server:
            app = create_app(Settings(rasa_url="http://127.0.0.1:9", action_url="http://127.0.0.1:9",
                                      wecom_webhook=str(server.make_url("/cgi-bin/webhook/send?key=k")),
                                      sla_interval=0.05))
            async with served(app):
                late, answered = _complaint("gw-late"), _complaint("gw-answered")
                amy = AgentStore().create("amy", "password-amy")
                handoff = await app["handoff"].open("web:gw-answered", "web", "gw-answered",
                                                    ticket_number=answered.number,
                                                    reason="complaint_high", agent=amy)
                await app["handoff"].reply(handoff.id, amy, "您好，我们马上处理")   # first response
                monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-29T12:00:00")
                await wait_for(lambda: robot.breaches(late.number), "the breach alert")
                seen = rounds[0]
                await wait_for(lambda: rounds[0] >= seen + 3, "three more SLA rounds")
                await wait_for(lambda: not HandoffStore().pending("wecom"), "the outbox")
            return late, answered

    late, answered = asyncio.run(scenario())
    assert len(robot.breaches(late.number)) == 1, robot.received
    assert robot.breaches(answered.number) == [], robot.received
