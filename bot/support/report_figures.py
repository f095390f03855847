"""One day's dashboard figures, computed from the raw rows, and the merge of many days.

A day's figures (a JSON dict, what ``report_days`` stores) hold counts, not rates, so any
range's figures are the sum of its days'. Percentiles stay exact: a day keeps the value
counts of its first response and resolution times, rounded to the 0.1 s the dashboard
shows (``{"v": [...], "n": [...]}``); the range's nearest-rank percentile is read from the
merged counts (rounding is monotone, so it equals the rounded percentile of the raw values).
"""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence

from bot.profile import sla
from bot.store.reports import HandoffRow, Line, ReportStore

CLOCKS = sla.CLOCKS
CALL_STATES = ("due", "done", "unreachable")


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


def sessions(lines: Iterable[Line], handoffs: Iterable[HandoffRow], callbacks: Iterable[tuple],
             start: dt.datetime, end: dt.datetime, gap: dt.timedelta,
             repeat: dt.timedelta) -> List[Conversation]:
    """The conversations that started in [start, end), from customer lines in time order
    within each conversation (lines a gap before ``start`` tell a continuation from a
    start); ``callbacks``: (customer_id, created_at, number) of callback tickets."""
    current: Dict[str, Conversation] = {}
    runs: List[Conversation] = []
    for line in lines:
        last = current.get(line.conversation_id)
        if last is not None and line.at - last.ended_at <= gap:
            last.ended_at, last.lines = line.at, last.lines + 1
            continue
        if last is not None:
            last.repeat = line.at - last.ended_at <= repeat
        run = current[line.conversation_id] = Conversation(line.conversation_id, line.channel,
                                                           line.at, line.at)
        runs.append(run)
    by_conversation = defaultdict(list)
    for h in sorted(handoffs, key=lambda h: h.id):
        by_conversation[h.conversation_id].append(h)
    by_customer = defaultdict(list)
    for customer, created, number in callbacks:
        by_customer[customer].append((created, number))
    out = []
    for run in runs:
        if not start <= run.started_at < end:
            continue
        window_end = run.ended_at + gap
        run.handoff = next((h for h in by_conversation[run.conversation_id]
                            if run.started_at <= h.created_at <= window_end), None)
        if run.handoff is None:
            run.callback = next((number for created, number in by_customer[run.conversation_id]
                                 if run.started_at <= created <= window_end), None)
        out.append(run)
    return out


def _counts(values: Iterable[float]) -> Dict[str, list]:
    counted = sorted(Counter(round(v, 1) for v in values).items())
    return {"v": [v for v, _ in counted], "n": [n for _, n in counted]}


def _empty() -> Dict[str, Any]:
    return {"conversations": 0, "bot_resolved": 0, "handed_off": 0, "repeat": 0, "handoffs": 0,
            "frt": [], "resolution": [], "sla": {c: {} for c in CLOCKS}, "csat": {},
            "by_source": {}, "asked": 0, "answered": 0, "calls": {}, "agents": {}}


def _agent(figures: Dict[str, Any], agent_id) -> Dict[str, Any]:
    return figures["agents"].setdefault(str(agent_id), {"handled": 0, "frt": [], "tickets": 0,
                                                        "score_sum": 0, "score_n": 0})


def compute_days(store: ReportStore, days: Sequence[dt.date], *, tz, hours: tuple,
                 gap: dt.timedelta, repeat: dt.timedelta) -> Dict[dt.date, Dict[str, Any]]:
    """The figures of consecutive ``days`` from the raw rows: the conversations of the whole
    run from one read of its lines, the ticket figures counted by the database per day."""
    def bound(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)

    start, end = bound(days[0]), bound(days[-1] + dt.timedelta(days=1))
    lines, handoffs, callbacks = store.conversation_rows(start - gap, end + repeat + gap)
    out = {day: _empty() for day in days}

    def local(at: dt.datetime) -> dt.date:
        return at.astimezone(tz).date()

    for c in sessions(lines, handoffs, callbacks, start, end, gap, repeat):
        f = out[local(c.started_at)]
        f["conversations"] += 1
        f["bot_resolved"] += c.bot_resolved
        f["handed_off"] += c.handed_off
        f["repeat"] += c.repeat
    frt, agent_frt = defaultdict(list), defaultdict(lambda: defaultdict(list))
    for h in handoffs:
        if not start <= h.created_at < end:
            continue
        day = local(h.created_at)
        out[day]["handoffs"] += 1
        value = None if h.first_reply_at is None else sla.service_seconds(
            h.created_at, h.first_reply_at, hours=hours)
        if value is not None:
            frt[day].append(value)
        if h.agent_id is not None:
            _agent(out[day], h.agent_id)["handled"] += 1
            if value is not None:
                agent_frt[day][h.agent_id].append(value)
    for day in days:
        f = out[day]
        f["frt"] = _counts(frt[day])
        for agent_id, values in agent_frt[day].items():
            _agent(f, agent_id)["frt"] = _counts(values)
        _ticket_figures(f, store.day_counts(bound(day), bound(day + dt.timedelta(days=1))))
    return out


def _ticket_figures(f: Dict[str, Any], counts: Dict[str, list]) -> None:
    for clock, state, n in counts["clocks"]:
        f["sla"].setdefault(clock, {})[state] = int(n)
    f["resolution"] = _counts(float(used or 0) for used, _ in counts["resolved"])
    for _, assignee in counts["resolved"]:
        if assignee is not None:
            _agent(f, assignee)["tickets"] += 1
    for source, score, agent_id, n in counts["answers"]:
        f["asked"] += int(n)
        if not score:
            continue
        f["answered"] += int(n)
        f["csat"][str(score)] = f["csat"].get(str(score), 0) + int(n)
        by = f["by_source"].setdefault(source, {})
        by[str(score)] = by.get(str(score), 0) + int(n)
        if agent_id is not None:
            a = _agent(f, agent_id)
            a["score_sum"] += int(score) * int(n)
            a["score_n"] += int(n)
    f["calls"] = {status: int(n) for status, n in counts["calls"]}


