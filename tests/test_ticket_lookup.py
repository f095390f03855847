"""Someone else's ticket (issue 18, item 5): shown only after the check a service desk uses,
never with personal data; numbers too long to guess; look-ups rate-limited in the database."""
import datetime as dt

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from bot.profile import parsing
from bot.store import lookups
from bot.store.lookups import LookupLimiter, TicketLookup
from bot.store.schema import LookupCounter, Ticket
from bot.store.tickets import new_ticket_number


@pytest.fixture
def store(ticket_store):
    return ticket_store            # tests/conftest.py: a fresh database, key and frozen clock


def file_ticket(store, customer="web:owner", phone="13812345678", key="k1"):
    ticket, _ = store.open_ticket(kind="repair", category="冰箱", description="不制冷，电话13812345678",
                                  customer_id=customer, channel="web", idempotency_key=key,
                                  phone=phone, address="上海市浦东新区世纪大道100号3栋502")
    return ticket


def test_new_numbers_have_8_random_digits_and_old_ones_stay_findable(store):
    at = dt.datetime(2026, 11, 27, 2, tzinfo=dt.timezone.utc)
    numbers = {new_ticket_number(at) for _ in range(200)}
    assert all(len(n) == 16 and n.startswith("KF261127") and n[2:].isdigit() for n in numbers)
    assert len(numbers) == 200                       # 10^8 a day: no collisions in 200 draws
    for number in numbers:
        assert parsing.find_ticket_number(f"查一下{number.lower()}进度") == number
    assert parsing.find_ticket_number("工单KF2611270042") == "KF2611270042"   # 4-digit era
    old = file_ticket(store)
    with store.engine.begin() as conn:                  # a ticket filed before the change
        conn.execute(Ticket.__table__.update().values(number="KF2611270042"))
    assert store.find("kf2611270042").number == "KF2611270042" != old.number


def test_only_the_filing_conversation_or_the_phone_check_shows_a_ticket(store):
    ticket = file_ticket(store)
    lookup = TicketLookup(store)
    own = lookup.by_number(ticket.number, customer_id="web:owner")
    assert own.outcome == lookups.SHOWN and own.ticket.number == ticket.number
    other = lookup.by_number(ticket.number, customer_id="web:stranger")
    assert other.outcome == lookups.CHECK_NEEDED and other.ticket is None
    wrong = lookup.by_number(ticket.number, customer_id="web:stranger", check_digits="0000")
    assert wrong.outcome == lookups.NO_MATCH and wrong.ticket is None
    right = lookup.by_number(ticket.number, customer_id="web:stranger", check_digits="5678")
    assert right.outcome == lookups.SHOWN
    assert right.ticket.phone == "138****5678" and "世纪大道" not in right.ticket.address
    # an unknown number answers exactly like a known one: no oracle for existing numbers
    unknown = "KF26112700000000" if ticket.number != "KF26112700000000" else "KF26112700000001"
    assert lookup.by_number(unknown, customer_id="web:stranger").outcome == lookups.CHECK_NEEDED
    assert lookup.by_number(unknown, customer_id="web:stranger",
                            check_digits="5678").outcome == lookups.NO_MATCH


def test_a_ticket_without_a_phone_is_shown_only_to_its_conversation(store):
    ticket = file_ticket(store, phone=None)
    lookup = TicketLookup(store)
    assert lookup.by_number(ticket.number, customer_id="web:x", check_digits="").outcome == lookups.CHECK_NEEDED
    assert lookup.by_number(ticket.number, customer_id="web:x", check_digits="1234").outcome == lookups.NO_MATCH
    assert lookup.by_number(ticket.number, customer_id="web:owner").outcome == lookups.SHOWN


def test_lookups_are_limited_per_conversation_across_processes(store):
    ticket = file_ticket(store)
    now = dt.datetime(2026, 11, 27, 2, tzinfo=dt.timezone.utc)
    first = LookupLimiter(store.engine, limit=3, window=dt.timedelta(hours=1))
    second = LookupLimiter(store.engine, limit=3, window=dt.timedelta(hours=1))   # another replica
    assert [first.attempt("ticket-lookup:web:s", now), second.attempt("ticket-lookup:web:s", now),
            first.attempt("ticket-lookup:web:s", now)] == [True, True, True]
    assert second.attempt("ticket-lookup:web:s", now) is False
    assert first.attempt("ticket-lookup:web:other", now) is True            # per conversation
    assert first.attempt("ticket-lookup:web:s", now + dt.timedelta(minutes=61)) is True
    with store.engine.connect() as conn:                 # keys are hashed, not conversation ids
        keys = [k for (k,) in conn.execute(select(LookupCounter.key))]
    assert keys and not any("web:" in k for k in keys)

    lookup = TicketLookup(store)             # the real limit: LOOKUPS_PER_HOUR, then refused
    for _ in range(lookups.LOOKUPS_PER_HOUR):
        assert lookup.by_number(ticket.number, customer_id="web:guesser",
                                check_digits="0000").outcome == lookups.NO_MATCH
    refused = lookup.by_number(ticket.number, customer_id="web:guesser", check_digits="5678")
    assert refused.outcome == lookups.LIMITED and refused.ticket is None
    # the filing conversation is never limited
    assert lookup.by_number(ticket.number, customer_id="web:owner").outcome == lookups.SHOWN


def test_check_digits_are_read_from_what_customers_write():
    assert parsing.check_digits("KF26112712345678 5678") == "5678"
    assert parsing.check_digits("查工单kf26112712345678，手机尾号１２３４") == "1234"
    assert parsing.check_digits("KF26112712345678 电话 139 0011 2233") == "2233"
    assert parsing.check_digits("KF26112712345678") is None
    assert parsing.check_digits("KF2611270042 12345") is None


def _run_check(text: str, sender: str, entities=()):
    from actions.tickets import CheckTicket

    tracker = Tracker(sender, {}, {"text": text, "intent": {"name": "check_ticket"},
                                   "entities": list(entities)}, [], False, None, None, "action_listen")
    dispatcher = CollectingDispatcher()
    CheckTicket().run(dispatcher, tracker, {})
    return "\n".join(m.get("text") or "" for m in dispatcher.messages)


def test_check_ticket_action_asks_a_stranger_for_the_check_and_never_shows_personal_data(store, monkeypatch):
    from actions import common, tickets as ticket_actions

    monkeypatch.setattr(common, "store", lambda: store)
    monkeypatch.setattr(ticket_actions, "store", lambda: store)
    ticket_actions.ticket_lookup.cache_clear()
    try:
        ticket = file_ticket(store)
        stranger = _run_check(f"查一下{ticket.number}", "web:stranger",
                              [{"entity": "ticket_id", "value": ticket.number.lower()}])
        assert "进度" not in stranger and "冰箱" not in stranger and "后4位" in stranger
        wrong = _run_check(f"{ticket.number} 0000", "web:stranger")
        assert "冰箱" not in wrong and "没有找到" in wrong
        shown = _run_check(f"{ticket.number} 5678", "web:stranger")
        assert shown.startswith("工单进度：" + ticket.number) and "冰箱" in shown
        own = _run_check(f"{ticket.number}进度", "web:owner")
        assert own.startswith("工单进度：" + ticket.number)
        for text in (stranger, wrong, shown, own):    # never personal data, not even masked
            assert "13812345678" not in text and "138****" not in text
            assert "世纪大道" not in text and "不制冷" not in text
    finally:
        ticket_actions.ticket_lookup.cache_clear()
