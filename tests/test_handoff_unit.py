"""Handoff pieces without the stack: accounts and sessions, outside-hours behaviour, the
queue's claim rule, the SLA watcher and the WeCom robot alert (against a local fake).
Sign-in back-off: tests/test_hardening_support.py."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from aiohttp import web

from bot.profile import business as profile
from bot.store.agents import AgentError, AgentStore, hash_password, main as agents_main, verify_password
from bot.store.handoffs import HandoffError, HandoffStore, check_sla
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


def test_sla_watcher_marks_once_and_alerts_the_wecom_robot(db, monkeypatch):
    from bot.settings import setting
    from bot.support.handoffs import HandoffService
    from bot.workspace.alerts import WeComAlerts

    received = []

    async def scenario():
        async def robot(request):
            received.append(await request.json())
            return web.json_response({"errcode": 0, "errmsg": "ok"})

        robot_app = web.Application()
        robot_app.router.add_post("/cgi-bin/webhook/send", robot)
        runner = web.AppRunner(robot_app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        monkeypatch.setenv("KEFU_WECOM_WEBHOOK", f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=k")
        service = HandoffService(senders=FakeApp()["senders"])
        alerts = WeComAlerts(service, setting("KEFU_WECOM_WEBHOOK"))
        alerts.attach(service.bus)
        ticket, _ = TicketStore().open_ticket(kind="complaint", category="物流配送",
                                              description="x", customer_id="web:late",
                                              channel="web", idempotency_key="late-1",
                                              priority="high")
        assert await service.check_sla_once() == []              # not due yet
        monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-28T11:00:00")  # 25 h later
        breached = await service.check_sla_once()
        assert [b["ticket"] for b in breached] == [ticket.number]
        assert await service.check_sla_once() == []              # marked once
        loop = asyncio.ensure_future(service.outbox_loop())
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        loop.cancel()
        await alerts.close()
        await runner.cleanup()
        return ticket

    ticket = asyncio.run(scenario())
    assert received and ticket.number in received[0]["text"]["content"]
    assert received[0]["msgtype"] == "text"
    events = [e["kind"] for e in TicketStore().find(ticket.number).events]
    assert "sla_breach" in events
    assert HandoffStore().pending("wecom") == []                 # delivered, not queued


def test_sla_check_ignores_closed_tickets(db):
    ticket, _ = TicketStore().open_ticket(kind="repair", category="空调", description="x",
                                          customer_id="web:r", channel="web",
                                          idempotency_key="r-1")
    TicketStore().change_status(ticket.number, "closed", actor="t")
    later = profile.now() + dt.timedelta(days=3)
    assert check_sla(later) == []
