"""The handoff lifecycle as the gateway runs it: opening, relaying, claiming, replying, closing.

One :class:`HandoffService` per gateway process. The console and the Telegram agents'
group both call it, so a conversation claimed in one place is claimed everywhere (the row
in SQL decides). Every step is published on the :class:`~bot.support.events.EventBus`
(consoles' live updates, the agents' group, WeCom alerts and other replicas listen there,
subscribed by the composition root); everything sent outside a turn (to the agent side,
and to customers on channels that push) goes through the durable outbox
(:mod:`bot.support.outbox`), so a side that is down gets it when it returns.
No web framework here: customers are reached through the channel senders it is given.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from bot.messages import InboundMessage, OutboundMessage
from bot.profile import business as profile
from bot.profile import pack
from bot.store.agents import AgentStore, AgentView
from bot.store.handoffs import HandoffError, HandoffStore, HandoffView
from bot.store.tickets import TicketStore
from bot.store.transcripts import TranscriptStore
from bot.support import events
from bot.support.events import EventBus
from bot.support.outbox import Deliverer, Outbox, Sender

logger = logging.getLogger(__name__)

# What the customer is told while a person is on the way comes from the pack's messages.yml
# (handoff_queued, handoff_claimed, …; checked by make validate: bot/business/wording.py).
CANCEL_WORDS = re.compile(r"不等了|不想等|等不了|不用等|取消(排队|转人工|人工)|不要人工|不转了|不用转|"
                          # Cantonese (唔等喇, 唔使等, 唔想等)
                          r"唔等|唔使等|唔駛等|唔想等|唔要人工")


class HandoffService:
    def __init__(self, *, transcripts: TranscriptStore | None = None,
                 senders: Mapping[str, Sender] | None = None, bus: EventBus | None = None,
                 store: HandoffStore | None = None) -> None:
        self.store = store or HandoffStore()
        self.agents = AgentStore(self.store.engine)
        self.tickets = TicketStore(self.store.engine)
        self.transcripts = transcripts or TranscriptStore(self.store.engine)
        self.senders: Mapping[str, Sender] = senders if senders is not None else {}
        self.bus = bus or EventBus()
        # every message sent outside a turn (customers, the agents' group, WeCom) goes here
        self.outbox = Outbox(self.store.outbox, senders=self.senders, bus=self.bus)
        # agent-side target -> deliver(row) -> delivered?  (filled by the composition root)
        self.deliverers: Dict[str, Deliverer] = self.outbox.deliverers
        self.wake = self.outbox.wake
        # queued handoff id -> (the position its customer was last told, when it was last
        # pushed): bot/support/waiting.py pushes changes, at most once a minute per customer
        self.told_positions: Dict[int, Tuple[int, float]] = {}
        self.clock = time.monotonic

    async def _db(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    # --- live updates --------------------------------------------------------------------

    async def publish(self, event: Dict[str, Any]) -> None:
        """On the bus (consoles, agents' group, alerts, other replicas), then wake the outbox."""
        await self.bus.publish(event)
        self.wake.set()

    async def enqueue(self, target: str, payload: Dict[str, Any], handoff_id: int | None = None,
                      key: str | None = None) -> int:
        """An agent-side row; rows of one handoff go out in order (key ``handoff:<id>``)."""
        if key is None and handoff_id is not None:
            key = f"handoff:{handoff_id}"
        return await self.outbox.enqueue(target, payload, handoff_id, key)

    # --- the customer side ---------------------------------------------------------------

    async def tell_customer(self, handoff: HandoffView, text: str, *, author: str = "notice",
                            agent: AgentView | None = None) -> int:
        """Written to the transcript (the web chat's mailbox) and, for channels that push, to the
        durable outbox in the same transaction: delivered in order, retried, never lost."""
        lines = await self.outbox.push(
            handoff.conversation_id, handoff.channel, handoff.user_id,
            [OutboundMessage(text, author=author)], handoff_id=handoff.id,
            data={"agent": agent.display_name} if agent else None)
        return lines[0]

    async def on_kefu_event(self, message: InboundMessage, payload: Dict[str, Any]) -> None:
        """Router event handler: an action handed off, or filed a high-priority complaint."""
        event = payload.get("event")
        wanted = (event == events.HANDOFF_REQUESTED and payload.get("in_hours")) or (
            event == events.TICKET_CREATED and payload.get("handoff")
            and profile.within_service_hours())
        if not wanted:
            return
        reason = payload.get("reason") or ("complaint_high" if event == events.TICKET_CREATED else "handoff")
        await self.open(message.conversation_id, message.channel, message.user_id,
                        ticket_number=payload.get("ticket"), reason=reason,
                        priority=payload.get("priority") or "normal")

    async def on_action_event(self, event: Dict[str, Any]) -> None:
        """Bus listener for the actions' events (the gateway publishes them per turn)."""
        await self.on_kefu_event(event["message"], event["payload"])

    async def open(self, conversation_id: str, channel: str, user_id: str, *,
                   ticket_number: str | None, reason: str, priority: str = "normal",
                   agent: AgentView | None = None) -> HandoffView:
        handoff, created = await self._db(
            self.store.open, conversation_id=conversation_id, channel=channel, user_id=user_id,
            ticket_number=ticket_number, reason=reason, priority=priority,
            agent_id=agent.id if agent else None)
        if not created:
            return handoff
        if agent is None:
            position = await self._db(self.store.queue_position, handoff.id)
            await self.tell_customer(handoff, pack.say("handoff_queued", position=position))
            self.told_positions[handoff.id] = (position, self.clock())
        else:
            handoff = await self.record(handoff, agent)
            await self.tell_customer(handoff, pack.say("handoff_claimed", agent=agent.display_name))
        await self.publish({"type": events.HANDOFF_NEW, "handoff_id": handoff.id,
                            "handoff": handoff.as_json(), "agent": agent.as_json() if agent else None})
        return handoff

    async def gate(self, message: InboundMessage) -> Optional[List[OutboundMessage]]:
        """Router gate: while a person has the conversation, the bot stays out of it."""
        handoff = await self._db(self.store.active, message.conversation_id)
        if handoff is None:
            return None
        if handoff.status == "queued" and CANCEL_WORDS.search(message.text or ""):
            return await self.cancel(handoff, message)
        await self.publish({"type": events.CUSTOMER_MESSAGE, "handoff_id": handoff.id,
                            "handoff": handoff.as_json(), "text": message.text})
        if handoff.status == "queued":
            position = await self._db(self.store.queue_position, handoff.id)
            _, pushed = self.told_positions.get(handoff.id, (0, float("-inf")))
            self.told_positions[handoff.id] = (position, pushed)    # told in the turn's reply
            record = pack.say("handoff_waiting_record", number=handoff.ticket_number) if handoff.ticket_number else ""
            return [OutboundMessage(pack.say("handoff_waiting", position=position, record=record), author="system")]
        return []

    async def cancel(self, handoff: HandoffView, message: InboundMessage) -> List[OutboundMessage]:
        """The customer stops waiting: the handoff closes (no rating asked), the bot is back."""
        closed = await self._db(self.store.close, handoff.id)
        await self._db(self.store.rated, handoff.conversation_id)
        await self.publish({"type": events.CLOSED, "handoff_id": closed.id,
                            "handoff": closed.as_json(), "agent": None, "via": "customer"})
        return [OutboundMessage(pack.say("handoff_cancelled"), author="system")]

    # --- the agent side ------------------------------------------------------------------

    async def claim(self, handoff_id: int, agent: AgentView) -> HandoffView:
        before = await self._db(self.store.get, handoff_id)
        handoff = await self._db(self.store.claim, handoff_id, agent.id)
        if before and before.status == "queued":
            handoff = await self.record(handoff, agent)
            await self.tell_customer(handoff, pack.say("handoff_claimed", agent=agent.display_name))
            await self.publish({"type": events.CLAIMED, "handoff_id": handoff.id,
                                "handoff": handoff.as_json(), "agent": agent.as_json()})
        return handoff

    async def record(self, handoff: HandoffView, agent: AgentView) -> HandoffView:
        """The ticket of a person's conversation, opened when an agent takes it: a customer
        who only queued (and cancelled) has none; this one holds the agent's notes, its
        first-response clock and, after the close, the customer's rating. A handoff that
        came with its ticket (a high-priority complaint) keeps that one."""
        if handoff.ticket_number:
            return handoff
        ticket, _ = await self._db(
            self.tickets.open_ticket, kind="callback", category=pack.say("handoff_category"),
            customer_id=handoff.conversation_id, channel=handoff.channel,
            idempotency_key=f"handoff:{handoff.id}",
            description=f"人工会话（{handoff.reason}），客服「{agent.display_name}」接入",
            priority=handoff.priority if handoff.priority in ("high", "normal") else "normal",
            details={"reason": handoff.reason, "handoff": handoff.id, "in_hours": True})
        await self._db(self.tickets.assign, ticket.number, agent.id, actor=agent.name,
                       agent_name=agent.display_name)
        return await self._db(self.store.attach_ticket, handoff.id, ticket.number)

    async def transfer(self, handoff_id: int, agent: AgentView, to_agent_id: int) -> HandoffView:
        handoff = await self._db(self.store.transfer, handoff_id, to_agent_id)
        await self.tell_customer(handoff, pack.say("handoff_transferred", agent=handoff.agent_name))
        await self.publish({"type": events.TRANSFERRED, "handoff_id": handoff.id,
                            "handoff": handoff.as_json(), "agent": agent.as_json()})
        return handoff

    async def reply(self, handoff_id: int, agent: AgentView, text: str, *,
                    via: str = "console") -> HandoffView:
        handoff = await self._db(self.store.get, handoff_id)
        if handoff is None or handoff.status != "claimed" or handoff.agent_id != agent.id:
            raise HandoffError("only the agent holding the conversation can reply")
        await self.tell_customer(handoff, text, author="agent", agent=agent)
        await self.publish({"type": events.AGENT_REPLY, "handoff_id": handoff.id,
                            "handoff": handoff.as_json(), "agent": agent.as_json(),
                            "text": text, "via": via})
        return handoff

    async def close(self, handoff_id: int, agent: AgentView, *, via: str = "console") -> HandoffView:
        handoff = await self._db(self.store.get, handoff_id)
        if handoff is None or handoff.status not in ("queued", "claimed"):
            raise HandoffError("the conversation is not open")
        if handoff.agent_id != agent.id and not agent.is_admin:
            raise HandoffError("only the agent holding the conversation can close it")
        handoff = await self._db(self.store.close, handoff_id)
        if handoff.ticket_number:
            ticket = await self._db(self.tickets.find, handoff.ticket_number)
            if ticket and ticket.status in ("new", "acknowledged", "in_progress"):
                await self._db(self.tickets.change_status, handoff.ticket_number, "resolved",
                               actor=agent.name, note="人工会话结束")
        await self.tell_customer(handoff, pack.say("handoff_closed"))
        await self.publish({"type": events.CLOSED, "handoff_id": handoff.id,
                            "handoff": handoff.as_json(), "agent": agent.as_json(), "via": via})
        return handoff

    # --- background: the outbox (run by the gateway's supervisor; SLA: bot/support/sla_clocks.py)

    async def outbox_loop(self) -> None:
        """Deliver the outbox (bot/support/outbox.py): customers, the agents' group, WeCom."""
        await self.outbox.loop()

    async def outbox_round(self, backoff: Dict[str, Any] | None = None) -> None:
        await self.outbox.round(backoff)
