"""Named events and the bus that carries them (one per gateway process).

Everything that crosses a process or layer boundary is named here once: the events the
actions announce in their ``{"kefu": {"event": …}}`` payload, the handoff lifecycle the
consoles and the agents' group follow, and the statuses both sides compare. Publishers
never know their listeners: the composition root (``bot/gateway/app.py``) subscribes them,
so adding a notification is adding a listener, not editing the code that raised the event.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Awaitable, Callable, Dict, List

logger = logging.getLogger(__name__)

# --- announced by actions in their custom payload {"kefu": {"event": ...}} ------------------
HANDOFF_REQUESTED = "handoff"          # the customer asked for a person (or the bot gave up)
TICKET_CREATED = "ticket_created"      # a form filed a ticket (complaint, repair, return, callback)
ACTION_EVENTS = (HANDOFF_REQUESTED, TICKET_CREATED)

# --- the handoff lifecycle (HandoffService) -------------------------------------------------
HANDOFF_NEW = "handoff_new"
CUSTOMER_MESSAGE = "customer_message"
CLAIMED = "claimed"
TRANSFERRED = "transferred"
AGENT_REPLY = "agent_reply"
CLOSED = "closed"

TICKET_CHANGED = "ticket"             # a note or status change on a handoff's ticket
HANDOFF_EVENTS = (HANDOFF_NEW, CUSTOMER_MESSAGE, CLAIMED, TRANSFERRED, AGENT_REPLY, CLOSED,
                  TICKET_CHANGED)

# --- the service team's workspace (issue 15): tickets, return calls, SLA clocks ------------
BOT_FALLBACK = "bot_fallback"          # announced by the fallback action: a line not understood
TICKET_STATUS = "ticket_status"        # a ticket moved (console ticket page, handoff close …)
TICKET_ASSIGNED = "ticket_assigned"
RETURN_CALL_RECORDED = "return_call"   # one try of a 回访 (maybe closing the ticket)
# an SLA breach: a first-response or resolution clock ran out (the only SLA event: one per
# breach; ``escalated`` True on the ticket's first, which raised its priority for the lead)
SLA_CLOCK_MISSED = "sla_clock_missed"
WORKSPACE_EVENTS = (TICKET_STATUS, TICKET_ASSIGNED, RETURN_CALL_RECORDED, SLA_CLOCK_MISSED)

# --- the outbox (bot/support/outbox.py) ------------------------------------------------------
DELIVERY_FAILED = "delivery_failed"    # a row was dead-lettered: agents see it in the console

ALL = "*"                              # subscribe to every event

Listener = Callable[[Dict[str, Any]], Awaitable[None]]


class EventBus:
    """In-process publish/subscribe; a failing listener is logged and never breaks the publisher."""

    def __init__(self) -> None:
        self._listeners: Dict[str, List[Listener]] = defaultdict(list)

    def subscribe(self, name: str, listener: Listener) -> None:
        self._listeners[name].append(listener)

    def subscribe_many(self, names, listener: Listener) -> None:
        for name in names:
            self.subscribe(name, listener)

    async def publish(self, event: Dict[str, Any]) -> None:
        for listener in self._listeners.get(event["type"], []) + self._listeners.get(ALL, []):
            try:
                await listener(event)
            except Exception:          # a listener never breaks a customer's turn
                logger.exception("listener %s failed for %s",
                                 getattr(listener, "__qualname__", listener), event["type"])
