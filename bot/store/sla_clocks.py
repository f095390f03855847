"""A ticket's two SLA clocks in SQL: first response and resolution, counted in service hours.

The state machine lives here, on rows, so the ticket store moves the clocks in the same
transaction as the status change that moves them:

* opened: both clocks ``active`` and running (``running_since`` = creation);
* waiting on the customer (status ``waiting``): running clocks pause (``used_s`` banks the
  service seconds so far, ``due_at`` cleared); leaving ``waiting`` resumes them;
* first human response (an agent's reply, or an agent moving the ticket on): the
  first-response clock stops, ``hit`` unless it was already ``missed``;
* resolved: the resolution clock stops likewise (reopened: it runs again, keeping its count);
* :meth:`SlaClockStore.mark_missed` (the ``sla-clocks`` loop, bot/support/sla_clocks.py)
  marks a running clock past ``due_at`` ``missed`` once; the ticket's first breach escalates
  it and is noted in ``sla_breaches`` (the consoles' ⚠, the breach count). A stopped clock
  (a first response already given) is never missed afterwards.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bot.profile import sla
from bot.store.engine import get_engine, retrying
from bot.store.schema import Handoff, SlaBreach, SlaClock, Ticket, TicketEvent


def aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def start_clocks(session, ticket: Ticket, at: dt.datetime) -> None:
    calendar = sla.around_the_clock(ticket.kind, ticket.priority)
    for name in sla.CLOCKS:
        budget = sla.clock_budget(name, ticket.kind, ticket.priority)
        session.add(SlaClock(ticket_id=ticket.id, clock=name, state="active",
                             calendar=int(calendar), budget_s=budget, used_s=0.0,
                             running_since=at, started_at=at,
                             due_at=sla.add_service_seconds(at, budget, calendar=calendar)))


def reprioritise(session, ticket: Ticket, at: dt.datetime) -> None:
    """The ticket's priority changed (a threat said after filing): its running clocks take the
    new budget and calendar, keeping the service time already used."""
    calendar = sla.around_the_clock(ticket.kind, ticket.priority)
    for name, clock in _clocks(session, ticket.id).items():
        if clock.stopped_at is not None:
            continue
        clock.budget_s = sla.clock_budget(name, ticket.kind, ticket.priority)
        clock.calendar = int(calendar)
        if clock.running_since is not None:
            _bank(clock, at)
            _resume(clock, at)


def _clocks(session, ticket_id: int) -> Dict[str, SlaClock]:
    return {c.clock: c for c in session.scalars(select(SlaClock).where(
        SlaClock.ticket_id == ticket_id).with_for_update())}


def _bank(clock: SlaClock, at: dt.datetime) -> None:
    """Add the running stretch to ``used_s`` (service seconds) and stop it running."""
    since = aware(clock.running_since)
    if since is not None:
        clock.used_s = (clock.used_s or 0.0) + sla.service_seconds(
            since, at, calendar=bool(clock.calendar))
    clock.running_since = None


def _stop(clock: SlaClock | None, at: dt.datetime) -> None:
    if clock is None or clock.stopped_at is not None:
        return
    _bank(clock, at)
    clock.stopped_at, clock.due_at = at, None
    if clock.state == "active":
        clock.state = "hit" if clock.used_s <= clock.budget_s else "missed"
        if clock.state == "missed":
            clock.breached_at = at


def _resume(clock: SlaClock | None, at: dt.datetime) -> None:
    if clock is None or clock.stopped_at is not None or clock.running_since is not None:
        return
    clock.running_since = at
    left = max(0.0, clock.budget_s - (clock.used_s or 0.0))
    clock.due_at = sla.add_service_seconds(at, left, calendar=bool(clock.calendar))


def responded(session, ticket_id: int, at: dt.datetime) -> bool:
    """A person answered: the first-response clock stops. True when it was running."""
    clock = _clocks(session, ticket_id).get(sla.FIRST_RESPONSE)
    running = clock is not None and clock.stopped_at is None
    _stop(clock, at)
    return running


def on_status(session, ticket: Ticket, from_status: str, to_status: str, at: dt.datetime, *,
              by_person: bool) -> None:
    """Move the clocks for a status change (in the status change's transaction)."""
    clocks = _clocks(session, ticket.id)
    if by_person and to_status != "new":
        _stop(clocks.get(sla.FIRST_RESPONSE), at)
    if to_status == "waiting":
        for clock in clocks.values():
            if clock.stopped_at is None:
                _bank(clock, at)
                clock.due_at = None
    elif from_status == "waiting":
        for clock in clocks.values():
            _resume(clock, at)
    if to_status in ("resolved", "closed"):
        _stop(clocks.get(sla.RESOLUTION), at)
    elif from_status in ("resolved",) and to_status not in ("closed",):
        resolution = clocks.get(sla.RESOLUTION)       # reopened: the same clock runs on
        if resolution is not None and resolution.stopped_at is not None:
            resolution.stopped_at = None
            if resolution.state == "hit":
                resolution.state = "active"
            _resume(resolution, at)


def clock_json(clock: SlaClock, now: dt.datetime) -> Dict[str, Any]:
    used = clock.used_s or 0.0
    since = aware(clock.running_since)
    if since is not None:
        used += sla.service_seconds(since, now, calendar=bool(clock.calendar))
    due = aware(clock.due_at)
    return {"clock": clock.clock, "state": clock.state, "budget_s": round(clock.budget_s),
            "used_s": round(used), "paused": clock.stopped_at is None and since is None,
            "calendar": bool(clock.calendar), "due_at": due.isoformat() if due else None,
            "stopped_at": aware(clock.stopped_at).isoformat() if clock.stopped_at else None,
            "breached_at": aware(clock.breached_at).isoformat() if clock.breached_at else None}


def clocks_for(session, ticket_id: int, now: dt.datetime) -> List[Dict[str, Any]]:
    rows = session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket_id)
                           .order_by(SlaClock.id))
    return [clock_json(c, now) for c in rows]


class SlaClockStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def mark_missed(self, now: dt.datetime, limit: int = 200) -> List[Dict[str, Any]]:
        """Every running clock past its due time becomes ``missed`` (once); returns them,
        with whether this is the ticket's first breach (escalated here: priority up once)
        and the ticket's latest handoff (``handoff_id``, None without one)."""
        from bot.store.tickets import OPEN_STATUSES     # (bot.store.tickets imports this module)

        def work(session):
            # a ticket resolved or closed without a person's first answer (the customer
            # withdrew it) is not answered late: only open tickets breach
            rows = session.scalars(select(SlaClock).join(Ticket, Ticket.id == SlaClock.ticket_id).where(
                SlaClock.state == "active", SlaClock.due_at.is_not(None), SlaClock.due_at < now,
                Ticket.status.in_(OPEN_STATUSES))
                .order_by(SlaClock.due_at).limit(limit).with_for_update()).all()
            out = []
            for clock in rows:
                if aware(clock.due_at) >= now:           # SQLite compares naive strings
                    continue
                clock.state, clock.breached_at = "missed", now
                ticket = session.get(Ticket, clock.ticket_id)
                escalate = ticket.escalated_at is None
                before = ticket.priority
                if escalate:
                    ticket.escalated_at = now
                    ticket.priority = {"normal": "high"}.get(ticket.priority, "urgent")
                    session.add(TicketEvent(ticket_id=ticket.id, kind="escalated", actor="sla",
                                            at=now, note=f"{before} → {ticket.priority}"))
                    if session.scalar(select(SlaBreach.id).where(
                            SlaBreach.ticket_id == ticket.id)) is None:
                        session.add(SlaBreach(ticket_id=ticket.id, at=now))
                session.add(TicketEvent(ticket_id=ticket.id, kind="sla_missed", actor="sla",
                                        at=now, note=clock.clock))
                handoff = session.scalar(select(Handoff.id).where(
                    Handoff.ticket_number == ticket.number).order_by(Handoff.id.desc()).limit(1))
                out.append({"ticket": ticket.number, "ticket_id": ticket.id, "handoff_id": handoff,
                            "clock": clock.clock, "kind": ticket.kind,
                            "priority": ticket.priority, "escalated": escalate,
                            "assignee_id": ticket.assignee_id,
                            "due": aware(clock.due_at).isoformat()})
            return out
        return retrying(work, engine=self.engine)

    def responded(self, ticket_number: str, at: dt.datetime) -> bool:
        def work(session):
            ticket = session.scalars(select(Ticket).where(Ticket.number == ticket_number)).first()
            return bool(ticket) and responded(session, ticket.id, at)
        return retrying(work, engine=self.engine)

    def set_first_reply(self, handoff_id: int, at: dt.datetime) -> None:
        """The handoff's first human reply (reports measure FRT from it), set once."""
        retrying(lambda session: session.execute(update(Handoff).where(
            Handoff.id == handoff_id, Handoff.first_reply_at.is_(None))
            .values(first_reply_at=at)), engine=self.engine)
