"""Return calls (回访) and the bot's satisfaction question, as the gateway runs them.

* an agent records a try (:meth:`AfterCare.record`): reached with a 1–5 score, refused, or
  not reached (tried again later, unreachable after the profile's ``max_attempts``); the
  call that finishes closes the ticket (:mod:`bot.store.return_calls`);
* a ticket resolved from the console: where the customer's channel can be reached outside a
  turn (the web chat's mailbox, or a channel with a sender), the bot asks for a 1–5 score;
  a handoff's closing notice asks too. Asked and answered are stored with source ``bot``
  (the answer arrives through the rating action), the 回访's with source ``return_call``;
* a line the bot's fallback answered is kept (masked) for the dashboard's "not understood".

No web framework here.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Mapping, Optional

from bot.messages import ConversationId, OutboundMessage
from bot.store.agents import AgentView
from bot.store.return_calls import ReturnCallStore
from bot.store.satisfaction import SatisfactionStore
from bot.store.tickets import TicketStore
from bot.support import events
from bot.support.events import EventBus

logger = logging.getLogger(__name__)

SURVEY = "您的工单 {number}（{kind}）已处理完成。请为本次服务打分（1-5分，5分最满意），直接回复数字即可～"
MAILBOX_CHANNELS = ("web",)      # the web chat reads pushed lines from its mailbox


class AfterCare:
    def __init__(self, bus: EventBus, *, tickets: TicketStore, outbox,
                 senders: Mapping[str, Any]) -> None:
        self.bus, self.tickets, self.outbox, self.senders = bus, tickets, outbox, senders
        self.calls = ReturnCallStore(tickets.engine)
        self.satisfaction = SatisfactionStore(tickets.engine)

    async def record(self, call_id: int, agent: AgentView, *, outcome: str,
                     score: Optional[int] = None, comment: Optional[str] = None) -> Dict[str, Any]:
        call = await asyncio.to_thread(self.calls.record, call_id, outcome=outcome, score=score,
                                       comment=comment, agent_id=agent.id, actor=agent.name)
        await self.bus.publish({"type": events.RETURN_CALL_RECORDED, "return_call": call["id"],
                                "ticket": call["ticket"], "status": call["status"],
                                "agent": agent.as_json()})
        if call["ticket_status"] == "closed" and call["status"] in ("done", "unreachable"):
            await self.bus.publish({"type": events.TICKET_STATUS, "ticket": call["ticket"],
                                    "from": "resolved", "to": "closed"})
        return call

    def reachable(self, channel: str) -> bool:
        return channel in MAILBOX_CHANNELS or self.senders.get(channel) is not None

    async def on_ticket_status(self, event: Dict[str, Any]) -> None:
        """Bus listener: a ticket just resolved from the console gets the bot's question."""
        if event.get("to") != "resolved" or event.get("from") == "resolved":
            return
        ticket = await asyncio.to_thread(self.tickets.find, event["ticket"])
        if ticket is None or not self.reachable(ticket.channel) or ":" not in ticket.customer_id:
            return
        _, user_id = ConversationId(ticket.customer_id).parts()
        text = SURVEY.format(number=ticket.number, kind=ticket.kind_label)
        await self.outbox.push(ticket.customer_id, ticket.channel, user_id,
                               [OutboundMessage(text, author="notice")])
        await asyncio.to_thread(self.satisfaction.asked, conversation_id=ticket.customer_id,
                                ticket_number=ticket.number)

    async def on_handoff_closed(self, event: Dict[str, Any]) -> None:
        """Bus listener: the closing notice of a handoff asked for a score."""
        handoff = event.get("handoff") or {}
        if handoff.get("conversation_id"):
            await asyncio.to_thread(self.satisfaction.asked,
                                    conversation_id=handoff["conversation_id"],
                                    ticket_number=handoff.get("ticket_number"),
                                    handoff_id=handoff.get("id"), agent_id=handoff.get("agent_id"))

    async def on_bot_fallback(self, event: Dict[str, Any]) -> None:
        message, payload = event.get("message"), event.get("payload") or {}
        if message is None:
            return
        confidence = payload.get("confidence")
        await asyncio.to_thread(self.satisfaction.record_miss, message.conversation_id,
                                message.text,
                                float(confidence) if isinstance(confidence, (int, float)) else None)

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(events.TICKET_STATUS, self.on_ticket_status)
        bus.subscribe(events.CLOSED, self.on_handoff_closed)
        bus.subscribe(events.BOT_FALLBACK, self.on_bot_fallback)
