"""Handoff state in SQL: the queue, who holds a conversation, the agent-side outbox.

Everything here is synchronous SQLAlchemy (call it through ``asyncio.to_thread`` from the
gateway). Nothing about a handoff lives only in a process's memory, so a gateway restart
in the middle of one leaves the conversation queued or with the same agent.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from bot.store.engine import get_engine, retrying
from bot.store.outbox import OutboxLease, OutboxStore
from bot.store.schema import Agent, Handoff, Message, SlaBreach, TelegramLink, Ticket

ACTIVE = ("queued", "claimed")


class HandoffError(ValueError):
    """A request the handoff lifecycle does not allow (already claimed, closed, ...)."""


@dataclass(frozen=True)
class HandoffView:
    id: int
    conversation_id: str
    channel: str
    user_id: str
    ticket_number: Optional[str]
    reason: str
    priority: str
    status: str
    agent_id: Optional[int]
    agent_name: Optional[str]
    created_at: str
    claimed_at: Optional[str]
    closed_at: Optional[str]
    last_read_message_id: int
    telegram_card_id: Optional[str]

    def as_json(self) -> Dict[str, Any]:
        return asdict(self)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _view(row: Handoff, agent_name: str | None = None) -> HandoffView:
    return HandoffView(row.id, row.conversation_id, row.channel, row.user_id, row.ticket_number,
                       row.reason, row.priority, row.status, row.agent_id, agent_name,
                       _iso(row.created_at), _iso(row.claimed_at), _iso(row.closed_at),
                       row.last_read_message_id or 0, row.telegram_card_id)


class HandoffStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()
        self.outbox = OutboxStore(self.engine)

    def _run(self, work):
        return retrying(work, engine=self.engine)

    def _read(self, work):
        """A read-only transaction: no wait behind this process's SQLite writers."""
        return retrying(work, engine=self.engine, write=False)

    @staticmethod
    def _agent_name(session, agent_id: int | None) -> str | None:
        if agent_id is None:
            return None
        agent = session.get(Agent, agent_id)
        return (agent.display_name or agent.name) if agent else None

    def _out(self, session, row: Handoff) -> HandoffView:
        return _view(row, self._agent_name(session, row.agent_id))

    # --- lifecycle ---------------------------------------------------------------------

    def open(self, *, conversation_id: str, channel: str, user_id: str,
             ticket_number: str | None, reason: str, priority: str = "normal",
             agent_id: int | None = None) -> tuple[HandoffView, bool]:
        """Queue the conversation for a person (or give it to ``agent_id`` at once).

        Returns ``(handoff, created)``; an active handoff of the conversation is reused.
        """
        def work(session):
            existing = session.scalars(select(Handoff).where(
                Handoff.conversation_id == conversation_id, Handoff.status.in_(ACTIVE))
                .order_by(Handoff.id.desc())).first()
            if existing is not None:
                return self._out(session, existing), False
            now = dt.datetime.now(dt.timezone.utc)
            row = Handoff(conversation_id=conversation_id, channel=channel, user_id=user_id,
                          ticket_number=ticket_number, reason=reason, priority=priority,
                          status="claimed" if agent_id else "queued", agent_id=agent_id,
                          claimed_at=now if agent_id else None, created_at=now)
            # a new handoff supersedes an unanswered rating request of an earlier one
            session.execute(update(Handoff).where(Handoff.conversation_id == conversation_id)
                            .values(awaiting_rating=0))
            session.add(row)
            session.flush()
            return self._out(session, row), True
        return self._run(work)

    def get(self, handoff_id: int) -> HandoffView | None:
        def work(session):
            row = session.get(Handoff, handoff_id)
            return self._out(session, row) if row else None
        return self._read(work)

    def active(self, conversation_id: str) -> HandoffView | None:
        def work(session):
            row = session.scalars(select(Handoff).where(
                Handoff.conversation_id == conversation_id, Handoff.status.in_(ACTIVE))
                .order_by(Handoff.id.desc())).first()
            return self._out(session, row) if row else None
        return self._read(work)

    def queue_position(self, handoff_id: int) -> int:
        """1 for the next conversation a person will take (high priority first, then FIFO)."""
        def work(session):
            row = session.get(Handoff, handoff_id)
            if row is None or row.status != "queued":
                return 0
            queued = session.scalars(select(Handoff).where(Handoff.status == "queued")).all()
            key = lambda h: (0 if h.priority in ("high", "urgent") else 1, h.id)  # noqa: E731
            return sorted(queued, key=key).index(row) + 1
        return self._read(work)

    def queued(self) -> List[HandoffView]:
        """Every queued handoff in the order people take them (``queue_position`` 1, 2, …)."""
        def work(session):
            rows = session.scalars(select(Handoff).where(Handoff.status == "queued")).all()
            key = lambda h: (0 if h.priority in ("high", "urgent") else 1, h.id)  # noqa: E731
            return [self._out(session, row) for row in sorted(rows, key=key)]
        return self._read(work)

    def claim(self, handoff_id: int, agent_id: int) -> HandoffView:
        """Atomic: the first claim wins everywhere (console and Telegram share this row)."""
        def work(session):
            now = dt.datetime.now(dt.timezone.utc)
            done = session.execute(update(Handoff).where(
                Handoff.id == handoff_id, Handoff.status == "queued")
                .values(status="claimed", agent_id=agent_id, claimed_at=now)).rowcount
            row = session.get(Handoff, handoff_id)
            if row is None:
                raise HandoffError("no such conversation")
            session.refresh(row)
            if not done and not (row.status == "claimed" and row.agent_id == agent_id):
                holder = self._agent_name(session, row.agent_id)
                raise HandoffError(f"already {row.status}" + (f" by {holder}" if holder else ""))
            return self._out(session, row)
        return self._run(work)

    def transfer(self, handoff_id: int, to_agent_id: int) -> HandoffView:
        def work(session):
            row = session.get(Handoff, handoff_id)
            if row is None or row.status not in ACTIVE:
                raise HandoffError("the conversation is not open")
            target = session.get(Agent, to_agent_id)
            if target is None or not target.active:
                raise HandoffError("no such agent")
            row.status, row.agent_id = "claimed", to_agent_id
            row.claimed_at = dt.datetime.now(dt.timezone.utc)
            session.flush()
            return self._out(session, row)
        return self._run(work)

    def close(self, handoff_id: int, *, only: tuple = ACTIVE) -> HandoffView:
        """``only=("queued",)``: close it only if no one has claimed it meanwhile."""
        def work(session):
            row = session.get(Handoff, handoff_id)
            if row is None or row.status not in only:
                raise HandoffError("the conversation is not open")
            row.status, row.awaiting_rating = "closed", 1
            row.closed_at = dt.datetime.now(dt.timezone.utc)
            session.flush()
            return self._out(session, row)
        return self._run(work)

    def attach_ticket(self, handoff_id: int, number: str) -> HandoffView:
        """The record opened when a person took the conversation (it had none while queued)."""
        def work(session):
            row = session.get(Handoff, handoff_id)
            if row is None:
                raise HandoffError("no such conversation")
            row.ticket_number = row.ticket_number or number
            session.flush()
            return self._out(session, row)
        return self._run(work)

    def mark_read(self, handoff_id: int, message_id: int) -> None:
        self._run(lambda session: session.execute(update(Handoff).where(
            Handoff.id == handoff_id, Handoff.last_read_message_id < message_id)
            .values(last_read_message_id=message_id)))

    def set_telegram_card(self, handoff_id: int, message_id: str) -> None:
        self._run(lambda session: session.execute(update(Handoff).where(
            Handoff.id == handoff_id).values(telegram_card_id=str(message_id))))

    # --- lists for the console ---------------------------------------------------------

    def listing(self, *, agent_id: int | None, include_all: bool,
                closed_limit: int = 20) -> List[Dict[str, Any]]:
        """Active handoffs (queued, own; every one for ``include_all``) and recent closed.

        Each row carries its ticket's SLA due time, whether it is breached and the count
        of customer lines not yet read. Sorted by SLA due time, soonest first.
        """
        def work(session):
            query = select(Handoff).where(Handoff.status.in_(ACTIVE))
            rows = list(session.scalars(query))
            closed = select(Handoff).where(Handoff.status == "closed")
            if not include_all:
                closed = closed.where(Handoff.agent_id == agent_id)
            rows += list(session.scalars(closed.order_by(Handoff.id.desc()).limit(closed_limit)))
            out = []
            for row in rows:
                if not include_all and row.status == "claimed" and row.agent_id != agent_id:
                    continue
                ticket = session.scalars(select(Ticket).where(
                    Ticket.number == row.ticket_number)).first() if row.ticket_number else None
                unread = session.scalar(select(func.count(Message.id)).where(
                    Message.conversation_id == row.conversation_id,
                    Message.author == "customer",
                    Message.id > (row.last_read_message_id or 0),
                    Message.at >= row.created_at)) or 0
                breached = bool(ticket and session.scalar(select(SlaBreach.id).where(
                    SlaBreach.ticket_id == ticket.id)))
                item = self._out(session, row).as_json()
                item.update(sla_due_at=_iso(ticket.sla_due_at) if ticket else None,
                            sla_breached=breached, unread=int(unread),
                            ticket_priority=ticket.priority if ticket else None,
                            rating=ticket.rating if ticket else None)
                out.append(item)
            far = "9999-12-31T00:00:00+00:00"
            out.sort(key=lambda h: (h["status"] == "closed", h["sla_due_at"] or far, h["id"]))
            return out
        return self._run(work)

    # --- ratings -------------------------------------------------------------------------

    def rating_ticket(self, conversation_id: str) -> str | None:
        """The ticket of the handoff just closed that still waits for the customer's score."""
        def work(session):
            row = session.scalars(select(Handoff).where(
                Handoff.conversation_id == conversation_id, Handoff.awaiting_rating == 1)
                .order_by(Handoff.id.desc())).first()
            return row.ticket_number if row else None
        return self._read(work)

    def rated(self, conversation_id: str) -> None:
        self._run(lambda session: session.execute(update(Handoff).where(
            Handoff.conversation_id == conversation_id).values(awaiting_rating=0)))

    def report(self) -> Dict[str, Any]:
        """Handoffs and satisfaction: counts by status, ratings and their average."""
        def work(session):
            counts = dict(session.execute(select(Handoff.status, func.count(Handoff.id))
                                          .group_by(Handoff.status)).all())
            numbers = [n for n in session.scalars(select(Handoff.ticket_number)) if n]
            rated = session.execute(select(Ticket.number, Ticket.rating, Ticket.kind).where(
                Ticket.number.in_(numbers), Ticket.rating.is_not(None))
                .order_by(Ticket.id.desc())).all()
            scores = [r.rating for r in rated]
            breaches = session.scalar(select(func.count(SlaBreach.id))) or 0
            return {"handoffs": counts, "rated": len(scores),
                    "average_rating": round(sum(scores) / len(scores), 2) if scores else None,
                    "ratings": [{"ticket": r.number, "rating": r.rating, "kind": r.kind}
                                for r in rated[:50]],
                    "sla_breaches": breaches}
        return self._run(work)

    # --- the outbox (bot/store/outbox.py; kept here for the handoff side's callers) ----

    def enqueue(self, target: str, payload: Dict[str, Any], handoff_id: int | None = None,
                key: str | None = None) -> int:
        return self.outbox.enqueue(target, payload, handoff_id, key)

    def pending(self, target: str, limit: int = 100) -> List[Dict[str, Any]]:
        return self.outbox.pending(target, limit)

    def outbox_lease(self, target: str) -> OutboxLease:
        return self.outbox.lease(target)

    # --- Telegram thread links -----------------------------------------------------------

    def link(self, chat_id: str, message_id: str, handoff_id: int) -> None:
        def work(session):
            exists = session.scalars(select(TelegramLink).where(
                TelegramLink.chat_id == str(chat_id),
                TelegramLink.message_id == str(message_id))).first()
            if exists is None:
                session.add(TelegramLink(chat_id=str(chat_id), message_id=str(message_id),
                                         handoff_id=handoff_id))
        self._run(work)

    def handoff_for_message(self, chat_id: str, message_id: str) -> HandoffView | None:
        def work(session):
            link = session.scalars(select(TelegramLink).where(
                TelegramLink.chat_id == str(chat_id),
                TelegramLink.message_id == str(message_id))).first()
            row = session.get(Handoff, link.handoff_id) if link else None
            return self._out(session, row) if row else None
        return self._run(work)
