"""The lead's dashboard figures (报表) and the CSV exports, from :mod:`bot.store.reports`.

Definitions (the README's "Workspace" section and the 报表 page say the same):

* **conversation**: a customer's run of messages on one conversation (channel + user) with
  no silence longer than ``reports.session_gap_minutes``; it belongs to the day it started
  (a line within the gap of an earlier one continues it, across midnight and a range's start).
* **handed off**: during the conversation (until a gap after its last line) a person was
  asked for: a handoff opened, or an out-of-hours callback ticket was filed.
* **repeat contact**: the same conversation starts again within
  ``reports.repeat_contact_hours`` after the conversation's last line.
* **bot_resolved_rate**: conversations neither handed off nor followed by a repeat
  contact, over all conversations. **handoff_rate**: handed off over all conversations.
* **first_response_p50_s / _p90_s**: handoffs opened in the range, from the request to the
  first human reply, counting service hours only (bot time and closed hours excluded);
  unanswered handoffs are counted apart. Percentiles are nearest-rank and exact (over the
  values rounded to the 0.1 s shown: the days' roll-ups keep value counts).
* **resolution_p50_s / _p90_s**: tickets opened in the range and resolved, their
  resolution clock's service seconds (time waiting on the customer excluded).
* **sla_attainment**: per clock (first_response, resolution), of tickets opened in the
  range: hit / (hit + missed); running clocks are counted as ``active``, not in the rate.
* **csat_counts**: answers 1..5 to satisfaction questions asked in the range (the bot's
  and the 回访's, ``csat_by_source``); **csat_response_rate**: answered / asked.
* **return_calls**: 回访 made due in the range: still due, done, unreachable.
* **top_misses**: the lines the bot's fallback answered most often (masked).
* **agents**: per agent, handoffs handled, their FRT p50, tickets resolved and CSAT average.

How it is computed on a million tickets: :func:`summary` reads each closed day's figures from
``report_days`` (bot/store/report_days.py; computed once by bot/support/report_figures.py,
again after database triggers marked a change to one of its rows), and today's from the raw
rows: a month is 30 stored rows plus one day's rows, not a month of tickets.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
from typing import Any, Dict, Iterable, List, Optional

from bot.profile import business as profile
from bot.profile import sla
from bot.store.report_days import ReportDayStore
from bot.store.reports import HandoffRow, ReportData, ReportStore
from bot.support.report_figures import Conversation, compute_days, merge, sessions

__all__ = ["Conversation", "summary", "export_csv", "percentile"]

CLOCKS = sla.CLOCKS


def report_rules() -> Dict[str, float]:
    found = profile.load_profile().get("reports") or {}
    return {"gap": float(found.get("session_gap_minutes", 30)) * 60,
            "repeat": float(found.get("repeat_contact_hours", 72)) * 3600}


def percentile(values: Iterable[float], p: float) -> Optional[float]:
    """Nearest rank: the smallest value with at least ``p`` % of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def local_day(at: dt.datetime) -> dt.date:
    return at.astimezone(profile.shop_tz()).date()


