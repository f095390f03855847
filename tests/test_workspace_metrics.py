"""Every dashboard figure against hand-computed values on one fixed scenario (issue 15).

Shop time Asia/Shanghai, service hours 09:00–21:00 (businesses/shop/profile.yml). Friday
2026-11-27 … Monday 2026-11-30:

conversations   web:a 10:00, 10:05 (bot only)                      → bot-resolved
                web:b 11:00, handoff 11:01, amy replies 11:11      → handed off, FRT 600 s
                web:c 12:00 and again 11-28 12:00 (< 72 h)         → the first: repeat contact;
                                                                     the second: bot-resolved
                web:d 20:45, handoff 20:50, reply 11-28 09:10       → FRT 10 min before closing
                                                                     + 10 min after opening = 1200 s
tickets         T1 repair 11-27 10:00: acknowledged 10:30 (first response hit, 1800 s), waiting
                   on the customer 11:00–15:00 (paused), resolved 16:00 → resolution 7200 s;
                   回访 reached, 5 points → closed
                T2 complaint 11-27 20:00: nobody answers; due after 24 service hours = 11-29
                   20:00; the watcher on 11-30 10:00 marks first response missed and escalates
                   (normal → high, once); resolved 11:00 → resolution 1+12+12+2 h = 97200 s;
                   回访 not reached 3 times → unreachable → closed
                TB callback for web:b 11:01 (1 h promise in hours): answered 11:11 (hit),
                   resolved when the handoff closed 11:30 → resolution 1740 s; customer rates 4
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.profile import sla
from bot.store.agents import AgentStore
from bot.store.engine import get_engine, retrying
from bot.store.return_calls import ReturnCallError, ReturnCallStore
from bot.store.satisfaction import SatisfactionStore
from bot.store.schema import Handoff, Message, ReturnCall, SlaClock
from bot.store.sla_clocks import SlaClockStore, clock_json
from bot.store.tickets import TicketStore
from bot.support import metrics

SH = dt.timezone(dt.timedelta(hours=8))


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """Shop time, as the UTC instant every stored time is (SQLite keeps no offsets)."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SH).astimezone(dt.timezone.utc)


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/metrics.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")
    return get_engine()


def clock_at(monkeypatch, when: dt.datetime) -> None:
    monkeypatch.setenv("KEFU_FAKE_NOW", when.isoformat())


def lines(engine, conversation: str, *times: dt.datetime) -> None:
    retrying(lambda s: s.add_all([Message(conversation_id=conversation, channel="web",
                                          author="customer", text="hi", at=t) for t in times]),
             engine=engine)


def handoff(engine, conversation, created, reply, closed, agent_id, ticket=None) -> int:
    def work(s):
        row = Handoff(conversation_id=conversation, channel="web", user_id=conversation[4:],
                      status="closed", agent_id=agent_id, created_at=created, claimed_at=created,
                      first_reply_at=reply, closed_at=closed, ticket_number=ticket)
        s.add(row)
        s.flush()
        return row.id
    return retrying(work, engine=engine)


def clocks(engine, number):
    def work(s):
        from bot.store.schema import Ticket
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.number == number))
        return {c.clock: clock_json(c, at(30, 12)) for c in s.scalars(
            select(SlaClock).where(SlaClock.ticket_id == ticket_id))}
    return retrying(work, engine=engine)


