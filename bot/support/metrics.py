"""The lead's dashboard figures (报表) and the CSV exports, from :mod:`bot.store.reports`.

Definitions (the README's "Workspace" section and the 报表 page say the same):

* **conversation**: a customer's run of messages on one conversation (channel + user) with
  no silence longer than ``reports.session_gap_minutes``; it belongs to the day it started.
* **handed off**: during the conversation (until a gap after its last line) a person was
  asked for: a handoff opened, or an out-of-hours callback ticket was filed.
* **repeat contact**: the same conversation starts again within
  ``reports.repeat_contact_hours`` after the conversation's last line.
* **bot_resolved_rate**: conversations neither handed off nor followed by a repeat
  contact, over all conversations. **handoff_rate**: handed off over all conversations.
* **first_response_p50_s / _p90_s**: handoffs opened in the range, from the request to the
  first human reply, counting service hours only (bot time and closed hours excluded);
  unanswered handoffs are counted apart. Percentiles are nearest-rank.
* **resolution_p50_s / _p90_s**: tickets opened in the range and resolved, their
  resolution clock's service seconds (time waiting on the customer excluded).
* **sla_attainment**: per clock (first_response, resolution), of tickets opened in the
  range: hit / (hit + missed); running clocks are counted as ``active``, not in the rate.
* **csat_counts**: answers 1..5 to satisfaction questions asked in the range (the bot's
  and the 回访's, ``csat_by_source``); **csat_response_rate**: answered / asked.
* **return_calls**: 回访 made due in the range: still due, done, unreachable.
* **top_misses**: the lines the bot's fallback answered most often (masked).
* **agents**: per agent, handoffs handled, their FRT p50, tickets resolved and CSAT average.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

from bot.profile import business as profile
from bot.profile import sla
from bot.store.reports import HandoffRow, ReportData, ReportStore

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


_TZ: list = []


def local_day(at: dt.datetime) -> dt.date:
    """The shop-local day (the time zone read once per summary, see :func:`summarize`)."""
    return at.astimezone(_TZ[0] if _TZ else profile.shop_tz()).date()


def day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = profile.shop_tz()
    start = dt.datetime.combine(date_from, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


@dataclass
class Conversation:
    conversation_id: str
    channel: str
    started_at: dt.datetime
    ended_at: dt.datetime
    lines: int = 1
    handoff: Optional[HandoffRow] = None
    callback: Optional[str] = None           # an out-of-hours callback ticket's number
    repeat: bool = False

    @property
    def handed_off(self) -> bool:
        return self.handoff is not None or self.callback is not None

    @property
    def bot_resolved(self) -> bool:
        return not self.handed_off and not self.repeat


def conversations(data: ReportData, start: dt.datetime, end: dt.datetime) -> List[Conversation]:
    rules = report_rules()
    gap, repeat = dt.timedelta(seconds=rules["gap"]), dt.timedelta(seconds=rules["repeat"])
    runs: List[Conversation] = []
    for line in data.lines:           # ordered by conversation, then time
        last = runs[-1] if runs else None
        if last and last.conversation_id == line.conversation_id and line.at - last.ended_at <= gap:
            last.ended_at, last.lines = line.at, last.lines + 1
        else:
            if last and last.conversation_id == line.conversation_id:
                last.repeat = line.at - last.ended_at <= repeat
            runs.append(Conversation(line.conversation_id, line.channel, line.at, line.at))
    handoffs = defaultdict(list)
    for h in data.handoffs:
        handoffs[h.conversation_id].append(h)
    callbacks = defaultdict(list)
    for t in data.tickets:
        if t.kind == "callback":
            callbacks[t.customer_id].append(t)
    out = []
    for run in runs:
        if not start <= run.started_at < end:
            continue
        window_end = run.ended_at + gap
        run.handoff = next((h for h in sorted(handoffs[run.conversation_id], key=lambda h: h.id)
                            if run.started_at <= h.created_at <= window_end), None)
        if run.handoff is None:
            run.callback = next((t.number for t in callbacks[run.conversation_id]
                                 if run.started_at <= t.created_at <= window_end), None)
        out.append(run)
    return out


def first_response_s(h: HandoffRow) -> Optional[float]:
    if h.first_reply_at is None:
        return None
    return sla.service_seconds(h.created_at, h.first_reply_at)


def _rate(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


@dataclass
class _Day:
    conversations: int = 0
    bot_resolved: int = 0
    handed_off: int = 0
    frt: List[float] = field(default_factory=list)
    sla: Dict[str, Counter] = field(default_factory=lambda: {c: Counter() for c in CLOCKS})
    csat: Counter = field(default_factory=Counter)
    calls: Counter = field(default_factory=Counter)


def summarize(data: ReportData, date_from: dt.date, date_to: dt.date) -> Dict[str, Any]:
    _TZ[:] = [profile.shop_tz()]
    start, end = day_bounds(date_from, date_to)
    days = {date_from + dt.timedelta(days=i): _Day() for i in range((date_to - date_from).days + 1)}
    convs = conversations(data, start, end)
    for c in convs:
        day = days[local_day(c.started_at)]
        day.conversations += 1
        day.bot_resolved += c.bot_resolved
        day.handed_off += c.handed_off
    in_range = [h for h in data.handoffs if start <= h.created_at < end]
    frts = {}
    for h in in_range:
        value = first_response_s(h)
        if value is not None:
            frts[h.id] = value
            days[local_day(h.created_at)].frt.append(value)
    ticket_day = {t.id: local_day(t.created_at) for t in data.tickets}
    attainment = {c: Counter() for c in CLOCKS}
    resolution = []
    for clock in data.clocks:
        attainment[clock.clock][clock.state] += 1
        days[ticket_day[clock.ticket_id]].sla[clock.clock][clock.state] += 1
        if clock.clock == sla.RESOLUTION and clock.stopped:
            resolution.append(clock.used_s)
    csat, by_source, asked, answered = Counter(), defaultdict(Counter), 0, 0
    for a in data.answers:
        asked += 1
        if a.score:
            answered += 1
            csat[a.score] += 1
            by_source[a.source][a.score] += 1
            days[local_day(a.asked_at)].csat[a.score] += 1
    calls = Counter(c.status for c in data.calls)
    for c in data.calls:
        days[local_day(c.created_at)].calls[c.status] += 1
    total = len(convs)
    return {
        "from": date_from.isoformat(), "to": date_to.isoformat(),
        "conversations": total,
        "bot_resolved": sum(c.bot_resolved for c in convs),
        "handed_off": sum(c.handed_off for c in convs),
        "repeat_contacts": sum(c.repeat for c in convs),
        "bot_resolved_rate": _rate(sum(c.bot_resolved for c in convs), total),
        "handoff_rate": _rate(sum(c.handed_off for c in convs), total),
        "first_response_p50_s": _round(percentile(frts.values(), 50)),
        "first_response_p90_s": _round(percentile(frts.values(), 90)),
        "first_response_unanswered": len(in_range) - len(frts),
        "resolution_p50_s": _round(percentile(resolution, 50)),
        "resolution_p90_s": _round(percentile(resolution, 90)),
        "sla_attainment": {c: _attain(attainment[c]) for c in CLOCKS},
        "csat_counts": {str(s): csat.get(s, 0) for s in range(1, 6)},
        "csat_by_source": {src: {str(s): n.get(s, 0) for s in range(1, 6)}
                           for src, n in sorted(by_source.items())},
        "csat_asked": asked, "csat_answered": answered,
        "csat_response_rate": _rate(answered, asked),
        "return_calls": {k: calls.get(k, 0) for k in ("due", "done", "unreachable")},
        "top_misses": [{"text": text, "count": n} for text, n in data.misses],
        "agents": _agents(data, in_range, frts, start, end),
        "by_day": [_day_json(day, d) for day, d in sorted(days.items())],
    }


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def _attain(counts: Counter) -> Dict[str, Any]:
    hit, missed = counts.get("hit", 0), counts.get("missed", 0)
    return {"hit": hit, "missed": missed, "active": counts.get("active", 0),
            "rate": _rate(hit, hit + missed)}


def _day_json(day: dt.date, d: _Day) -> Dict[str, Any]:
    return {"day": day.isoformat(), "conversations": d.conversations,
            "bot_resolved": d.bot_resolved, "handed_off": d.handed_off,
            "first_response_p50_s": _round(percentile(d.frt, 50)),
            "first_response_p90_s": _round(percentile(d.frt, 90)),
            "sla_attainment": {c: _attain(d.sla[c])["rate"] for c in CLOCKS},
            "csat_counts": {str(s): d.csat.get(s, 0) for s in range(1, 6)},
            "return_calls": {k: d.calls.get(k, 0) for k in ("due", "done", "unreachable")}}


def _agents(data: ReportData, handoffs: List[HandoffRow], frts: Dict[int, float],
            start: dt.datetime, end: dt.datetime) -> List[Dict[str, Any]]:
    rows: Dict[int, Dict[str, Any]] = defaultdict(lambda: {"handled": 0, "frt": [], "scores": [],
                                                           "tickets": 0})
    for h in handoffs:
        if h.agent_id is not None:
            rows[h.agent_id]["handled"] += 1
            if h.id in frts:
                rows[h.agent_id]["frt"].append(frts[h.id])
    resolved = {c.ticket_id for c in data.clocks if c.clock == sla.RESOLUTION and c.stopped}
    for t in data.tickets:
        if t.assignee_id is not None and t.id in resolved:
            rows[t.assignee_id]["tickets"] += 1
    for a in data.answers:
        if a.agent_id is not None and a.score:
            rows[a.agent_id]["scores"].append(a.score)
    out = []
    for agent_id, r in sorted(rows.items()):
        out.append({"agent_id": agent_id, "agent": data.agents.get(agent_id, str(agent_id)),
                    "handled": r["handled"], "tickets_resolved": r["tickets"],
                    "first_response_p50_s": _round(percentile(r["frt"], 50)),
                    "csat_average": round(sum(r["scores"]) / len(r["scores"]), 2) if r["scores"] else None,
                    "csat_answers": len(r["scores"])})
    return out


# --- the whole thing, and the CSV exports ---------------------------------------------------


def load(date_from: dt.date, date_to: dt.date, store: ReportStore | None = None) -> ReportData:
    store = store or ReportStore()
    start, end = day_bounds(date_from, date_to)
    return store.load(start, end, lookahead=dt.timedelta(seconds=report_rules()["repeat"]))


def summary(date_from: dt.date, date_to: dt.date, store: ReportStore | None = None) -> Dict[str, Any]:
    return summarize(load(date_from, date_to, store), date_from, date_to)


CONVERSATION_COLUMNS = ("conversation_id", "channel", "started_at", "ended_at", "customer_lines",
                        "handed_off", "handoff_id", "callback_ticket", "agent", "first_response_s",
                        "handoff_duration_s", "repeat_contact", "bot_resolved", "csat", "csat_source")
TICKET_COLUMNS = ("number", "kind", "priority", "status", "channel", "created_at", "assignee",
                  "first_response_state", "first_response_s", "resolution_state", "resolution_s",
                  "escalated", "return_call_status", "return_call_attempts", "csat_bot",
                  "csat_return_call")


def _iso(value: Optional[dt.datetime]) -> str:
    return value.astimezone(profile.shop_tz()).isoformat(timespec="seconds") if value else ""


def _blank(value: Any) -> Any:
    return "" if value is None else value


def conversation_rows(data: ReportData, date_from: dt.date, date_to: dt.date) -> List[List[Any]]:
    start, end = day_bounds(date_from, date_to)
    by_handoff = {a.handoff_id: a for a in data.answers if a.handoff_id and a.score}
    rows = []
    for c in conversations(data, start, end):
        h = c.handoff
        answer = by_handoff.get(h.id) if h else None
        duration = sla.service_seconds(h.created_at, h.closed_at) if h and h.closed_at else None
        rows.append([c.conversation_id, c.channel, _iso(c.started_at), _iso(c.ended_at), c.lines,
                     int(c.handed_off), h.id if h else "", c.callback or "",
                     data.agents.get(h.agent_id, "") if h and h.agent_id else "",
                     _blank(_round(first_response_s(h))) if h else "", _blank(_round(duration)),
                     int(c.repeat), int(c.bot_resolved), answer.score if answer else "",
                     answer.source if answer else ""])
    return rows


def ticket_rows(data: ReportData) -> List[List[Any]]:
    clocks = defaultdict(dict)
    for c in data.clocks:
        clocks[c.ticket_id][c.clock] = c
    calls = {c.ticket_id: c for c in sorted(data.calls, key=lambda c: c.created_at)}
    scores: Dict[tuple, int] = {}
    for a in data.answers:
        if a.ticket_id and a.score:
            scores[(a.ticket_id, a.source)] = a.score
    rows = []
    for t in sorted(data.tickets, key=lambda t: t.id):
        fr, res = clocks[t.id].get(sla.FIRST_RESPONSE), clocks[t.id].get(sla.RESOLUTION)
        call = calls.get(t.id)
        rows.append([t.number, t.kind, t.priority, t.status, t.channel, _iso(t.created_at),
                     data.agents.get(t.assignee_id, "") if t.assignee_id else "",
                     fr.state if fr else "", _round(fr.used_s) if fr and fr.stopped else "",
                     res.state if res else "", _round(res.used_s) if res and res.stopped else "",
                     int(t.escalated), call.status if call else "", call.attempts if call else "",
                     scores.get((t.id, "bot"), ""), scores.get((t.id, "return_call"), "")])
    return rows


def export_csv(rows: str, date_from: dt.date, date_to: dt.date,
               store: ReportStore | None = None) -> str:
    """``rows``: ``conversations`` (one row per conversation) or ``tickets`` (one per ticket)."""
    data = load(date_from, date_to, store)
    out = io.StringIO()
    writer = csv.writer(out)
    if rows == "conversations":
        writer.writerow(CONVERSATION_COLUMNS)
        writer.writerows(conversation_rows(data, date_from, date_to))
    elif rows == "tickets":
        writer.writerow(TICKET_COLUMNS)
        writer.writerows(ticket_rows(data))
    else:
        raise ValueError("rows: conversations or tickets")
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