def day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = profile.shop_tz()
    start = dt.datetime.combine(date_from, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


def conversations(data: ReportData, start: dt.datetime, end: dt.datetime) -> List[Conversation]:
    rules = report_rules()
    callbacks = [(t.customer_id, t.created_at, t.number) for t in data.tickets
                 if t.kind == "callback"]
    return sessions(data.lines, data.handoffs, callbacks, start, end,
                    dt.timedelta(seconds=rules["gap"]), dt.timedelta(seconds=rules["repeat"]))


def first_response_s(h: HandoffRow, hours: tuple | None = None) -> Optional[float]:
    if h.first_reply_at is None:
        return None
    return sla.service_seconds(h.created_at, h.first_reply_at, hours=hours)


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


# --- the summary: closed days from their roll-ups, the others from the raw rows ------------

ROLLUP_VERSION = 1      # bump when a definition changes: every stored day is computed again


def touched_days(hours: List[tuple], tz, gap: float, repeat: float) -> List[str]:
    """The days whose figures changed rows of these UTC hours may change: a line (handoff,
    ticket) is read by the conversations of the ``repeat + gap`` before it (repeat contacts)
    and of its own day; a clock, 回访 or answer by its own day's."""
    days = set()
    for hour, wide in hours:
        first = dt.datetime.fromtimestamp(hour * 3600 - (repeat + gap if wide else 0), tz).date()
        last = dt.datetime.fromtimestamp((hour + 1) * 3600 + (gap if wide else -1), tz).date()
        while first <= last:
            days.add(first.isoformat())
            first += dt.timedelta(days=1)
    return sorted(days)


def _runs(days: List[dt.date]) -> List[List[dt.date]]:
    runs: List[List[dt.date]] = []
    for day in days:
        if runs and runs[-1][-1] + dt.timedelta(days=1) == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


SETTLE_EVERY = 600        # seconds between two settlings of the triggers' change marks


def settle_marks(store: ReportStore | None = None) -> int:
    """Turn the triggers' change marks into stale days now. The gateway runs this every
    :data:`SETTLE_EVERY` seconds, so marks (one per counted row written) never pile up when
    nobody opens the dashboard for weeks; returns the generation a computation would use."""
    store = store or ReportStore()
    rules = report_rules()
    tz = profile.shop_tz()
    return ReportDayStore(store.engine).consume(
        lambda hours: touched_days(hours, tz, rules["gap"], rules["repeat"]))


def summary(date_from: dt.date, date_to: dt.date, store: ReportStore | None = None) -> Dict[str, Any]:
    """The dashboard's figures of [date_from, date_to] (shop days). Days before today are
    read from ``report_days`` (computed once, again after a change touched them); today and
    later from the raw rows."""
    store = store or ReportStore()
    rules = report_rules()
    tz, window = profile.shop_tz(), profile.service_window()
    gap, repeat = dt.timedelta(seconds=rules["gap"]), dt.timedelta(seconds=rules["repeat"])
    key = (f"{ROLLUP_VERSION}|{tz.key}|{rules['gap']:g}|{rules['repeat']:g}|"
           f"{window[0]:%H%M}-{window[1]:%H%M}")
    now = profile.now()
    today = now.astimezone(tz).date()
    rollups = ReportDayStore(store.engine)

    def touched(hours):
        return touched_days(hours, tz, rules["gap"], rules["repeat"])

    gen0 = rollups.consume(touched)
    closed_to = min(date_to, today - dt.timedelta(days=1))
    figures = rollups.cached(date_from, closed_to, key) if date_from <= closed_to else {}
    every = [date_from + dt.timedelta(days=i) for i in range((date_to - date_from).days + 1)]
    computed: Dict[dt.date, Dict[str, Any]] = {}
    for run in _runs([d for d in every if d not in figures]):
        computed.update(compute_days(store, run, tz=tz, hours=(tz, window), gap=gap,
                                     repeat=repeat))
    rollups.store({d: f for d, f in computed.items() if d < today}, key, gen0, touched, now)
    figures.update(computed)
    start, end = day_bounds(date_from, date_to)
    return {"from": date_from.isoformat(), "to": date_to.isoformat(),
            **merge(figures, store.agent_names()),
            "top_misses": [{"text": text, "count": n} for text, n in store.top_misses(start, end)]}


# --- the CSV exports ------------------------------------------------------------------------


def load(date_from: dt.date, date_to: dt.date, store: ReportStore | None = None) -> ReportData:
    store = store or ReportStore()
    start, end = day_bounds(date_from, date_to)
    return store.load(start, end, lookahead=dt.timedelta(seconds=report_rules()["repeat"]))


CONVERSATION_COLUMNS = ("conversation_id", "channel", "started_at", "ended_at", "customer_lines",
                        "handed_off", "handoff_id", "callback_ticket", "agent", "first_response_s",
                        "handoff_duration_s", "repeat_contact", "bot_resolved", "csat", "csat_source")
TICKET_COLUMNS = ("number", "kind", "priority", "status", "channel", "created_at", "assignee",
                  "first_response_state", "first_response_s", "resolution_state", "resolution_s",
                  "escalated", "return_call_status", "return_call_attempts", "csat_bot",
                  "csat_return_call")


_SHOP_TZ: list = []      # the shop's zone, read once per export (not once per row)


def _iso(value: Optional[dt.datetime]) -> str:
    tz = _SHOP_TZ[0] if _SHOP_TZ else profile.shop_tz()
    return value.astimezone(tz).isoformat(timespec="seconds") if value else ""


def _blank(value: Any) -> Any:
    return "" if value is None else value


def conversation_rows(data: ReportData, date_from: dt.date, date_to: dt.date) -> List[List[Any]]:
    start, end = day_bounds(date_from, date_to)
    hours = (profile.shop_tz(), profile.service_window())
    by_handoff = {a.handoff_id: a for a in data.answers if a.handoff_id and a.score}
    rows = []
    for c in conversations(data, start, end):
        h = c.handoff
        answer = by_handoff.get(h.id) if h else None
        duration = sla.service_seconds(h.created_at, h.closed_at, hours=hours) if h and h.closed_at else None
        rows.append([c.conversation_id, c.channel, _iso(c.started_at), _iso(c.ended_at), c.lines,
                     int(c.handed_off), h.id if h else "", c.callback or "",
                     data.agents.get(h.agent_id, "") if h and h.agent_id else "",
                     _blank(_round(first_response_s(h, hours))) if h else "", _blank(_round(duration)),
                     int(c.repeat), int(c.bot_resolved), answer.score if answer else "",
                     answer.source if answer else ""])
    return rows


def ticket_rows(store: ReportStore, date_from: dt.date, date_to: dt.date) -> List[List[Any]]:
    rows = []
    for (number, kind, priority, status, channel, created, assignee, fr_state, fr_used,
         fr_stopped, res_state, res_used, res_stopped, escalated, call_status, call_attempts,
         bot_score, call_score) in store.ticket_export(*day_bounds(date_from, date_to)):
        rows.append([number, kind, priority, status, channel, _iso(created), assignee or "",
                     fr_state or "", _round(float(fr_used or 0)) if fr_stopped else "",
                     res_state or "", _round(float(res_used or 0)) if res_stopped else "",
                     int(bool(escalated)), call_status or "",
                     "" if call_status is None else call_attempts,
                     _blank(bot_score), _blank(call_score)])
    return rows


def export_csv(rows: str, date_from: dt.date, date_to: dt.date,
               store: ReportStore | None = None) -> str:
    """``rows``: ``conversations`` (one row per conversation) or ``tickets`` (one per ticket)."""
    if rows not in ("conversations", "tickets"):
        raise ValueError("rows: conversations or tickets")
    store = store or ReportStore()
    _SHOP_TZ[:] = [profile.shop_tz()]
    out = io.StringIO()
    writer = csv.writer(out)
    if rows == "conversations":
        writer.writerow(CONVERSATION_COLUMNS)
        writer.writerows(conversation_rows(load(date_from, date_to, store), date_from, date_to))
    else:
        writer.writerow(TICKET_COLUMNS)
        writer.writerows(ticket_rows(store, date_from, date_to))
    return out.getvalue()


def main(argv: List[str] | None = None) -> int:
    """``python -m bot.support.metrics summary|export --from D --to D [--rows tickets]``."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m bot.support.metrics",
                                     description="the lead's dashboard figures and CSV exports")
    parser.add_argument("command", choices=("summary", "export"))
    today = local_day(profile.now())
    parser.add_argument("--from", dest="date_from", type=dt.date.fromisoformat,
                        default=today - dt.timedelta(days=6))
    parser.add_argument("--to", dest="date_to", type=dt.date.fromisoformat, default=today)
    parser.add_argument("--rows", choices=("conversations", "tickets"), default="conversations")
    args = parser.parse_args(argv)
    if args.date_to < args.date_from:
        parser.error("--to is before --from")
    if args.command == "summary":
        json.dump(summary(args.date_from, args.date_to), sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        sys.stdout.write(export_csv(args.rows, args.date_from, args.date_to))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
