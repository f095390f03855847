"""Waiting for a person (issue 14): every line acknowledged with the queue position, and
"算了不等了" cancels the handoff (no rating asked) and hands the conversation back to the bot."""
import asyncio

import pytest

from bot.messages import InboundMessage
from bot.support.handoffs import HandoffService


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/wait.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")
    return HandoffService()


def test_queued_customer_is_acknowledged_then_can_cancel(service):
    async def scenario():
        await service.open("web:a", "web", "a", ticket_number=None, reason="request_human")
        await service.open("web:b", "web", "b", ticket_number="KF26112700000001", reason="request_human")
        ack = await service.gate(InboundMessage(channel="web", user_id="b", text="人呢？"))
        assert ack and "第 2 位" in ack[0].text and "KF26112700000001" in ack[0].text   # the record to refer to
        gone = await service.gate(InboundMessage(channel="web", user_id="a", text="算了不等了"))
        assert gone and "取消" in gone[0].text
        assert await service.gate(InboundMessage(channel="web", user_id="a", text="运费多少")) is None
        assert service.store.rating_ticket("web:a") is None       # cancelled: no rating asked
        moved = await service.gate(InboundMessage(channel="web", user_id="b", text="还要多久"))
        assert "第 1 位" in moved[0].text
    asyncio.run(scenario())


# --- position pushed when it changes (throttled), callback ticket at shift end ------------------

from sqlalchemy import update  # noqa: E402

from bot.store.schema import Handoff  # noqa: E402
from bot.support.waiting import PUSH_EVERY, QueueWatcher  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(service, conversation, mark):
    return [line["text"] for line in service.transcripts.transcript(conversation)
            if mark in line["text"]]


async def no_push(user_id, messages):          # a pushing channel; the outbox is not run here
    raise AssertionError("the outbox is not run in these tests")


def test_position_is_pushed_when_it_changes_at_most_once_a_minute(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/push.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")
    service = HandoffService(senders={"telegram": no_push})
    service.clock = clock = Clock()
    watcher = QueueWatcher(service)
    service.bus.subscribe_many(("claimed", "closed"), watcher.on_queue_event)
    agent = service.agents.create("amy", "pw-amy-123456")

    async def scenario():
        first = await service.open("web:a", "web", "a", ticket_number=None, reason="request_human")
        second = await service.open("web:b", "web", "b", ticket_number=None, reason="request_human")
        await service.open("telegram:c", "telegram", "c", ticket_number=None, reason="request_human")
        assert await watcher.run_once() == {"closed": 0, "pushed": 0}     # nothing changed
        clock.now += PUSH_EVERY + 1
        await service.claim(first.id, agent)            # a is served: b and c move up at once
        assert lines(service, "web:b", "排队进度") == [
            "排队进度更新：您现在排在第 1 位，请稍候～（不想等了可以回复“算了不等了”）"]
        assert len(lines(service, "telegram:c", "排队进度")) == 1
        # the push to the Telegram customer went through the durable outbox
        rows = service.store.outbox.pending("customer:telegram")
        assert any("第 2 位" in m["text"] for r in rows for m in r["payload"]["messages"])
        clock.now += 10
        await service.gate(InboundMessage(channel="web", user_id="b", text="算了不等了"))
        # c moved up again, but was told 10 s ago: throttled, nothing yet
        assert len(lines(service, "telegram:c", "排队进度")) == 1
        assert await watcher.run_once() == {"closed": 0, "pushed": 0}
        clock.now += PUSH_EVERY
        assert await watcher.run_once() == {"closed": 0, "pushed": 1}    # the minute is over
        assert "第 1 位" in lines(service, "telegram:c", "排队进度")[-1]
        clock.now += PUSH_EVERY * 5
        assert await watcher.run_once() == {"closed": 0, "pushed": 0}    # told already
        assert second.id not in service.told_positions                   # cancelled: forgotten
    asyncio.run(scenario())


def test_a_customer_queued_at_closing_time_gets_a_callback_ticket(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/shift.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T20:30:00")       # the shop closes at 21:00
    service = HandoffService()
    watcher = QueueWatcher(service)
    import datetime as dt

    async def scenario():
        ticket, _ = service.tickets.open_ticket(
            kind="callback", category="人工服务", description="转人工", customer_id="a",
            channel="web", idempotency_key="t1", phone="13900008765")
        waiting = await service.open("web:a", "web", "a", ticket_number=ticket.number,
                                     reason="request_human")
        late = await service.open("web:b", "web", "b", ticket_number=None, reason="request_human")
        queued_at = dt.datetime(2026, 11, 27, 12, 30, tzinfo=dt.timezone.utc)   # 20:30 shop time
        with service.store.engine.begin() as db:
            db.execute(update(Handoff).where(Handoff.id == waiting.id).values(created_at=queued_at))
            db.execute(update(Handoff).where(Handoff.id == late.id).values(
                created_at=queued_at + dt.timedelta(hours=1)))        # opened after closing
        assert (await watcher.run_once())["closed"] == 0             # still open: nothing
        monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T21:00:30")
        assert (await watcher.run_once())["closed"] == 1
        assert (await watcher.run_once())["closed"] == 0             # once only
        assert service.store.active("web:a") is None
        assert service.store.active("web:b").status == "queued"     # not this shift's
        assert service.store.rating_ticket("web:a") is None          # no rating asked
        callbacks = [t for t in service.tickets.for_customer("web:a") if t.number != ticket.number]
        assert len(callbacks) == 1 and callbacks[0].kind == "callback"
        callback = service.tickets.find(callbacks[0].number, unmasked=True)
        assert callback.phone == "13900008765" and callback.details["reason"] == "shift_end"
        # due from the next opening (09:00) plus the callback promise, not tonight
        opening = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.timezone.utc)
        assert callback.sla_due_at.replace(tzinfo=dt.timezone.utc) > opening
        told = lines(service, "web:a", "回电工单")
        assert len(told) == 1 and callback.number in told[0] and "已下班" in told[0]
        notes = [e["note"] for e in service.tickets.find(ticket.number).events]
        assert any(callback.number in (n or "") for n in notes)
        # the customer is back with the bot
        assert await service.gate(InboundMessage(channel="web", user_id="a", text="运费多少")) is None
    asyncio.run(scenario())