@pytest.fixture
def scenario(db, monkeypatch):
    engine, tickets, agents = db, TicketStore(), AgentStore()
    amy, bob = agents.create("amy", "password-1"), agents.create("bob", "password-2", role="lead")
    lines(engine, "web:a", at(27, 10), at(27, 10, 5))
    lines(engine, "web:b", at(27, 11))
    lines(engine, "web:c", at(27, 12), at(28, 12))
    lines(engine, "web:d", at(27, 20, 45))

    clock_at(monkeypatch, at(27, 10))
    t1, _ = tickets.open_ticket(kind="repair", category="空调", description="不制冷",
                                customer_id="web:a", channel="web", idempotency_key="t1",
                                phone="13812345678")
    tickets.assign(t1.number, bob.id, actor="bob")
    clock_at(monkeypatch, at(27, 10, 30))
    tickets.change_status(t1.number, "acknowledged", actor="bob")
    clock_at(monkeypatch, at(27, 11))
    tickets.change_status(t1.number, "waiting", actor="bob")
    paused = clocks(engine, t1.number)
    clock_at(monkeypatch, at(27, 15))
    tickets.change_status(t1.number, "in_progress", actor="customer")
    clock_at(monkeypatch, at(27, 16))
    tickets.change_status(t1.number, "resolved", actor="bob")

    clock_at(monkeypatch, at(27, 11, 1))
    tb, _ = tickets.open_ticket(kind="callback", category="人工服务", description="转人工",
                                customer_id="web:b", channel="web", idempotency_key="tb")
    hb = handoff(engine, "web:b", at(27, 11, 1), at(27, 11, 11), at(27, 11, 30), amy.id, tb.number)
    SlaClockStore().responded(tb.number, at(27, 11, 11))
    clock_at(monkeypatch, at(27, 11, 30))
    tickets.change_status(tb.number, "resolved", actor="amy")
    satisfaction = SatisfactionStore()
    satisfaction.asked(conversation_id="web:b", ticket_number=tb.number, handoff_id=hb,
                       agent_id=amy.id, at=at(27, 11, 30))
    clock_at(monkeypatch, at(27, 11, 32))
    tickets.record_rating(tb.number, 4, actor="customer")

    hd = handoff(engine, "web:d", at(27, 20, 50), at(28, 9, 10), at(28, 9, 30), amy.id)
    satisfaction.asked(conversation_id="web:d", handoff_id=hd, agent_id=amy.id, at=at(28, 9, 30))

    clock_at(monkeypatch, at(27, 20))
    t2, _ = tickets.open_ticket(kind="complaint", category="服务", description="态度差",
                                customer_id="web:e", channel="web", idempotency_key="t2")
    missed_early = SlaClockStore().mark_missed(at(29, 19, 59))
    missed = SlaClockStore().mark_missed(at(30, 10))
    again = SlaClockStore().mark_missed(at(30, 10, 5))
    clock_at(monkeypatch, at(30, 11))
    tickets.change_status(t2.number, "resolved", actor="bob")

    calls = ReturnCallStore()
    by_ticket = dict(retrying(lambda s: [(r.ticket_id, r.id) for r in s.scalars(select(ReturnCall))],
                              engine=engine))
    t1_call, t2_call = by_ticket[tickets.find(t1.number).id], by_ticket[tickets.find(t2.number).id]
    clock_at(monkeypatch, at(28, 10))
    calls.record(t1_call, outcome="reached", score=5, comment="已修好", agent_id=bob.id, actor="bob")
    for hour in (12, 16, 20):
        calls.record(t2_call, outcome="not_reached", agent_id=bob.id, actor="bob", at=at(30, hour))

    satisfaction.record_miss("web:a", "我的电话13812345678怎么办", at=at(27, 10, 5))
    satisfaction.record_miss("web:c", "我的电话13812345678怎么办", at=at(27, 12))
    satisfaction.record_miss("web:c", "啥", at=at(28, 12))
    return dict(t1=t1.number, t2=t2.number, tb=tb.number, amy=amy, bob=bob, paused=paused,
                missed_early=missed_early, missed=missed, again=again, t2_call=t2_call)


def test_service_hours_across_closing_time_and_overnight():
    assert sla.service_seconds(at(27, 20, 50), at(28, 9, 10)) == 1200
    assert sla.service_seconds(at(27, 22), at(28, 8)) == 0
    assert sla.add_service_seconds(at(27, 20), 24 * 3600) == at(29, 20).astimezone(dt.timezone.utc)
    assert sla.service_seconds(at(27, 20), at(27, 21), calendar=True) == 3600


