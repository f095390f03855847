"""The agents' ticket list and ticket page (工单): filters, search, one page of rows.

Every filter is a column with an index (kind/status, created_at, assignee, phone_last4,
order_id) or one subquery on the ``sla_clocks`` (state, due_at) index; a page fetches its clocks by the page's
ids (at most ``PAGE_SIZE``), never a list of every ticket. Personal data: masked, except on
the tickets assigned to the viewer.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from bot.profile import business as profile
from bot.profile import parsing, privacy, sla
from bot.store import sealing
from bot.store.engine import get_engine, retrying
from bot.store.schema import Agent, Handoff, Message, SlaClock, Ticket
from bot.store.sla_clocks import aware, clock_json, clocks_for
from bot.store.tickets import KIND_LABELS, STATUS_LABELS

PAGE_SIZE = 50
SLA_STATES = ("on_time", "due_soon", "breached")
TRANSCRIPT_LINES = 300


@dataclass(frozen=True)
class TicketFilter:
    status: Optional[str] = None
    kind: Optional[str] = None
    priority: Optional[str] = None
    channel: Optional[str] = None
    sla: Optional[str] = None
    assignee: Optional[str] = None        # "me" | "none" | an agent id
    date_from: Optional[dt.date] = None   # shop-local days, inclusive
    date_to: Optional[dt.date] = None
    q: Optional[str] = None
    page: int = 1


def day_start(day: dt.date) -> dt.datetime:
    """Shop-local midnight of ``day``, in UTC."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=profile.shop_tz()).astimezone(dt.timezone.utc)


# The SLA filters select the tickets from the clocks' (state, due_at) index as one subquery
# (evaluated once), not a correlated EXISTS per ticket: at a million tickets the count of
# "breached" went from 29 s to a scan of the index.
def _breached(now: dt.datetime):
    return Ticket.id.in_(select(SlaClock.ticket_id).where(or_(
        SlaClock.state == "missed",
        and_(SlaClock.state == "active", SlaClock.due_at.is_not(None), SlaClock.due_at < now))))


def _due_soon(now: dt.datetime):
    soon = now + dt.timedelta(seconds=sla.due_soon_seconds())
    return Ticket.id.in_(select(SlaClock.ticket_id).where(
        SlaClock.state == "active", SlaClock.due_at.is_not(None), SlaClock.due_at < soon))


def _search(q: str):
    text = parsing.ascii_digits(q.strip())
    found = [Ticket.number == text.upper(), Ticket.order_id == text]
    digits = re.sub(r"\D", "", text)
    if re.fullmatch(r"\d{4}", text):
        found.append(Ticket.phone_last4 == text)
    elif len(digits) == 11 and privacy.normalise_phone(digits):
        found.append(Ticket.phone_last4 == digits[-4:])   # then checked in clear, below
    return or_(*found), (digits if len(digits) == 11 else None)


