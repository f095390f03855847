"""The lead's dashboard on 100k or 1M tickets: builds a scratch database (SQLite, and/or
PostgreSQL on 127.0.0.1:5432) and prints how long the summary (today from the raw rows; the
month cold, when its daily roll-ups are computed; then one day, a week and the month from
the roll-ups; the month again after one ticket changed), the tickets CSV and the ticket
list's filters take (printed, never asserted).

    .venv/bin/python -m bench.reports [--tickets 1000000] [--db sqlite|postgresql|both]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
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


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _timed(label: str, work):
    began = time.perf_counter()
    result = work()
    print(f"  {label:44s} {(time.perf_counter() - began) * 1000:9.1f} ms", flush=True)
    return result


def run(url: str, n: int) -> None:
    from sqlalchemy import func, select, text, update

    from bot.profile import business as profile
    from bot.store.engine import engine_for
    from bot.store.report_days import ReportDayStore
    from bot.store.reports import ReportStore
    from bot.store.schema import ReportMark, Ticket
    from bot.store.ticket_queries import TicketFilter, TicketQueries
    from bot.support import metrics

    engine = engine_for(url)
    print(f"{engine.dialect.name}, {n} tickets over November 2026 (now: 2026-12-01 12:00 shop time)")
    began = time.perf_counter()
    build(engine, n)
    if engine.dialect.name == "postgresql":    # the statistics autovacuum would have by now
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    print(f"  built {n} tickets (+ clocks, 回访, answers, lines) in {time.perf_counter() - began:.1f} s")
    store = ReportStore(engine)
    with engine.connect() as conn:
        marks = conn.execute(select(func.count()).select_from(ReportMark)).scalar()
    _timed(f"the build's {marks} change marks consumed", lambda: ReportDayStore(engine).consume(
        lambda hours: metrics.touched_days(hours, profile.shop_tz(), 1800, 259200)))
    day, week = (dt.date(2026, 11, 15),) * 2, (dt.date(2026, 11, 9), dt.date(2026, 11, 15))
    month = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    os.environ["KEFU_FAKE_NOW"] = "2026-11-15T12:00:00"
    _timed("summary one day, today (raw rows)", lambda: metrics.summary(*day, store=store))
    os.environ["KEFU_FAKE_NOW"] = "2026-12-01T12:00:00"
    first = _timed("summary the month, cold (computes 30 roll-ups)",
                   lambda: metrics.summary(*month, store=store))
    for label, days in (("one day", day), ("one week", week), ("the month", month)):
        result = _timed(f"summary {label}, from the roll-ups", lambda days=days: metrics.summary(*days, store=store))
    assert result == first, "the roll-ups changed the month's figures"
    print(f"    ({result['conversations']} conversations, first response p50/p90 "
          f"{result['first_response_p50_s']}/{result['first_response_p90_s']} s, resolution p90 "
          f"{result['resolution_p90_s']} s, sla first response {result['sla_attainment']['first_response']['rate']})")
    with engine.begin() as conn:        # an agent takes one ticket of the 15th: its days go stale
        conn.execute(update(Ticket).where(Ticket.id == n // 2).values(assignee_id=None))
    _timed("summary the month after one ticket changed", lambda: metrics.summary(*month, store=store))
    text = _timed("tickets CSV, the month", lambda: metrics.export_csv("tickets", *month, store))
    print(f"    ({text.count(chr(10)) - 1} rows)")
    queries = TicketQueries(engine)
    for label, f in (("search by last 4", TicketFilter(q="4321")),
                     ("breached, page 1", TicketFilter(sla="breached")),
                     ("repairs in a week", TicketFilter(kind="repair", date_from=dt.date(2026, 11, 9),
                                                        date_to=dt.date(2026, 11, 15)))):
        found = _timed(f"ticket list {label}", lambda f=f: queries.listing(
            f, viewer_id=0, now=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)))
        print(f"    ({found['total']} found)")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports")
    parser.add_argument("--tickets", type=int, default=100_000, help="e.g. 1000000")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite",
                        help="postgresql: a scratch database on 127.0.0.1:5432, dropped after")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file (its path is printed)")
    args = parser.parse_args()
    if args.db in ("sqlite", "both"):
        folder = tempfile.mkdtemp(prefix="kefu-bench-reports-")
        os.environ["KEFU_DATABASE_URL"] = url = f"sqlite:///{folder}/bench.db"
        run(url, args.tickets)
        if args.keep:
            print(f"  kept {folder}/bench.db")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if args.db in ("postgresql", "both"):
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, future=True, isolation_level="AUTOCOMMIT")
        name = f"kefu_bench_reports_{os.getpid()}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            os.environ["KEFU_DATABASE_URL"] = url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
            run(url, args.tickets)
        finally:
            from bot.store.engine import engine_for

            engine_for(url).dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
