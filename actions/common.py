"""What every action needs: the shared ticket store, who the customer is, promises as text."""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, Dict, Optional

from rasa_sdk import Tracker

from bot.messages import ConversationId
from bot.profile import pack
from bot.profile.business import shop_tz
from bot.store.tickets import TicketStore, TicketView


@lru_cache(maxsize=1)
def store() -> TicketStore:
    return TicketStore()


def customer_channel(tracker: Tracker) -> str:
    """The channel is the sender id's prefix, set by the gateway (``web:…``, ``wechat:…``)."""
    sender = tracker.sender_id or ""
    return ConversationId(sender).channel


def form_run_key(tracker: Tracker, form: str) -> str:
    """An idempotency key for one run of ``form`` in this conversation.

    The timestamp of the event that activated the form is the same however often the
    submit action is retried, so a replayed submission finds the ticket it made.
    """
    started: Optional[float] = None
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == form:
            started = event.get("timestamp")
            break
    return f"{tracker.sender_id}:{form}:{started}"


def latest_turn_key(tracker: Tracker, what: str) -> str:
    """An idempotency key for a one-turn action: the latest customer message's time."""
    stamp = None
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            stamp = event.get("timestamp")
            break
    return f"{tracker.sender_id}:{what}:{stamp}"


def local_time(value: dt.datetime) -> str:
    """``11月28日 14:30`` in the shop's time zone, how a customer reads a promise."""
    local = value.astimezone(shop_tz())
    return pack.say("time_of_day", month=local.month, day=local.day, time=f"{local:%H:%M}")


def ticket_payload(ticket: TicketView, event: str, **extra: Any) -> Dict[str, Any]:
    """The structured note the gateway acts on (see ARCHITECTURE: no side channel)."""
    return {"kefu": {"event": event, "ticket": ticket.number, "kind": ticket.kind,
                     "priority": ticket.priority, **extra}}


def latest_entity(tracker: Tracker, name: str) -> Optional[str]:
    for entity in (tracker.latest_message or {}).get("entities", []):
        if entity.get("entity") == name and entity.get("value"):
            return str(entity["value"])
    return None