def test_clocks_pause_while_waiting_on_the_customer_and_breach_once(scenario, db):
    paused = scenario["paused"]["resolution"]
    assert paused["paused"] and paused["due_at"] is None and paused["used_s"] == 3600
    t1 = clocks(db, scenario["t1"])
    assert t1["first_response"]["state"] == "hit" and t1["first_response"]["used_s"] == 1800
    assert t1["resolution"]["state"] == "hit" and t1["resolution"]["used_s"] == 7200
    assert scenario["missed_early"] == []                       # due 11-29 20:00
    assert [(m["clock"], m["escalated"]) for m in scenario["missed"]] == [("first_response", True)]
    assert scenario["again"] == []                              # once
    t2 = TicketStore().find(scenario["t2"])
    assert t2.priority == "high" and t2.escalated_at is not None
    t2c = clocks(db, scenario["t2"])
    assert t2c["first_response"]["state"] == "missed"          # answering late keeps it missed
    assert t2c["resolution"]["state"] == "hit" and t2c["resolution"]["used_s"] == 97200


def test_return_calls_close_the_ticket_or_give_up(scenario):
    tickets = TicketStore()
    assert tickets.find(scenario["t1"]).status == "closed"
    assert tickets.find(scenario["t1"]).rating == 5
    assert tickets.find(scenario["t2"]).status == "closed"
    with pytest.raises(ReturnCallError):
        ReturnCallStore().record(scenario["t2_call"], outcome="reached", score=3,
                                 agent_id=scenario["bob"].id, actor="bob")
    [call] = ReturnCallStore().for_ticket(tickets.find(scenario["t2"]).id, unmasked=False)
    assert (call["status"], call["attempts"]) == ("unreachable", 3)


def test_every_metric_on_the_scenario(scenario):
    s = metrics.summary(dt.date(2026, 11, 27), dt.date(2026, 11, 30))
    assert s["conversations"] == 5                    # a, b, c (twice), d
    assert (s["bot_resolved"], s["handed_off"], s["repeat_contacts"]) == (2, 2, 1)
    assert s["bot_resolved_rate"] == 0.4 and s["handoff_rate"] == 0.4
    assert (s["first_response_p50_s"], s["first_response_p90_s"]) == (600, 1200)
    assert (s["resolution_p50_s"], s["resolution_p90_s"]) == (7200, 97200)
    assert s["sla_attainment"]["first_response"] == {"hit": 2, "missed": 1, "active": 0,
                                                     "rate": 0.6667}
    assert s["sla_attainment"]["resolution"] == {"hit": 3, "missed": 0, "active": 0, "rate": 1.0}
    assert s["csat_counts"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}
    assert s["csat_by_source"]["bot"]["4"] == 1 and s["csat_by_source"]["return_call"]["5"] == 1
    assert (s["csat_asked"], s["csat_answered"], s["csat_response_rate"]) == (3, 2, 0.6667)
    assert s["return_calls"] == {"due": 0, "done": 1, "unreachable": 1}
    assert s["top_misses"][0] == {"text": "我的电话138****5678怎么办", "count": 2}
    agents = {a["agent"]: a for a in s["agents"]}
    assert agents["amy"]["handled"] == 2 and agents["amy"]["first_response_p50_s"] == 600
    assert agents["amy"]["csat_average"] == 4
    assert agents["bob"]["tickets_resolved"] == 1 and agents["bob"]["csat_average"] == 5
    days = {d["day"]: d for d in s["by_day"]}
    assert days["2026-11-27"]["conversations"] == 4 and days["2026-11-28"]["conversations"] == 1
    assert days["2026-11-27"]["first_response_p90_s"] == 1200


def test_one_day_range_sees_the_repeat_after_it(scenario):
    s = metrics.summary(dt.date(2026, 11, 27), dt.date(2026, 11, 27))
    assert s["conversations"] == 4 and s["repeat_contacts"] == 1 and s["bot_resolved"] == 1


