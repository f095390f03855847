"""Service-level promises turned into due times, from the business profile."""
from __future__ import annotations

import datetime as dt

from bot.profile.business import load_profile, next_opening, within_service_hours


def promised_hours(kind: str, priority: str) -> int:
    """How many hours the shop promises for the first on-site visit / human response."""
    sla = load_profile()["sla"]
    if kind == "repair":
        return sla["urgent_repair_onsite_hours"] if priority == "urgent" else sla["repair_contact_hours"]
    if kind == "complaint":
        return sla["complaint_first_response_hours"]
    if kind == "return":
        return sla["return_first_response_hours"]
    if kind == "callback" and within_service_hours():
        return load_profile()["response_time"]["online_hours"]
    return sla["callback_hours"]


def due_time(kind: str, priority: str, created_at: dt.datetime) -> dt.datetime:
    """When the promise falls due. Out-of-hours callbacks start counting at opening time."""
    start = created_at
    if kind == "callback" and not within_service_hours(created_at):
        start = next_opening(created_at)
        # in UTC like every stored time: SQLite keeps a datetime's fields, not its offset
        due = start + dt.timedelta(hours=load_profile()["sla"]["callback_hours"])
        return due.astimezone(dt.timezone.utc)
    return start + dt.timedelta(hours=promised_hours(kind, priority))


# --- clocks counted in service hours (bot/support/sla_clocks.py, bot/support/metrics.py) --------

FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"
CLOCKS = (FIRST_RESPONSE, RESOLUTION)


def _day_window(day: dt.date, tz, window) -> tuple[dt.datetime, dt.datetime]:
    opening, closing = window
    start = dt.datetime.combine(day, opening, tzinfo=tz)
    end = dt.datetime.combine(day, closing, tzinfo=tz)
    if end <= start:                    # "00:00"–"00:00" or a window past midnight
        end += dt.timedelta(days=1)
    return start, end


def service_seconds(start: dt.datetime, end: dt.datetime, *, calendar: bool = False,
                    hours: tuple | None = None) -> float:
    """Seconds of service hours between ``start`` and ``end`` (0 when end <= start).

    ``calendar``: every second counts (around-the-clock promises such as urgent repairs).
    ``hours``: ``(shop_tz(), service_window())`` read once by a caller counting many spans
    (the dashboard's roll-ups), instead of the profile for each.
    """
    if end <= start:
        return 0.0
    if calendar:
        return (end - start).total_seconds()
    from bot.profile.business import service_window, shop_tz

    tz, window = hours or (shop_tz(), service_window())
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    total, day = 0.0, local_start.date() - dt.timedelta(days=1)
    while day <= local_end.date():
        opening, closing = _day_window(day, tz, window)
        overlap = (min(closing, local_end) - max(opening, local_start)).total_seconds()
        total += max(0.0, overlap)
        day += dt.timedelta(days=1)
    return total


def add_service_seconds(start: dt.datetime, seconds: float, *,
                        calendar: bool = False) -> dt.datetime:
    """The moment ``seconds`` of service hours after ``start`` have passed (in UTC)."""
    if calendar:
        return (start + dt.timedelta(seconds=seconds)).astimezone(dt.timezone.utc)
    from bot.profile.business import service_window, shop_tz

    tz, window = shop_tz(), service_window()
    left, at = float(seconds), start.astimezone(tz)
    day = at.date() - dt.timedelta(days=1)
    for _ in range(3700):               # ten years of days at most
        opening, closing = _day_window(day, tz, window)
        begin = max(opening, at)
        if begin < closing:
            room = (closing - begin).total_seconds()
            if left <= room:
                return (begin + dt.timedelta(seconds=left)).astimezone(dt.timezone.utc)
            left -= room
        day += dt.timedelta(days=1)
    raise ValueError("service hours never open")


def around_the_clock(kind: str, priority: str) -> bool:
    """Urgent repairs are dispatched around the clock: their clocks count calendar time."""
    return kind == "repair" and priority == "urgent" and bool(
        load_profile()["sla"].get("urgent_around_the_clock", True))


def clock_budget(clock: str, kind: str, priority: str) -> float:
    """The seconds (service hours, or calendar for around-the-clock) a clock allows."""
    if clock == FIRST_RESPONSE:
        hours = promised_hours(kind, priority)
    else:
        hours = (load_profile()["sla"].get("resolution_hours") or {}).get(kind, 72)
    return float(hours) * 3600


def due_soon_seconds() -> float:
    return float(load_profile()["sla"].get("due_soon_minutes", 60)) * 60
