"""The 工单 list's SLA filter (issue 15): breached / due soon / on time, read from the tickets'
clocks — a missed clock or an active one past due is breached; an active one due within the
profile's due-soon window is due soon; everything else on time. Each ticket in one state only."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from bot.store.engine import retrying
from bot.store.schema import SlaClock
from bot.store.ticket_queries import TicketFilter, TicketQueries

NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.timezone.utc)


def test_each_ticket_is_listed_under_its_one_sla_state(ticket_store):
    numbers = {}
    for name in ("missed", "overdue", "soon", "later", "answered"):
        ticket, _ = ticket_store.open_ticket(kind="repair", category="空调", description="不制冷",
                                             customer_id=f"web:{name}", channel="web",
                                             idempotency_key=name)
        numbers[name] = (ticket.id, ticket.number)
    states = {"missed": ("missed", None), "overdue": ("active", NOW - dt.timedelta(minutes=5)),
              "soon": ("active", NOW + dt.timedelta(minutes=20)),
              "later": ("active", NOW + dt.timedelta(days=2)), "answered": ("hit", None)}

    def work(session):
        for name, (state, due) in states.items():
            session.execute(update(SlaClock).where(SlaClock.ticket_id == numbers[name][0])
                            .values(state=state, due_at=due))
    retrying(work, engine=ticket_store.engine)
    queries = TicketQueries(ticket_store.engine)
    names = {number: name for name, (_, number) in numbers.items()}

    def listed(sla):
        found = queries.listing(TicketFilter(sla=sla), viewer_id=0, now=NOW)
        return found["total"], {names[t["number"]] for t in found["tickets"]}
    assert listed("breached") == (2, {"missed", "overdue"})
    assert listed("due_soon") == (1, {"soon"})
    assert listed("on_time") == (2, {"later", "answered"})
    assert listed(None)[0] == 5
