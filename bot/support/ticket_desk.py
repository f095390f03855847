"""Agents working tickets (工单): status changes, assignment and notes, each published on the bus.

The console's ticket page calls this; listeners (live consoles, the return-call survey in
:mod:`bot.support.return_calls`) follow :data:`~bot.support.events.TICKET_STATUS` and
:data:`~bot.support.events.TICKET_ASSIGNED`. No web framework here.
"""
from __future__ import annotations

import asyncio
from typing import Optional

from bot.store.agents import AgentStore, AgentView
from bot.store.tickets import TicketError, TicketStore, TicketView
from bot.support import events
from bot.support.events import EventBus


def can_lead(agent: AgentView) -> bool:
    """Admins and team leads: every ticket, the dashboard, assigning to others."""
    return agent.role in ("admin", "lead")


class TicketDesk:
    def __init__(self, bus: EventBus, tickets: TicketStore, agents: AgentStore) -> None:
        self.bus, self.tickets, self.agents = bus, tickets, agents

    async def change_status(self, number: str, status: str, agent: AgentView,
                            note: Optional[str] = None) -> TicketView:
        before = await asyncio.to_thread(self.tickets.find, number)
        if before is None:
            raise TicketError(f"no ticket {number}")
        if not can_lead(agent) and before.assignee_id not in (None, agent.id):
            raise PermissionError("another agent's ticket")
        after = await asyncio.to_thread(self.tickets.change_status, number, status,
                                        actor=agent.name, note=note)
        await self.bus.publish({"type": events.TICKET_STATUS, "ticket": after.number,
                                "from": before.status, "to": after.status,
                                "agent": agent.as_json()})
        return after

    async def assign(self, number: str, agent_id: Optional[int], by: AgentView) -> TicketView:
        ticket = await asyncio.to_thread(self.tickets.find, number)
        if ticket is None:
            raise TicketError(f"no ticket {number}")
        if not can_lead(by):       # an agent takes a free ticket, or gives back their own
            mine_or_free = ticket.assignee_id in (None, by.id)
            if not mine_or_free or agent_id not in (None, by.id):
                raise PermissionError("agents assign only free tickets, to themselves")
        target = None
        if agent_id is not None:
            target = await asyncio.to_thread(self.agents.get, agent_id)
            if target is None:
                raise TicketError("no such agent")
        after = await asyncio.to_thread(self.tickets.assign, number, agent_id, actor=by.name,
                                        agent_name=target.display_name if target else "")
        await self.bus.publish({"type": events.TICKET_ASSIGNED, "ticket": after.number,
                                "assignee_id": agent_id, "agent": by.as_json()})
        return after

    async def note(self, number: str, text: str, agent: AgentView) -> TicketView:
        after = await asyncio.to_thread(self.tickets.add_note, number, text, actor=agent.name)
        await self.bus.publish({"type": events.TICKET_STATUS, "ticket": after.number,
                                "from": after.status, "to": after.status, "note": True})
        return after