# --- merging days ---------------------------------------------------------------------------


def percentiles(parts: Iterable[Any], ps: Sequence[float]) -> List[Optional[float]]:
    """Nearest-rank percentiles of merged value counts (each part ``{"v": [...], "n": [...]}``)."""
    import numpy as np

    parts = [p for p in parts if p and p["v"]]
    if not parts:
        return [None for _ in ps]
    values = np.concatenate([np.asarray(p["v"], dtype=float) for p in parts])
    counts = np.concatenate([np.asarray(p["n"], dtype=np.int64) for p in parts])
    order = np.argsort(values, kind="stable")
    values, cumulative = values[order], np.cumsum(counts[order])
    total = int(cumulative[-1])
    out = []
    for p in ps:
        rank = max(1, math.ceil(p / 100 * total))
        out.append(round(float(values[int(np.searchsorted(cumulative, rank))]), 1))
    return out


def _rate(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


def _attain(counts: Dict[str, int]) -> Dict[str, Any]:
    hit, missed = counts.get("hit", 0), counts.get("missed", 0)
    return {"hit": hit, "missed": missed, "active": counts.get("active", 0),
            "rate": _rate(hit, hit + missed)}


def _add(into: Dict[str, int], more: Dict[str, int]) -> None:
    for key, n in more.items():
        into[key] = into.get(key, 0) + n


def day_json(day: dt.date, f: Dict[str, Any]) -> Dict[str, Any]:
    p50, p90 = percentiles([f["frt"]], (50, 90))
    return {"day": day.isoformat(), "conversations": f["conversations"],
            "bot_resolved": f["bot_resolved"], "handed_off": f["handed_off"],
            "first_response_p50_s": p50, "first_response_p90_s": p90,
            "sla_attainment": {c: _attain(f["sla"].get(c, {}))["rate"] for c in CLOCKS},
            "csat_counts": {str(s): f["csat"].get(str(s), 0) for s in range(1, 6)},
            "return_calls": {k: f["calls"].get(k, 0) for k in CALL_STATES}}


def merge(days: Dict[dt.date, Dict[str, Any]], agents: Dict[int, str]) -> Dict[str, Any]:
    """The range's figures (without its dates and top misses) from its days' figures."""
    total = Counter()
    sla_counts = {c: {} for c in CLOCKS}
    csat, calls, by_source = {}, {}, defaultdict(dict)
    people: Dict[str, Dict[str, Any]] = defaultdict(lambda: {"handled": 0, "frt": [], "tickets": 0,
                                                             "score_sum": 0, "score_n": 0})
    for f in days.values():
        for key in ("conversations", "bot_resolved", "handed_off", "repeat", "handoffs",
                    "asked", "answered"):
            total[key] += f[key]
        for clock in CLOCKS:
            _add(sla_counts[clock], f["sla"].get(clock, {}))
        _add(csat, f["csat"])
        _add(calls, f["calls"])
        for source, scores in f["by_source"].items():
            _add(by_source[source], scores)
        for agent_id, a in f["agents"].items():
            p = people[agent_id]
            for key in ("handled", "tickets", "score_sum", "score_n"):
                p[key] += a[key]
            p["frt"].append(a["frt"])
    frt = [f["frt"] for f in days.values()]
    answered_frt = sum(sum(part["n"]) for part in frt if part)
    frt50, frt90 = percentiles(frt, (50, 90))
    res50, res90 = percentiles([f["resolution"] for f in days.values()], (50, 90))
    n = total["conversations"]
    rows = []
    for agent_id, p in sorted(people.items(), key=lambda item: int(item[0])):
        rows.append({"agent_id": int(agent_id), "agent": agents.get(int(agent_id), agent_id),
                     "handled": p["handled"], "tickets_resolved": p["tickets"],
                     "first_response_p50_s": percentiles(p["frt"], (50,))[0],
                     "csat_average": round(p["score_sum"] / p["score_n"], 2) if p["score_n"] else None,
                     "csat_answers": p["score_n"]})
    return {
        "conversations": n, "bot_resolved": total["bot_resolved"],
        "handed_off": total["handed_off"], "repeat_contacts": total["repeat"],
        "bot_resolved_rate": _rate(total["bot_resolved"], n),
        "handoff_rate": _rate(total["handed_off"], n),
        "first_response_p50_s": frt50, "first_response_p90_s": frt90,
        "first_response_unanswered": total["handoffs"] - answered_frt,
        "resolution_p50_s": res50, "resolution_p90_s": res90,
        "sla_attainment": {c: _attain(sla_counts[c]) for c in CLOCKS},
        "csat_counts": {str(s): csat.get(str(s), 0) for s in range(1, 6)},
        "csat_by_source": {src: {str(s): scores.get(str(s), 0) for s in range(1, 6)}
                           for src, scores in sorted(by_source.items())},
        "csat_asked": total["asked"], "csat_answered": total["answered"],
        "csat_response_rate": _rate(total["answered"], total["asked"]),
        "return_calls": {k: calls.get(k, 0) for k in CALL_STATES},
        "agents": rows,
        "by_day": [day_json(day, f) for day, f in sorted(days.items())],
    }
