"""The lead's dashboard on 100k tickets: builds a scratch SQLite database and prints how long
the summary, the ticket list's filters and the CSV export take (printed, never asserted).

    .venv/bin/python -m bench.reports [--tickets 100000]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import tempfile
import time


def build(engine, n: int) -> None:
    from bot.store.schema import Handoff, Message, ReturnCall, Satisfaction, SlaClock, Ticket

    rng = random.Random(15)
    start = dt.datetime(2026, 11, 1, 1, 0, tzinfo=dt.timezone.utc)
    kinds = ("repair", "complaint", "return", "callback")
    with engine.begin() as conn:
        tickets, clocks, calls, answers, lines, handoffs = [], [], [], [], [], []
        for i in range(1, n + 1):
            created = start + dt.timedelta(seconds=rng.randrange(0, 30 * 86400))
            kind = kinds[i % 4]
            resolved = rng.random() < 0.7
            tickets.append(dict(id=i, number=f"KF{i:014d}", kind=kind, category="x",
                                priority="normal", status="closed" if resolved else "new",
                                channel="web", customer_id=f"web:c{i % 20000}", description="",
                                details={}, idempotency_key=f"k{i}", sla_due_at=created,
                                created_at=created, updated_at=created,
                                phone_last4=f"{rng.randrange(10000):04d}"))
            for name, budget in (("first_response", 86400.0), ("resolution", 259200.0)):
                used = rng.uniform(0, budget * 1.2)
                clocks.append(dict(ticket_id=i, clock=name, calendar=0, budget_s=budget,
                                   used_s=used, started_at=created,
                                   state=("hit" if used <= budget else "missed") if resolved else "active",
                                   stopped_at=created + dt.timedelta(seconds=used) if resolved else None,
                                   due_at=None if resolved else created + dt.timedelta(days=2)))
            if resolved and kind in ("repair", "complaint"):
                calls.append(dict(ticket_id=i, status=rng.choice(("done", "unreachable", "due")),
                                  attempts=1, due_at=created, created_at=created))
                answers.append(dict(ticket_id=i, source="return_call", score=rng.randint(1, 5),
                                    asked_at=created, answered_at=created))
            lines.append(dict(conversation_id=f"web:c{i % 20000}", channel="web", author="customer",
                              text="hi", at=created))
            if kind == "callback":
                handoffs.append(dict(conversation_id=f"web:c{i % 20000}", channel="web",
                                     user_id=f"c{i % 20000}", reason="x", priority="normal",
                                     status="closed", created_at=created,
                                     first_reply_at=created + dt.timedelta(seconds=rng.randrange(30, 4000)),
                                     awaiting_rating=0, last_read_message_id=0))
        for table, rows in ((Ticket, tickets), (SlaClock, clocks), (ReturnCall, calls),
                            (Satisfaction, answers), (Message, lines), (Handoff, handoffs)):
            for k in range(0, len(rows), 5000):
                conn.execute(table.__table__.insert(), rows[k:k + 5000])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports")
    parser.add_argument("--tickets", type=int, default=100_000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="kefu-bench-reports-")
    os.environ["KEFU_DATABASE_URL"] = f"sqlite:///{folder}/bench.db"
    from bot.store.engine import get_engine
    from bot.store.reports import ReportStore
    from bot.store.ticket_queries import TicketFilter, TicketQueries
    from bot.support import metrics

    engine = get_engine()
    began = time.perf_counter()
    build(engine, args.tickets)
    print(f"built {args.tickets} tickets (+ clocks, 回访, answers, lines) in "
          f"{time.perf_counter() - began:.1f} s: {folder}/bench.db")
    store = ReportStore(engine)
    for label, days in (("one day", (dt.date(2026, 11, 15), dt.date(2026, 11, 15))),
                        ("one week", (dt.date(2026, 11, 9), dt.date(2026, 11, 15))),
                        ("the month", (dt.date(2026, 11, 1), dt.date(2026, 11, 30)))):
        began = time.perf_counter()
        result = metrics.summary(*days, store=store)
        took = time.perf_counter() - began
        print(f"summary {label:9s}: {took * 1000:8.1f} ms  ({result['conversations']} conversations, "
              f"sla first response {result['sla_attainment']['first_response']['rate']})")
    began = time.perf_counter()
    text = metrics.export_csv("tickets", dt.date(2026, 11, 1), dt.date(2026, 11, 30), store)
    print(f"tickets CSV, the month: {(time.perf_counter() - began) * 1000:8.1f} ms "
          f"({text.count(chr(10)) - 1} rows)")
    queries = TicketQueries(engine)
    for label, f in (("search by last 4", TicketFilter(q="4321")),
                     ("breached, page 1", TicketFilter(sla="breached")),
                     ("repairs in a week", TicketFilter(kind="repair", date_from=dt.date(2026, 11, 9),
                                                        date_to=dt.date(2026, 11, 15)))):
        began = time.perf_counter()
        found = queries.listing(f, viewer_id=0, now=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
        print(f"ticket list {label:18s}: {(time.perf_counter() - began) * 1000:8.1f} ms "
              f"({found['total']} found)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
