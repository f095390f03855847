"""The ticket store (工单): one module used by the action server and the gateway alike.

A ticket is created exactly once per idempotency key (one per conversation and form
run), so a retried or replayed action returns the ticket it already made instead of
making a second one. Every change appends a :class:`~bot.store.schema.TicketEvent`.
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.profile import privacy

from bot.profile import business as profile

from bot.profile import sla
from bot.store import return_calls, sealing, sla_clocks
from bot.store.engine import get_engine, retrying
from bot.store.schema import Satisfaction, Ticket, TicketEvent

# new → acknowledged → in_progress (⇄ waiting on the customer) → resolved → closed.
# A repair or complaint closes only through its return call (bot/store/return_calls.py).
STATUSES = ("new", "acknowledged", "in_progress", "waiting", "resolved", "closed")
OPEN_STATUSES = ("new", "acknowledged", "in_progress", "waiting")
STATUS_LABELS = {"new": "已受理", "acknowledged": "已确认", "in_progress": "处理中",
                 "waiting": "待客户回复", "resolved": "已解决", "closed": "已关闭"}
KIND_LABELS = {"complaint": "投诉", "repair": "报修", "return": "退换货", "callback": "人工回电"}
_ALLOWED = {"new": {"acknowledged", "in_progress", "waiting", "resolved", "closed"},
            "acknowledged": {"in_progress", "waiting", "resolved", "closed"},
            "in_progress": {"waiting", "resolved", "closed"},
            "waiting": {"in_progress", "resolved", "closed"},
            "resolved": {"in_progress", "closed"},
            "closed": set()}
SYSTEM_ACTORS = ("bot", "customer", "system", "sla")     # not a person answering


class TicketError(ValueError):
    """A request the ticket lifecycle does not allow."""


@dataclass(frozen=True)
class TicketView:
    """A ticket as shown outside the store: personal data masked unless asked otherwise."""

    number: str
    kind: str
    category: str
    priority: str
    status: str
    channel: str
    customer_id: str
    description: str
    order_id: Optional[str]
    product: Optional[str]
    phone: Optional[str]
    address: Optional[str]
    details: dict
    sla_due_at: dt.datetime
    created_at: dt.datetime
    rating: Optional[int]
    events: List[dict] = field(default_factory=list)
    id: int = 0
    assignee_id: Optional[int] = None
    resolved_at: Optional[dt.datetime] = None
    closed_at: Optional[dt.datetime] = None
    escalated_at: Optional[dt.datetime] = None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _view(ticket: Ticket, *, unmasked: bool = False) -> TicketView:
    """The ticket; phones, addresses and free text (description, notes) masked unless
    ``unmasked`` (the assigned agent: the clear text is sealed, bot/store/sealing.py)."""
    phone = privacy.decrypt(ticket.phone_encrypted) if unmasked else ticket.phone_masked
    address = privacy.decrypt(ticket.address_encrypted) if unmasked else ticket.address_masked

    def text(masked, token):
        return sealing.clear(masked, token) if unmasked else masked
    return TicketView(
        number=ticket.number, kind=ticket.kind, category=ticket.category,
        priority=ticket.priority, status=ticket.status, channel=ticket.channel,
        customer_id=ticket.customer_id,
        description=text(ticket.description, ticket.description_encrypted),
        order_id=ticket.order_id, product=ticket.product, phone=phone, address=address,
        details=dict(ticket.details or {}), sla_due_at=_aware(ticket.sla_due_at),
        created_at=_aware(ticket.created_at), rating=ticket.rating,
        events=[{"at": _aware(e.at).isoformat(), "kind": e.kind, "actor": e.actor,
                 "from": e.from_status, "to": e.to_status,
                 "note": text(e.note, e.note_encrypted)}
                for e in ticket.events],
        id=ticket.id, assignee_id=ticket.assignee_id,
        resolved_at=_maybe(ticket.resolved_at), closed_at=_maybe(ticket.closed_at),
        escalated_at=_maybe(ticket.escalated_at))


def _maybe(value: dt.datetime | None) -> dt.datetime | None:
    return _aware(value) if value is not None else None


RANDOM_DIGITS = 8       # 10^8 numbers a day: guessing one, at 10 look-ups an hour, is futile


def new_ticket_number(at: dt.datetime) -> str:
    """``KF`` + shop-local yymmdd + 8 random digits, e.g. KF26112704271593 (16 characters).

    Numbers issued before with 4 random digits (KF2611270042) stay valid and findable.
    """
    local = at.astimezone(profile.shop_tz())
    return f"KF{local:%y%m%d}{secrets.randbelow(10 ** RANDOM_DIGITS):0{RANDOM_DIGITS}d}"


class TicketStore:
    """Creates, finds and moves tickets through their lifecycle."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def _run(self, work):
        return retrying(work, engine=self.engine)

    def open_ticket(self, *, kind: str, category: str, description: str, customer_id: str,
                    channel: str, idempotency_key: str, priority: str = "normal",
                    phone: str | None = None, address: str | None = None,
                    order_id: str | None = None, product: str | None = None,
                    details: dict | None = None) -> tuple[TicketView, bool]:
        """Create the ticket for ``idempotency_key`` or return the existing one.

        Returns ``(ticket, created)``; ``created`` is False when the key was seen before.
        """
        existing = self.by_idempotency_key(idempotency_key)
        if existing:
            return existing, False
        created_at = profile.now()
        for _ in range(5):
            number = new_ticket_number(created_at)

            def work(session: Session, number: str = number) -> TicketView:
                ticket = Ticket(
                    number=number, kind=kind, category=category, priority=priority,
                    status="new", channel=channel, customer_id=customer_id,
                    description=description, order_id=order_id, product=product,
                    phone_encrypted=privacy.encrypt(phone), phone_masked=privacy.mask_phone(phone),
                    address_encrypted=privacy.encrypt(address),
                    address_masked=privacy.mask_address(address), details=details or {},
                    idempotency_key=idempotency_key, created_at=created_at,
                    sla_due_at=sla.due_time(kind, priority, created_at),
                    phone_last4=phone[-4:] if phone and len(phone) >= 4 else None)
                ticket.events.append(TicketEvent(kind="created", actor="bot", to_status="new",
                                                 at=created_at))
                session.add(ticket)
                session.flush()
                sla_clocks.start_clocks(session, ticket, created_at)
                return _view(ticket)

            try:
                return self._run(work), True
            except IntegrityError:
                again = self.by_idempotency_key(idempotency_key)
                if again:           # a concurrent replica made it first
                    return again, False
                # else: ticket number collision; draw another number
        raise RuntimeError("could not allocate a ticket number")

    def by_idempotency_key(self, key: str) -> TicketView | None:
        def work(session: Session):
            ticket = session.scalars(select(Ticket).where(Ticket.idempotency_key == key)).first()
            return _view(ticket) if ticket else None
        return self._run(work)

    def find(self, number: str, *, unmasked: bool = False) -> TicketView | None:
        def work(session: Session):
            ticket = session.scalars(select(Ticket).where(Ticket.number == number.upper())).first()
            return _view(ticket, unmasked=unmasked) if ticket else None
        return self._run(work)

    def for_customer(self, customer_id: str, *, open_only: bool = True) -> List[TicketView]:
        def work(session: Session):
            query = select(Ticket).where(Ticket.customer_id == customer_id)
            if open_only:
                query = query.where(Ticket.status.in_(OPEN_STATUSES))
            return [_view(t) for t in session.scalars(query.order_by(Ticket.id.desc()))]
        return self._run(work)

    def change_status(self, number: str, to_status: str, *, actor: str,
                      note: str | None = None) -> TicketView:
        if to_status not in STATUSES:
            raise TicketError(f"unknown status {to_status!r}")

        def work(session: Session, to_status: str = to_status):
            ticket = self._locked(session, number)
            if to_status not in _ALLOWED[ticket.status]:
                raise TicketError(f"{ticket.status} → {to_status} is not allowed")
            at = profile.now()
            if (to_status == "closed" and return_calls.needs_return_call(ticket.kind)
                    and not return_calls.finished_for(session, ticket.id)):
                # a repair or complaint closes through its return call (回访): closing it
                # resolves it and makes the call due; the call closes it
                if ticket.status == "resolved":
                    return_calls.create_for(session, ticket, at)
                    session.flush()
                    return _view(ticket)
                to_status = "resolved"
            ticket.events.append(TicketEvent(kind="status", actor=actor, note=note, at=at,
                                             from_status=ticket.status, to_status=to_status))
            sla_clocks.on_status(session, ticket, ticket.status, to_status, at,
                                 by_person=actor not in SYSTEM_ACTORS)
            if to_status == "resolved":
                ticket.resolved_at = at
                return_calls.create_for(session, ticket, at)
            elif ticket.status == "resolved" and to_status != "closed":
                return_calls.cancel_for(session, ticket, at)      # reopened
            if to_status == "closed":
                ticket.closed_at = at
            ticket.status = to_status
            session.flush()
            return _view(ticket)
        return self._run(work)

    def assign(self, number: str, agent_id: int | None, *, actor: str,
               agent_name: str = "") -> TicketView:
        """Give the ticket to an agent (None: back to the team)."""
        def work(session: Session):
            ticket = self._locked(session, number)
            if ticket.status == "closed":
                raise TicketError("the ticket is closed")
            ticket.assignee_id = agent_id
            ticket.events.append(TicketEvent(kind="assigned", actor=actor, at=profile.now(),
                                             note=agent_name or "未分配"))
            session.flush()
            return _view(ticket)
        return self._run(work)

    def record_return_call(self, number: str, *, actor: str, note: str) -> TicketView:
        """The 回访 after resolution: recorded, then the ticket closes."""
        def work(session: Session):
            ticket = self._locked(session, number)
            if ticket.status != "resolved":
                raise TicketError("a return call is made after the ticket is resolved")
            at = profile.now()
            ticket.events.append(TicketEvent(kind="return_call", actor=actor, note=note, at=at))
            ticket.events.append(TicketEvent(kind="status", actor=actor, from_status="resolved",
                                             to_status="closed", at=at))
            for call in session.scalars(select(return_calls.ReturnCall).where(
                    return_calls.ReturnCall.ticket_id == ticket.id,
                    return_calls.ReturnCall.status == "due")):
                call.status, call.outcome, call.comment = "done", "reached", note
                call.attempts, call.finished_at = call.attempts + 1, at
            ticket.status, ticket.closed_at = "closed", at
            session.flush()
            return _view(ticket)
        return self._run(work)

    def record_rating(self, number: str, score: int, *, actor: str,
                      source: str = "bot") -> TicketView:
        """The customer's score for the ticket; it answers the open question the bot asked
        (``satisfaction`` row of ``source``), or is recorded as an unprompted answer."""
        if not 1 <= score <= 5:
            raise TicketError("a rating is 1 to 5")

        def work(session: Session):
            ticket = self._locked(session, number)
            ticket.rating = score
            at = profile.now()
            asked = session.scalars(select(Satisfaction).where(
                Satisfaction.ticket_id == ticket.id, Satisfaction.source == source,
                Satisfaction.score.is_(None)).order_by(Satisfaction.id.desc())).first()
            if asked is None:
                asked = Satisfaction(ticket_id=ticket.id, conversation_id=ticket.customer_id,
                                     source=source, asked_at=at)
                session.add(asked)
            asked.score, asked.answered_at = score, at
            ticket.events.append(TicketEvent(kind="rating", actor=actor, note=str(score), at=at))
            session.flush()
            return _view(ticket)
        return self._run(work)

    def set_phone(self, number: str, phone: str, *, actor: str) -> TicketView:
        """The number to call back, given after the ticket was filed (sealed like any phone;
        the history says it changed, never the number)."""
        def work(session: Session):
            ticket = self._locked(session, number)
            ticket.phone_encrypted = privacy.encrypt(phone)
            ticket.phone_masked = privacy.mask_phone(phone)
            ticket.phone_last4 = phone[-4:] if len(phone) >= 4 else None
            ticket.events.append(TicketEvent(kind="note", actor=actor,
                                             note=f"客户留下回电号码 {privacy.mask_phone(phone)}"))
            session.flush()
            return _view(ticket)
        return self._run(work)

    def set_order_id(self, number: str, order_id: str, *, actor: str, corrected: bool = False) -> TicketView:
        """The order number given after the ticket was filed: kept when it had none, or in place
        of the one it had when the customer says that one was wrong (``订单号发错了 应该是…``),
        the old one kept in the ticket's history."""
        def work(session: Session):
            ticket = self._locked(session, number)
            if not ticket.order_id:
                ticket.order_id = order_id
                ticket.events.append(TicketEvent(kind="note", actor=actor, note=f"客户补充订单号 {order_id}"))
                session.flush()
            elif corrected and ticket.order_id != order_id:
                ticket.events.append(TicketEvent(kind="note", actor=actor,
                                                 note=f"客户更正订单号 {ticket.order_id} → {order_id}"))
                ticket.order_id = order_id
                session.flush()
            return _view(ticket)
        return self._run(work)

    def set_product(self, number: str, product: str, *, actor: str) -> TicketView:
        """The product put right after the ticket was filed (``不是冰箱，是洗碗机``): the ticket's
        product, and its category where that was the product, the old one kept in the history."""
        def work(session: Session):
            ticket = self._locked(session, number)
            if ticket.product != product:
                ticket.events.append(TicketEvent(kind="note", actor=actor,
                                                 note=f"客户更正产品 {ticket.product or '-'} → {product}"))
                if ticket.category == ticket.product:
                    ticket.category = product
                ticket.product = product
                session.flush()
            return _view(ticket)
        return self._run(work)

    def raise_priority(self, number: str, priority: str, *, actor: str, note: str) -> TicketView:
        """A ticket made more pressing after it was filed (a threat said later): its priority and
        its promise (the SLA due time from its creation) follow; never lowered here."""
        def work(session: Session):
            ticket = self._locked(session, number)
            if ticket.priority != priority:
                ticket.priority = priority
                ticket.sla_due_at = sla.due_time(ticket.kind, priority, _aware(ticket.created_at))
                sla_clocks.reprioritise(session, ticket, profile.now())
                ticket.events.append(TicketEvent(kind="note", actor=actor, note=note))
                session.flush()
            return _view(ticket)
        return self._run(work)

    def add_note(self, number: str, note: str, *, actor: str) -> TicketView:
        def work(session: Session):
            ticket = self._locked(session, number)
            ticket.events.append(TicketEvent(kind="note", actor=actor, note=note))
            session.flush()
            return _view(ticket)
        return self._run(work)

    @staticmethod
    def _locked(session: Session, number: str) -> Ticket:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number.upper())
                                 .with_for_update()).first()
        if ticket is None:
            raise TicketError(f"no ticket {number}")
        return ticket