def test_csv_exports_one_row_per_conversation_and_per_ticket(scenario):
    conv = metrics.export_csv("conversations", dt.date(2026, 11, 27), dt.date(2026, 11, 30))
    rows = [line.split(",") for line in conv.strip().splitlines()]
    assert rows[0] == list(metrics.CONVERSATION_COLUMNS) and len(rows) == 6
    d = next(r for r in rows if r[0] == "web:d")
    assert d[metrics.CONVERSATION_COLUMNS.index("first_response_s")] == "1200.0"
    tick = metrics.export_csv("tickets", dt.date(2026, 11, 27), dt.date(2026, 11, 30))
    rows = [line.split(",") for line in tick.strip().splitlines()]
    assert len(rows) == 4 and "13812345678" not in tick
    t2 = next(r for r in rows if r[0] == scenario["t2"])
    col = metrics.TICKET_COLUMNS.index
    assert (t2[col("first_response_state")], t2[col("escalated")],
            t2[col("return_call_status")]) == ("missed", "1", "unreachable")
    with pytest.raises(ValueError):
        metrics.export_csv("people", dt.date(2026, 11, 27), dt.date(2026, 11, 30))


# --- the daily roll-ups (report_days): closed days read back, invalidated by changes ---------


def test_closed_days_are_read_from_roll_ups_and_recomputed_after_a_change(scenario, db, monkeypatch):
    from sqlalchemy import text, update

    from bot.store.schema import ReportDay, Ticket

    clock_at(monkeypatch, dt.datetime(2026, 12, 5, 12, tzinfo=SH))     # every day closed
    first = metrics.summary(dt.date(2026, 11, 27), dt.date(2026, 11, 30))
    stored = retrying(lambda s: {r.day: r.figures is not None for r in s.scalars(select(ReportDay))},
                      engine=db, write=False)
    assert {d for d, ok in stored.items() if ok} >= {"2026-11-27", "2026-11-28", "2026-11-29",
                                                       "2026-11-30"}
    assert metrics.summary(dt.date(2026, 11, 27), dt.date(2026, 11, 30)) == first
    assert first["sla_attainment"]["first_response"]["missed"] == 1
    # a change to a stored day's row (a bulk UPDATE, not through any store) is seen
    retrying(lambda s: s.execute(text("UPDATE sla_clocks SET state = 'hit' WHERE state = 'missed'")),
             engine=db)
    after = metrics.summary(dt.date(2026, 11, 27), dt.date(2026, 11, 30))
    assert after["sla_attainment"]["first_response"] == {"hit": 3, "missed": 0, "active": 0,
                                                        "rate": 1.0}
    # web:a comes back on the 30th within 72 h of its conversation on the 27th: that day's
    # conversation becomes a repeat contact (a line three days later reaches back)
    lines(db, "web:a", at(30, 9))
    again = metrics.summary(dt.date(2026, 11, 27), dt.date(2026, 11, 30))
    assert (again["conversations"], again["bot_resolved"], again["repeat_contacts"]) == (6, 2, 2)
    assert {d["day"]: d["bot_resolved"] for d in again["by_day"]}["2026-11-27"] == 0
    one_day = metrics.summary(dt.date(2026, 11, 27), dt.date(2026, 11, 27))
    assert (one_day["conversations"], one_day["repeat_contacts"]) == (4, 2)
    # an agent's ticket taken away: bob resolved none of that day's tickets any more
    retrying(lambda s: s.execute(update(Ticket).where(Ticket.number == scenario["t1"])
                                 .values(assignee_id=None)), engine=db)
    agents = {a["agent"]: a for a in metrics.summary(dt.date(2026, 11, 27),
                                                     dt.date(2026, 11, 30))["agents"]}
    assert agents["bob"]["tickets_resolved"] == 0


def test_a_day_changed_while_it_was_computed_is_not_stored(db):
    from bot.store.report_days import ReportDayStore

    def touched(hours):
        return ["2026-11-27"]

    days = ReportDayStore(db)
    gen0 = days.consume(touched)
    lines(db, "web:z", at(27, 10))           # commits while the day is being computed
    assert days.store({dt.date(2026, 11, 27): {"x": 1}}, "r", gen0, touched,
                      at(28, 10)) == 0
    gen1 = days.consume(touched)
    assert days.store({dt.date(2026, 11, 27): {"x": 1}}, "r", gen1, touched, at(28, 10)) == 1
    assert days.cached(dt.date(2026, 11, 27), dt.date(2026, 11, 27), "r") == {
        dt.date(2026, 11, 27): {"x": 1}}


