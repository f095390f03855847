"""The ticket store: exactly once, lifecycle, SLA from the profile, personal data encrypted."""
import datetime as dt

import pytest
from sqlalchemy import select

from bot.store.schema import Ticket
from bot.store.tickets import TicketError


@pytest.fixture
def store(ticket_store):
    return ticket_store            # tests/conftest.py: a fresh database, key and frozen clock


def open_repair(store, key="k1", priority="normal", phone="13812345678"):
    return store.open_ticket(kind="repair", category="冰箱", description="不制冷", customer_id="web:a",
                             channel="web", idempotency_key=key, priority=priority, phone=phone,
                             address="上海市浦东新区世纪大道100号")


def test_same_idempotency_key_creates_one_ticket(store):
    first, created = open_repair(store)
    again, created_again = open_repair(store)
    assert created and not created_again
    assert first.number == again.number
    with store.engine.connect() as conn:
        assert conn.execute(select(Ticket.id)).all().__len__() == 1


def test_ticket_number_format(store):
    ticket, _ = open_repair(store)
    assert ticket.number.startswith("KF261127") and len(ticket.number) == 16
    assert ticket.number[2:].isdigit() and ticket.number.isascii()


def test_sla_due_time_from_profile(store):
    urgent, _ = open_repair(store, "u", priority="urgent")
    normal, _ = open_repair(store, "n")
    assert urgent.sla_due_at - urgent.created_at == dt.timedelta(hours=2)
    assert normal.sla_due_at - normal.created_at == dt.timedelta(hours=24)


def test_phone_and_address_encrypted_at_rest_and_masked(store):
    ticket, _ = open_repair(store)
    assert ticket.phone == "138****5678"
    assert "世纪大道" not in ticket.address
    with store.engine.connect() as conn:
        row = conn.execute(select(Ticket.phone_encrypted, Ticket.address_encrypted)).one()
    assert "13812345678" not in row[0] and "世纪大道" not in row[1]
    assert store.find(ticket.number, unmasked=True).phone == "13812345678"


def test_lifecycle_and_history(store):
    ticket, _ = open_repair(store)
    store.change_status(ticket.number, "acknowledged", actor="agent:li")
    store.change_status(ticket.number, "in_progress", actor="agent:li")
    store.change_status(ticket.number, "resolved", actor="agent:li")
    closed = store.record_return_call(ticket.number, actor="agent:li", note="客户确认已修好")
    assert closed.status == "closed"
    kinds = [e["kind"] for e in closed.events]
    # resolving a repair makes its return call due (issue 15); recording it closes the ticket
    assert kinds == ["created", "status", "status", "status", "return_call_due", "return_call",
                     "status"]
    with pytest.raises(TicketError):
        store.change_status(ticket.number, "in_progress", actor="agent:li")


def test_return_call_needs_resolution(store):
    ticket, _ = open_repair(store)
    with pytest.raises(TicketError):
        store.record_return_call(ticket.number, actor="a", note="x")


def test_rating_is_stored_and_bounded(store):
    ticket, _ = open_repair(store)
    assert store.record_rating(ticket.number, 4, actor="customer").rating == 4
    with pytest.raises(TicketError):
        store.record_rating(ticket.number, 9, actor="customer")


def test_customer_sees_only_open_tickets(store):
    a, _ = open_repair(store, "a")
    b, _ = open_repair(store, "b")
    store.change_status(b.number, "closed", actor="agent")
    assert [t.number for t in store.for_customer("web:a")] == [a.number]
    assert len(store.for_customer("web:a", open_only=False)) == 2
