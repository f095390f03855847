"""Customers waiting for a person (issue 14): told when their place in the queue changes, and
not left queued when the service team goes home.

:class:`QueueWatcher` runs in the gateway's supervisor (``supervisor.every``, wired in
bot/gateway/app.py) and on the bus events that move the queue (a handoff claimed or closed,
a customer who stopped waiting). Everything it says goes through
:meth:`HandoffService.tell_customer`: the transcript (the web chat reads it) and the durable
outbox for channels that push.

- **Position updates**: a queued customer whose position differs from the one last told is
  told the new one, at most once per :data:`PUSH_EVERY` seconds per customer (a throttled
  change goes out at the first round after the minute is over). What was told lives in the
  process (``HandoffService.told_positions``); after a restart the current position counts
  as told, so a restart never sends a burst of updates.
- **Shift end**: once service hours are over, every handoff that was queued when they ended
  gets a callback ticket (kind ``callback``, due from the next opening, like an out-of-hours
  request for a person), its customer is told the ticket number and when to expect the call,
  and the handoff is closed without a rating request. Handoffs opened after closing time
  (an agent's own, a test's) are left alone.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Dict, List

from bot.profile import business as profile
from bot.profile import pack
from bot.store.handoffs import HandoffError, HandoffView
from bot.support import events

logger = logging.getLogger(__name__)

PUSH_EVERY = 60.0           # seconds: at most one position update per customer in this time
ROUND_EVERY = 15.0          # seconds between the watcher's rounds (app.py)
# the position update and the shift-end notice are the pack's (queue_position, shift_end_callback)


def _local(value: dt.datetime) -> str:
    local = value.astimezone(profile.shop_tz())
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def last_closing(now: dt.datetime) -> dt.datetime:
    """The most recent moment (at or before ``now``) the service team went off duty."""
    _, closing = profile.service_window()
    local = now.astimezone(profile.shop_tz())
    moment = local.replace(hour=closing.hour, minute=closing.minute, second=0, microsecond=0)
    if moment > local:
        moment -= dt.timedelta(days=1)
    return moment


class QueueWatcher:
    def __init__(self, handoffs) -> None:
        self.handoffs = handoffs           # bot.support.handoffs.HandoffService

    async def _db(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def run_once(self) -> Dict[str, int]:
        """One round: the shift's end first (nobody is told a position and then closed)."""
        closed = await self.shift_end_once()
        pushed = await self.positions_once()
        return {"closed": closed, "pushed": pushed}

    async def on_queue_event(self, event: Dict[str, Any]) -> None:
        """Bus listener (claimed / closed): the customers behind it have moved up."""
        await self.positions_once()

    # --- position updates -------------------------------------------------------------------

    async def positions_once(self) -> int:
        service = self.handoffs
        queued: List[HandoffView] = await self._db(service.store.queued)
        told = service.told_positions
        now, pushed = service.clock(), 0
        for gone in set(told) - {h.id for h in queued}:
            told.pop(gone, None)
        for position, handoff in enumerate(queued, start=1):
            if handoff.id not in told:          # not told by this process: counts as told
                told[handoff.id] = (position, float("-inf"))
                continue
            last, at = told[handoff.id]
            if last == position or now - at < PUSH_EVERY:
                continue
            await service.tell_customer(handoff, pack.say("queue_position", position=position))
            told[handoff.id] = (position, now)
            pushed += 1
        return pushed

    # --- the end of service hours -----------------------------------------------------------

    async def shift_end_once(self) -> int:
        now = profile.now()
        if profile.within_service_hours(now):
            return 0
        ended = last_closing(now)
        queued: List[HandoffView] = await self._db(self.handoffs.store.queued)
        done = 0
        for handoff in queued:
            if dt.datetime.fromisoformat(handoff.created_at) >= ended:
                continue                        # opened after closing time: not this shift's
            if await self.call_back(handoff):
                done += 1
        return done

    async def call_back(self, handoff: HandoffView) -> bool:
        service = self.handoffs
        try:        # first, so an agent's claim at this very moment wins
            closed = await self._db(service.store.close, handoff.id, only=("queued",))
        except HandoffError:
            return False
        await self._db(service.store.rated, handoff.conversation_id)    # no rating asked
        service.told_positions.pop(handoff.id, None)
        earlier = None
        if handoff.ticket_number:
            earlier = await self._db(service.tickets.find, handoff.ticket_number, unmasked=True)
        ticket, _ = await self._db(
            service.tickets.open_ticket, kind="callback", category=pack.say("handoff_category"),
            customer_id=handoff.conversation_id, channel=handoff.channel,
            idempotency_key=f"shift-end:{handoff.id}",
            description=f"排队等待人工客服至下班（{handoff.reason}），请回电",
            phone=earlier.phone if earlier else None,
            details={"reason": "shift_end", "handoff": handoff.id,
                     "earlier_ticket": handoff.ticket_number, "in_hours": False})
        if earlier is not None:
            await self._db(service.tickets.add_note, earlier.number,
                           f"排队至下班未接入，已转回电工单 {ticket.number}", actor="system")
        open_, close_ = profile.service_window()
        await service.tell_customer(closed, pack.say(
            "shift_end_callback", open=f"{open_:%H:%M}", close=f"{close_:%H:%M}", number=ticket.number,
            due=_local(ticket.sla_due_at)))
        await service.publish({"type": events.CLOSED, "handoff_id": closed.id,
                               "handoff": closed.as_json(), "agent": None, "via": "shift_end",
                               "ticket": ticket.number})
        logger.info("handoff %s queued at shift end: callback ticket %s", closed.id, ticket.number)
        return True
