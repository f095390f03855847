"""The durable outbox: every message sent outside a turn, retried until it is delivered.

One :class:`Outbox` per gateway process (owned by the :class:`~bot.support.handoffs.HandoffService`).
Its targets are the agent side (``telegram``, ``wecom``: deliverers registered by the
composition root) and the customers (``customer:<channel>``: the channels' senders).

* **Targets apart.** Each target has a worker of its own (:meth:`Outbox.loop`): a target
  that is slow, down or has a long backlog never delays another target's rows.
* **Order per conversation.** Rows with one ``order_key`` (a customer's conversation, a
  handoff's thread in the agents' group) go out in the order written; a row waiting for
  its retry holds back only the later rows of its own key, never another conversation's.
* **Retries per row.** A deliverer returns True (delivered), or False / raises :class:`TryLater`
  or any other error (failed):
  the row is tried again after ``KEFU_OUTBOX_BACKOFF`` seconds, doubling up to
  ``KEFU_OUTBOX_MAX_BACKOFF``, and after ``KEFU_OUTBOX_MAX_ATTEMPTS`` failures it is dead.
* **Refused for good** (:class:`Rejected`: a WeCom errcode that is not transient, a chat that
  blocked the bot): dead at once. Dead rows stay, with the reason, for agents to see and
  retry (``GET /api/agent/outbox``); an :data:`~bot.support.events.DELIVERY_FAILED` event tells the consoles.
* **Target unreachable** (:class:`Unreachable`: connection refused, timeout): the round for
  that target stops and the target is tried again with backoff, and the row is not charged
  an attempt, so an outage of any length loses and dead-letters nothing.

With several replicas a round per target runs under :class:`~bot.store.outbox.OutboxLease`.
No web framework here: deliverers come from the layers above.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional

from bot.messages import Button, OutboundMessage
from bot.settings import setting
from bot.store.outbox import OutboxStore
from bot.support import events
from bot.support.events import EventBus

logger = logging.getLogger(__name__)

CUSTOMER = "customer:"
MAX_PASSES = 50                  # passes per round over a target (each: one row per conversation)
Deliverer = Callable[[Dict[str, Any]], Awaitable[Optional[bool]]]
Sender = Callable[[str, List[OutboundMessage]], Awaitable[None]]


class Unreachable(Exception):
    """The target cannot be reached now (network, timeout, 5xx): retry later, no attempt charged."""


class Rejected(Exception):
    """The target refused this row for good (it will never take it): dead-letter it now."""


class TryLater(Exception):
    """The target refused this row for now (busy, rate-limited): an attempt, retried with backoff."""


class Wake:
    """Wakes the outbox's target workers: :meth:`set` (anything may have been written) wakes
    every one; each worker waits on its own event (:meth:`event`)."""

    def __init__(self) -> None:
        self._events: Dict[str, asyncio.Event] = {}

    def event(self, target: str) -> asyncio.Event:
        return self._events.setdefault(target, asyncio.Event())

    def set(self) -> None:
        for event in list(self._events.values()):
            event.set()


def customer_target(channel: str) -> str:
    return f"{CUSTOMER}{channel}"


def push_payload(user_id: str, messages: List[OutboundMessage]) -> Dict[str, Any]:
    """One row per push: the channel renders the batch its own way (WeChat joins it)."""
    return {"user_id": user_id, "messages": [m.as_json() for m in messages if m.text]}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Outbox:
    def __init__(self, store: OutboxStore, *, senders: Mapping[str, Sender] | None = None,
                 bus: EventBus | None = None) -> None:
        self.store = store
        # customer channel -> push(user_id, [OutboundMessage]); a channel without a sender
        # (the web chat, whose mailbox is the transcript) gets no outbox rows
        self.senders: Mapping[str, Sender] = senders if senders is not None else {}
        self.bus = bus or EventBus()
        # agent-side target -> deliver(row) -> delivered?  (filled by the composition root)
        self.deliverers: Dict[str, Deliverer] = {}
        self.wake = Wake()
        self.max_attempts = max(1, setting("KEFU_OUTBOX_MAX_ATTEMPTS"))
        self.first_backoff = setting("KEFU_OUTBOX_BACKOFF")
        self.max_backoff = setting("KEFU_OUTBOX_MAX_BACKOFF")

    async def _db(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    # --- writing -------------------------------------------------------------------------

    async def enqueue(self, target: str, payload: Dict[str, Any], handoff_id: int | None = None,
                      key: str | None = None) -> int:
        row = await self._db(self.store.enqueue, target, payload, handoff_id, key)
        self.wake.set()
        return row

    async def push(self, conversation_id: str, channel: str, user_id: str,
                   messages: List[OutboundMessage], *, handoff_id: int | None = None,
                   data: Dict[str, Any] | None = None,
                   answers: tuple[int, str] | None = None) -> Optional[List[int]]:
        """Tell a customer outside a turn: transcript lines and their outbox rows, one transaction.

        ``data`` goes on every line (e.g. the agent's name). ``answers``: (customer line,
        its state now): that line becomes ``done`` in the same transaction, or, if it is no
        longer in that state, nothing is written (None). Returns the transcript ids; the
        channel's sender delivers the rows in order.
        """
        lines = []
        for m in messages:
            extra = dict(data or {})
            if m.buttons:
                extra["buttons"] = [b.__dict__ for b in m.buttons]
            lines.append((m.author, m.text, extra or None))
        target = customer_target(channel) if self.senders.get(channel) is not None else None
        payloads = [push_payload(user_id, messages)] if any(m.text for m in messages) else []
        ids = await self._db(self.store.record_and_enqueue, conversation_id, channel, lines,
                             target, payloads, handoff_id=handoff_id, answers=answers)
        if target is not None and ids is not None:
            self.wake.set()
        return ids

    async def send_later(self, conversation_id: str, channel: str, user_id: str,
                         messages: List[OutboundMessage]) -> bool:
        """Rows only, for replies the transcript holds already (a turn's answer a channel
        could not give in its reply window). False: the channel has no sender."""
        if self.senders.get(channel) is None:
            return False
        if any(m.text for m in messages):
            await self._db(self.store.enqueue, customer_target(channel),
                           push_payload(user_id, messages), None, str(conversation_id))
            self.wake.set()
        return True

    # --- delivering ----------------------------------------------------------------------

    def targets(self) -> Dict[str, Deliverer]:
        found = dict(self.deliverers)
        for channel, sender in list(self.senders.items()):
            if sender is not None:
                found.setdefault(customer_target(channel), self._customer_deliverer(sender))
        return found

    @staticmethod
    def _customer_deliverer(sender: Sender) -> Deliverer:
        async def deliver(row: Dict[str, Any]) -> bool:
            p = row["payload"]
            messages = [OutboundMessage(str(m.get("text", "")),
                                        [Button(str(b.get("title", "")), str(b.get("payload", "")))
                                         for b in m.get("buttons") or []],
                                        author=str(m.get("author", "notice")))
                        for m in p.get("messages") or []]
            if messages:
                await sender(p["user_id"], messages)
            return True
        return deliver

    async def loop(self) -> None:
        """Deliver every target's rows (run by the supervisor): one worker per target, so a
        target that is slow, down or far behind (thousands of lines for the agents' group)
        never holds back another target's rows (a WeCom alert, a customer's push)."""
        workers: Dict[str, asyncio.Task] = {}
        try:
            while True:
                for target, deliver in self.targets().items():
                    task = workers.get(target)
                    if task is None or task.done():
                        if task is not None and not task.cancelled() and task.exception():
                            logger.error("outbox worker for %s stopped: %r; restarted",
                                         target, task.exception())
                        workers[target] = asyncio.create_task(self._worker(target, deliver),
                                                              name=f"outbox:{target}")
                await asyncio.sleep(1.0)       # targets added later (a channel set up) get one
        finally:
            for task in workers.values():
                task.cancel()
            await asyncio.gather(*workers.values(), return_exceptions=True)

    async def _worker(self, target: str, deliver: Deliverer) -> None:
        """One target's rounds: on every wake-up (a row written, an event) or second."""
        wake = self.wake.event(target)
        backoff: Dict[str, tuple] = {}
        while True:
            wake.clear()                    # before the round: a row written during it wakes the next
            await self._target_round(target, deliver, backoff)
            try:
                await asyncio.wait_for(wake.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass

    async def round(self, backoff: Dict[str, tuple] | None = None) -> None:
        """One pass over every target, one after the other (tests, a single shot)."""
        backoff = {} if backoff is None else backoff
        for target, deliver in self.targets().items():
            await self._target_round(target, deliver, backoff)

    async def _target_round(self, target: str, deliver: Deliverer, backoff: Dict[str, tuple]) -> None:
        """The target's due rows, under its lease; an unreachable target waits 1 s, doubling to 30 s."""
        loop = asyncio.get_running_loop()
        until, delay = backoff.get(target, (0.0, 0.0))
        if until > loop.time():
            return
        lease = self.store.lease(target)
        try:
            if not await self._db(lease.acquire):
                return                  # another replica is delivering this target
        except Exception:
            logger.exception("outbox lease for %s unavailable", target)
            return
        try:
            reachable = await self._deliver_target(target, deliver)
        except Exception:               # the database, briefly: try again next round
            logger.exception("outbox round for %s failed", target)
            reachable = False
        finally:
            await self._db(lease.release)
        if reachable:
            backoff.pop(target, None)
        else:
            delay = min(max(delay * 2, 1.0), 30.0)
            backoff[target] = (loop.time() + delay, delay)

    def _retry_delay(self, attempts: int) -> float:
        return min(self.first_backoff * 2 ** max(attempts - 1, 0), self.max_backoff)

    async def _deliver_target(self, target: str, deliver: Deliverer) -> bool:
        """Send the target's due rows, in order per conversation; False when it is unreachable.

        Each pass tries the first waiting row of every conversation; a row that is delivered
        or given up lets the next row of its conversation go in the next pass, a row that
        failed holds its own conversation only.
        """
        for _ in range(MAX_PASSES):
            progress = False
            for row in await self._db(self.store.heads, target):
                due = row["next_attempt_at"]
                if due is not None and due > _now():
                    continue                         # backing off: its conversation waits
                try:
                    ok = await deliver(row)
                    error = "not delivered"
                except Unreachable as exc:
                    logger.info("outbox target %s unreachable, will retry: %s", target, exc)
                    await self._db(self.store.failed, row["id"], f"unreachable: {exc}", charge=False)
                    return False
                except Rejected as exc:
                    await self._give_up(target, row, f"rejected: {exc}")
                    progress = True
                    continue
                except TryLater as exc:
                    logger.info("outbox target %s refused a row for now: %s", target, exc)
                    ok, error = False, f"try later: {exc}"
                except Exception as exc:
                    logger.exception("delivery to %s failed", target)
                    ok, error = False, f"{type(exc).__name__}: {exc}"
                if ok is False:
                    attempts = await self._db(self.store.failed, row["id"], error,
                                              retry_at=_now() + dt.timedelta(
                                                  seconds=self._retry_delay(row["attempts"] + 1)))
                    if attempts >= self.max_attempts:
                        await self._give_up(target, row, f"{attempts} attempts: {error}")
                        progress = True
                    continue
                await self._db(self.store.delivered, row["id"],
                               forget_payload=target.startswith(CUSTOMER))
                progress = True
            if not progress:
                break
        return True

    async def _give_up(self, target: str, row: Dict[str, Any], reason: str) -> None:
        logger.warning("outbox row %s for %s dead-lettered: %s", row["id"], target, reason)
        await self._db(self.store.dead, row["id"], reason)
        await self.bus.publish({"type": events.DELIVERY_FAILED, "handoff_id": row["handoff_id"],
                                "target": target, "outbox_id": row["id"]})

    async def retry(self, outbox_id: int) -> Optional[Dict[str, Any]]:
        """A dead row back in line (an agent's request); None when it is not dead."""
        row = await self._db(self.store.requeue, outbox_id)
        if row is not None:
            self.wake.set()
        return row
