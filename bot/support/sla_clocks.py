"""SLA clocks as the service team lives them: the one SLA loop, breaches, the one escalation.

Each ticket has a first-response and a resolution clock (rows and their state machine:
:mod:`bot.store.sla_clocks`), counted in the profile's service hours and paused while the
ticket waits on the customer. Here:

* :meth:`SlaClocks.check_once` (the gateway's supervised ``sla-clocks`` loop, the only SLA
  loop) marks every running clock past due ``missed`` once and publishes one
  :data:`~bot.support.events.SLA_CLOCK_MISSED` per breach: WeCom's robot gets one alert,
  the agents' group one line, the consoles a live update. A ticket's first breach also
  escalates it (priority up, once) and says so in that same event (``escalated``: the
  alert asks the lead to take it). A first response already given stops its clock, so it
  never breaches afterwards;
* bus listeners: an agent's reply in a handoff stops its ticket's first-response clock (and
  stamps the handoff's first reply for the reports); a customer writing to a ticket that
  waits on them resumes it (status back to in progress, clocks running again).

No web framework here.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List

from sqlalchemy import select

from bot.profile import business as profile
from bot.store.engine import get_engine, retrying
from bot.store.schema import Ticket
from bot.store.sla_clocks import SlaClockStore
from bot.store.tickets import TicketError, TicketStore
from bot.support import events
from bot.support.events import EventBus

logger = logging.getLogger(__name__)


class SlaClocks:
    def __init__(self, bus: EventBus, *, engine=None) -> None:
        self.bus = bus
        self.engine = engine or get_engine()
        self.store = SlaClockStore(self.engine)
        self.tickets = TicketStore(self.engine)

    async def check_once(self) -> List[Dict[str, Any]]:
        missed = await asyncio.to_thread(self.store.mark_missed, profile.now())
        for item in missed:             # one event per breach, escalated or not: one alert
            await self.bus.publish({"type": events.SLA_CLOCK_MISSED, **item})
        return missed

    async def on_agent_reply(self, event: Dict[str, Any]) -> None:
        """Bus listener (AGENT_REPLY): the first human reply answers the ticket."""
        handoff = event.get("handoff") or {}
        at = profile.now()
        if handoff.get("id"):
            await asyncio.to_thread(self.store.set_first_reply, handoff["id"], at)
        if handoff.get("ticket_number"):
            await asyncio.to_thread(self.store.responded, handoff["ticket_number"], at)

    async def on_customer_message(self, event: Dict[str, Any]) -> None:
        """Bus listener (CUSTOMER_MESSAGE): the customer answered a ticket waiting on them."""
        conversation = (event.get("handoff") or {}).get("conversation_id")
        if conversation:
            await self.resume_waiting(conversation)

    async def resume_waiting(self, conversation_id: str) -> List[str]:
        def waiting(session):
            return list(session.scalars(select(Ticket.number).where(
                Ticket.customer_id == conversation_id, Ticket.status == "waiting")))
        numbers = await asyncio.to_thread(retrying, waiting, engine=self.engine, write=False)
        for number in numbers:
            try:
                await asyncio.to_thread(self.tickets.change_status, number, "in_progress",
                                        actor="customer", note="客户已回复")
            except TicketError:
                continue
            await self.bus.publish({"type": events.TICKET_STATUS, "ticket": number,
                                    "from": "waiting", "to": "in_progress"})
        return numbers

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(events.AGENT_REPLY, self.on_agent_reply)
        bus.subscribe(events.CUSTOMER_MESSAGE, self.on_customer_message)