class TicketQueries:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def listing(self, f: TicketFilter, *, viewer_id: int,
                now: dt.datetime | None = None) -> Dict[str, Any]:
        now = now or profile.now()

        def work(session):
            query = select(Ticket)
            for column, value in ((Ticket.status, f.status), (Ticket.kind, f.kind),
                                  (Ticket.priority, f.priority), (Ticket.channel, f.channel)):
                if value:
                    query = query.where(column == value)
            if f.assignee == "me":
                query = query.where(Ticket.assignee_id == viewer_id)
            elif f.assignee == "none":
                query = query.where(Ticket.assignee_id.is_(None))
            elif f.assignee and parsing.ascii_int(f.assignee) is not None:   # not "¹", not 5000 digits
                query = query.where(Ticket.assignee_id == parsing.ascii_int(f.assignee))
            if f.date_from:
                query = query.where(Ticket.created_at >= day_start(f.date_from))
            if f.date_to:
                query = query.where(Ticket.created_at < day_start(f.date_to + dt.timedelta(days=1)))
            if f.sla == "breached":
                query = query.where(_breached(now))
            elif f.sla == "due_soon":
                query = query.where(~_breached(now), _due_soon(now))
            elif f.sla == "on_time":
                query = query.where(~_breached(now), ~_due_soon(now))
            phone = None
            if f.q and f.q.strip():
                condition, phone = _search(f.q)
                query = query.where(condition)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            page = max(1, f.page)
            rows = list(session.scalars(query.order_by(Ticket.id.desc())
                                        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
            if phone:       # the full number: keep the rows whose phone it really is
                rows = [t for t in rows if t.order_id == f.q.strip() or t.number == f.q.strip().upper()
                        or privacy.decrypt(t.phone_encrypted) == phone]
            return {"tickets": self._rows(session, rows, viewer_id, now), "total": int(total),
                    "page": page, "page_size": PAGE_SIZE}
        return retrying(work, engine=self.engine, write=False)

    def _rows(self, session, rows: List[Ticket], viewer_id: int,
              now: dt.datetime) -> List[Dict[str, Any]]:
        ids = [t.id for t in rows]
        clocks: Dict[int, Dict[str, Any]] = {}
        if ids:
            for clock in session.scalars(select(SlaClock).where(SlaClock.ticket_id.in_(ids))):
                clocks.setdefault(clock.ticket_id, {})[clock.clock] = clock_json(clock, now)
        names = self._names(session, {t.assignee_id for t in rows if t.assignee_id})
        out = []
        for t in rows:
            own = t.assignee_id == viewer_id
            mine = clocks.get(t.id, {})
            out.append({**summary(t, own=own, assignee=names.get(t.assignee_id)),
                        "clocks": mine, "sla_state": sla_state(mine.values(), now)})
        return out

    @staticmethod
    def _names(session, ids) -> Dict[int, str]:
        if not ids:
            return {}
        return {a.id: a.display_name or a.name
                for a in session.scalars(select(Agent).where(Agent.id.in_(list(ids))))}

    def detail(self, number: str, *, viewer_id: int,
               now: dt.datetime | None = None) -> Optional[Dict[str, Any]]:
        """The ticket page: the ticket, its history and notes, clocks, handoffs, transcript."""
        now = now or profile.now()

        def work(session):
            t = session.scalars(select(Ticket).where(Ticket.number == number.upper())).first()
            if t is None:
                return None
            own = t.assignee_id == viewer_id
            clocks = clocks_for(session, t.id, now)
            handoffs = [{"id": h.id, "status": h.status, "reason": h.reason,
                         "created_at": aware(h.created_at).isoformat(),
                         "agent": self._names(session, {h.agent_id}).get(h.agent_id) if h.agent_id else None}
                        for h in session.scalars(select(Handoff).where(
                            Handoff.ticket_number == t.number).order_by(Handoff.id))]
            lines = list(session.scalars(select(Message).where(
                Message.conversation_id == t.customer_id).order_by(Message.id.desc())
                .limit(TRANSCRIPT_LINES)))[::-1]
            # the columns hold masked copies; the clear text (sealed) only for the assignee
            text = sealing.clear if own else (lambda masked, _token: masked)
            transcript = [{"id": m.id, "author": m.author, "at": aware(m.at).isoformat(),
                           "text": text(m.text, m.text_encrypted)} for m in lines]
            events = [{"at": aware(e.at).isoformat(), "kind": e.kind, "actor": e.actor,
                       "from": e.from_status, "to": e.to_status,
                       "note": text(e.note, e.note_encrypted)}
                      for e in t.events]
            item = summary(t, own=own, assignee=self._names(session, {t.assignee_id}).get(t.assignee_id))
            item.update(description=text(t.description, t.description_encrypted),
                        address=privacy.decrypt(t.address_encrypted) if own else t.address_masked,
                        product=t.product, details=dict(t.details or {}), events=events,
                        clocks={c["clock"]: c for c in clocks},
                        sla_state=sla_state(clocks, now), handoffs=handoffs,
                        transcript=transcript, customer_id=t.customer_id, id=t.id)
            return item
        return retrying(work, engine=self.engine, write=False)


def summary(t: Ticket, *, own: bool, assignee: str | None) -> Dict[str, Any]:
    iso = lambda v: aware(v).isoformat() if v else None  # noqa: E731
    return {"number": t.number, "kind": t.kind, "kind_label": KIND_LABELS.get(t.kind, t.kind),
            "category": t.category, "priority": t.priority, "status": t.status,
            "status_label": STATUS_LABELS.get(t.status, t.status), "channel": t.channel,
            "order_id": t.order_id, "own": own, "assignee_id": t.assignee_id,
            "assignee": assignee, "rating": t.rating,
            "phone": privacy.decrypt(t.phone_encrypted) if own else t.phone_masked,
            "created_at": iso(t.created_at), "resolved_at": iso(t.resolved_at),
            "closed_at": iso(t.closed_at), "escalated_at": iso(t.escalated_at),
            "sla_due_at": iso(t.sla_due_at)}


def sla_state(clocks, now: dt.datetime) -> str:
    """on_time / due_soon / breached, from a ticket's clocks (as :func:`clock_json` gives)."""
    clocks = list(clocks)
    soon = now + dt.timedelta(seconds=sla.due_soon_seconds())
    if any(c["state"] == "missed" or (c["state"] == "active" and c["due_at"]
                                      and dt.datetime.fromisoformat(c["due_at"]) < now)
           for c in clocks):
        return "breached"
    if any(c["state"] == "active" and c["due_at"] and dt.datetime.fromisoformat(c["due_at"]) < soon
           for c in clocks):
        return "due_soon"
    return "on_time"
