"""Return calls (回访) in SQL: one task per resolved repair or complaint, tried until done.

``due`` → ``done`` (reached, with a 1–5 score, or refused) or ``unreachable`` (not reached
``return_call.max_attempts`` times); a ticket reopened before its call goes ``cancelled``.
The ticket closes in the same transaction as the call that finishes it: a repair or
complaint reaches ``closed`` only through its return call.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.profile import business as profile
from bot.profile import privacy, sla
from bot.store import sealing
from bot.store.engine import get_engine, retrying
from bot.store.schema import Agent, ReturnCall, Satisfaction, Ticket, TicketEvent

OUTCOMES = ("reached", "not_reached", "refused")
OUTCOME_LABELS = {"reached": "已联系", "not_reached": "未接通", "refused": "拒绝回访"}
STATUSES = ("due", "done", "unreachable", "cancelled")
FINISHED = ("done", "unreachable")


class ReturnCallError(ValueError):
    """A request the return-call lifecycle does not allow."""


def rules() -> Dict[str, Any]:
    found = profile.load_profile().get("return_call") or {}
    return {"kinds": tuple(found.get("kinds", ("repair", "complaint"))),
            "max_attempts": int(found.get("max_attempts", 3)),
            "retry_after_hours": float(found.get("retry_after_hours", 4)),
            "due_within_hours": float(found.get("due_within_hours", 24))}


def needs_return_call(kind: str) -> bool:
    return kind in rules()["kinds"]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def create_for(session, ticket: Ticket, at: dt.datetime) -> Optional[ReturnCall]:
    """The ticket was resolved: its return call is due (one open task per ticket)."""
    if not needs_return_call(ticket.kind):
        return None
    open_call = session.scalars(select(ReturnCall).where(
        ReturnCall.ticket_id == ticket.id, ReturnCall.status == "due")).first()
    if open_call is not None:
        return open_call
    due = sla.add_service_seconds(at, rules()["due_within_hours"] * 3600)
    call = ReturnCall(ticket_id=ticket.id, status="due", attempts=0, due_at=due, created_at=at)
    session.add(call)
    session.add(TicketEvent(ticket_id=ticket.id, kind="return_call_due", actor="system", at=at,
                            note=f"回访截止 {due.isoformat()}"))
    return call


def cancel_for(session, ticket: Ticket, at: dt.datetime) -> None:
    for call in session.scalars(select(ReturnCall).where(
            ReturnCall.ticket_id == ticket.id, ReturnCall.status == "due")):
        call.status, call.finished_at = "cancelled", at


def finished_for(session, ticket_id: int) -> bool:
    return session.scalars(select(ReturnCall.id).where(
        ReturnCall.ticket_id == ticket_id, ReturnCall.status.in_(FINISHED))).first() is not None


def _json(call: ReturnCall, ticket: Ticket, *, unmasked: bool, agent: str | None) -> Dict[str, Any]:
    return {"id": call.id, "status": call.status, "attempts": call.attempts,
            "max_attempts": rules()["max_attempts"], "due_at": _aware(call.due_at).isoformat(),
            "outcome": call.outcome, "score": call.score,
            "comment": call.comment if unmasked or not call.comment
            else privacy.mask_customer_text(call.comment),
            "finished_at": _aware(call.finished_at).isoformat() if call.finished_at else None,
            "agent": agent, "ticket": ticket.number, "kind": ticket.kind,
            "ticket_status": ticket.status, "channel": ticket.channel,
            "assignee_id": ticket.assignee_id, "unmasked": unmasked,
            "phone": (privacy.decrypt(ticket.phone_encrypted) if unmasked
                      else ticket.phone_masked),
            # the column holds the masked copy; the clear text is sealed (bot/store/sealing.py)
            "description": sealing.clear(ticket.description, ticket.description_encrypted)
            if unmasked else ticket.description}


class ReturnCallStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def listing(self, *, viewer_id: int, sees_all: bool, status: str = "due",
                limit: int = 200) -> List[Dict[str, Any]]:
        """Tasks by due time; phones in clear only on the viewer's own tickets."""
        def work(session):
            query = (select(ReturnCall, Ticket, Agent.display_name)
                     .join(Ticket, Ticket.id == ReturnCall.ticket_id)
                     .outerjoin(Agent, Agent.id == ReturnCall.agent_id))
            if status != "all":
                query = query.where(ReturnCall.status == status)
            if not sees_all:
                query = query.where((Ticket.assignee_id == viewer_id) | Ticket.assignee_id.is_(None))
            rows = session.execute(query.order_by(ReturnCall.due_at, ReturnCall.id).limit(limit))
            return [_json(call, ticket, unmasked=ticket.assignee_id == viewer_id, agent=name)
                    for call, ticket, name in rows]
        return retrying(work, engine=self.engine, write=False)

    def for_ticket(self, ticket_id: int, *, unmasked: bool) -> List[Dict[str, Any]]:
        def work(session):
            rows = session.execute(select(ReturnCall, Ticket, Agent.display_name)
                                   .join(Ticket, Ticket.id == ReturnCall.ticket_id)
                                   .outerjoin(Agent, Agent.id == ReturnCall.agent_id)
                                   .where(ReturnCall.ticket_id == ticket_id)
                                   .order_by(ReturnCall.id))
            return [_json(c, t, unmasked=unmasked, agent=n) for c, t, n in rows]
        return retrying(work, engine=self.engine, write=False)

    def ticket_of(self, call_id: int) -> Optional[Dict[str, Any]]:
        def work(session):
            row = session.execute(select(Ticket.number, Ticket.assignee_id).join(
                ReturnCall, ReturnCall.ticket_id == Ticket.id).where(ReturnCall.id == call_id)).first()
            return {"ticket": row.number, "assignee_id": row.assignee_id} if row else None
        return retrying(work, engine=self.engine, write=False)

    def record(self, call_id: int, *, outcome: str, agent_id: int, actor: str,
               score: int | None = None, comment: str | None = None,
               at: dt.datetime | None = None) -> Dict[str, Any]:
        """One try of the call. Reached (score 1–5 required) or refused: done and the ticket
        closes; not reached: due again later, or unreachable after the last try (closes too)."""
        if outcome not in OUTCOMES:
            raise ReturnCallError(f"outcome must be one of {OUTCOMES}")
        if outcome == "reached" and (not isinstance(score, int) or not 1 <= score <= 5):
            raise ReturnCallError("a reached customer's score is 1 to 5")
        if outcome != "reached":
            score = None
        at = at or profile.now()
        limits = rules()

        def work(session):
            call = session.scalars(select(ReturnCall).where(ReturnCall.id == call_id)
                                   .with_for_update()).first()
            if call is None:
                raise ReturnCallError("no such return call")
            if call.status != "due":
                raise ReturnCallError(f"the return call is {call.status} already")
            ticket = session.scalars(select(Ticket).where(Ticket.id == call.ticket_id)
                                     .with_for_update()).first()
            call.attempts += 1
            call.outcome, call.score, call.comment, call.agent_id = outcome, score, comment, agent_id
            label = OUTCOME_LABELS[outcome] + (f"，{score}分" if score else "")
            session.add(TicketEvent(ticket_id=ticket.id, kind="return_call", actor=actor, at=at,
                                    note=label + (f"：{comment}" if comment else "")))
            if outcome in ("reached", "refused"):
                session.add(Satisfaction(ticket_id=ticket.id, conversation_id=ticket.customer_id,
                                         agent_id=agent_id, source="return_call", score=score,
                                         asked_at=at, answered_at=at if score else None))
                if score:
                    ticket.rating = score
                call.status = "done"
            elif call.attempts >= limits["max_attempts"]:
                call.status = "unreachable"
            else:
                call.due_at = sla.add_service_seconds(at, limits["retry_after_hours"] * 3600)
            if call.status in FINISHED:
                call.finished_at = at
                if ticket.status == "resolved":
                    session.add(TicketEvent(ticket_id=ticket.id, kind="status", actor=actor, at=at,
                                            from_status="resolved", to_status="closed",
                                            note="回访完成" if call.status == "done" else "回访未接通，已关闭"))
                    ticket.status, ticket.closed_at = "closed", at
            session.flush()
            return _json(call, ticket, unmasked=True, agent=None)
        return retrying(work, engine=self.engine)

    def counts(self, start: dt.datetime, end: dt.datetime) -> Dict[str, int]:
        """Calls created in [start, end) by status (due / done / unreachable / cancelled)."""
        def work(session):
            rows = session.execute(select(ReturnCall.status, func.count(ReturnCall.id)).where(
                ReturnCall.created_at >= start, ReturnCall.created_at < end)
                .group_by(ReturnCall.status)).all()
            return {status: int(n) for status, n in rows}
        return retrying(work, engine=self.engine, write=False)