def test_postgres_roll_ups_match_sqlite(scratch_pg, tmp_path, monkeypatch):
    """The same rows on both databases (the bench's builder): the same summary, raw and from
    the roll-ups; PostgreSQL's triggers mark the changed hours."""
    from sqlalchemy import text

    from bench.reports import build
    from bot.store.engine import engine_for
    from bot.store.migrations import upgrade_to_head
    from bot.store.reports import ReportStore

    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-12-01T12:00:00")
    upgrade_to_head(scratch_pg)
    lite = engine_for(f"sqlite:///{tmp_path}/same.db")
    for engine in (scratch_pg, lite):
        build(engine, 400)
    with scratch_pg.connect() as conn:
        marks = conn.execute(text("SELECT count(*), min(hour), max(wide) FROM report_marks")).one()
    assert marks[0] >= 400 * 3 and marks[1] >= dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc
                                                           ).timestamp() // 3600 and marks[2] == 1
    month = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    pg = metrics.summary(*month, store=ReportStore(scratch_pg))
    assert pg == metrics.summary(*month, store=ReportStore(lite))
    assert pg == metrics.summary(*month, store=ReportStore(scratch_pg))      # from report_days
    for rows in ("tickets", "conversations"):
        text_pg = metrics.export_csv(rows, *month, ReportStore(scratch_pg))
        assert text_pg == metrics.export_csv(rows, *month, ReportStore(lite))
        assert text_pg.count("\n") > 300
    with scratch_pg.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM report_days WHERE figures IS NOT NULL")
                            ).scalar() == 30
        conn.execute(text("UPDATE sla_clocks SET state = 'missed' WHERE state = 'hit'"))
    changed = metrics.summary(*month, store=ReportStore(scratch_pg))
    assert changed["sla_attainment"]["first_response"]["hit"] == 0
    assert pg["conversations"] > 0


def test_triggers_mark_the_hour_and_how_far_back_it_reaches(db):
    from sqlalchemy import text

    tickets = TicketStore()
    tickets.open_ticket(kind="repair", category="空调", description="不制冷", customer_id="web:a",
                        channel="web", idempotency_key="m1")
    tickets.open_ticket(kind="callback", category="人工服务", description="转人工",
                        customer_id="web:b", channel="web", idempotency_key="m2")
    lines(db, "web:a", at(27, 10))
    retrying(lambda s: s.add(Message(conversation_id="web:a", channel="web", author="bot",
                                     text="好的", at=at(27, 10))), engine=db)
    with db.connect() as conn:
        marks = conn.execute(text("SELECT hour, wide FROM report_marks ORDER BY id")).all()
    hour = int(at(27, 10).timestamp() // 3600)           # KEFU_FAKE_NOW: 11-27 10:00
    # repair + its 2 clocks: its own day; callback (read by conversations): wide, its clocks
    # narrow; the customer's line wide; the bot's line no mark
    assert marks == [(hour, 0)] * 3 + [(hour, 1), (hour, 0), (hour, 0), (hour, 1)]


def test_settling_turns_marks_into_stale_days_without_a_reader(scenario, db, monkeypatch):
    """The gateway settles marks every few minutes: they never pile up unread, and a day they
    touch is recomputed at the next reading (its stored figures are dropped, not kept stale)."""
    from sqlalchemy import text

    from bot.store.schema import ReportDay

    clock_at(monkeypatch, dt.datetime(2026, 12, 5, 12, tzinfo=SH))
    first = metrics.summary(dt.date(2026, 11, 27), dt.date(2026, 11, 30))
    lines(db, "web:late", at(28, 15))                       # a new conversation on the 28th
    with db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM report_marks")).scalar() > 0
    metrics.settle_marks()
    with db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM report_marks")).scalar() == 0
    stale = retrying(lambda s: {r.day for r in s.scalars(select(ReportDay)) if r.figures is None},
                     engine=db, write=False)
    assert "2026-11-28" in stale
    again = metrics.summary(dt.date(2026, 11, 27), dt.date(2026, 11, 30))
    assert again["conversations"] == first["conversations"] + 1
