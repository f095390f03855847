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
