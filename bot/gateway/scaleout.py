"""Gateway replicas sharing one Redis: turn order across replicas, and live events.

Enabled by ``KEFU_REDIS_URL`` (the scaled-out topology in ``deploy/``); without it the
gateway keeps its in-process locks and nothing here runs.

* **Turn order across gateways.** A customer's messages may reach different gateway
  replicas (a load balancer, a reconnecting browser). :class:`RedisTurnLocks` replaces the
  router's per-process ``asyncio.Lock`` map with a per-conversation FIFO ticket lock in
  Redis. The ticket is the client's own sequence number when the web chat sends one
  (``"seq": 1, 2, 3 …`` in ``POST /api/chat``: the order the customer *sent*, which two
  independent network paths cannot otherwise tell), else one atomic ``INCR`` the moment
  the message arrives. A turn runs when every earlier ticket of its conversation is done,
  on whichever replica; a gap (a sequence number that never arrives) is skipped after
  ``gap_after`` seconds, a replica that died mid-turn after ``stale_after``.
  So Rasa never sees two turns of one conversation at once, and they reach it in arrival
  order. (Rasa Open Source's own RedisLockStore issues tickets with a non-atomic
  read-modify-write, rasa#9213; see README "Scaling out".)
* **Live events.** Console updates (the event bus's handoff events) are fanned out to the SSE
  subscribers of every replica over Redis pub/sub, and the assistant's structured events
  (ticket created, handoff) are published on ``kefu:events`` for anything that listens.
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
import uuid
from typing import Any, Dict

from bot.settings import setting
from bot.support import events
from bot.web import parse_json

logger = logging.getLogger(__name__)

LIVE_CHANNEL = "kefu:live"          # console updates, every replica's SSE subscribers
EVENTS_CHANNEL = "kefu:events"      # the assistant's kefu events (ticket_created, handoff)
KEY_TTL = 24 * 3600
# The client's sequence number of the message being handled (set by the web chat middleware).
CLIENT_SEQ: contextvars.ContextVar[int | None] = contextvars.ContextVar("kefu_client_seq", default=None)

# Release ticket ARGV[1]: served := ticket, then past any later tickets whose senders gave
# up while waiting (cancelled requests), so the chain never stalls on them.
_RELEASE = """
local s = tonumber(ARGV[1])
while redis.call('SREM', KEYS[2], s + 1) == 1 do s = s + 1 end
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if s > cur then redis.call('SET', KEYS[1], s, 'EX', ARGV[2]) end
return s
"""
# Give up ticket ARGV[1] while waiting: if it is next, release it; else mark it skipped.
_ABANDON = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur >= tonumber(ARGV[1]) - 1 then return -1 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 0
"""
# A stuck holder (its replica died mid-turn): move past it after ``stale_after``.
_FORCE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) - 1 then redis.call('SET', KEYS[1], tonumber(ARGV[1]) - 1, 'EX', ARGV[2]) end
return 1
"""


class _TurnLock:
    def __init__(self, owner: "RedisTurnLocks", conversation: str) -> None:
        self.owner, self.conversation = owner, conversation
        prefix = f"{owner.prefix}turn:{conversation}"
        self.issued, self.served, self.skipped = f"{prefix}:issued", f"{prefix}:served", f"{prefix}:skipped"
        self.active = f"{prefix}:active"
        self.ticket = 0

    async def __aenter__(self) -> "_TurnLock":
        redis = self.owner.redis
        seq = CLIENT_SEQ.get()
        if seq is not None:
            self.ticket = seq
        else:
            pipe = redis.pipeline(transaction=True)
            pipe.incr(self.issued)
            pipe.expire(self.issued, KEY_TTL)
            self.ticket = (await pipe.execute())[0]
        delay, last_seen, since = 0.002, None, time.monotonic()
        try:
            while True:
                served = int(await redis.get(self.served) or 0)
                if served >= self.ticket - 1:
                    await redis.set(self.active, self.ticket, ex=int(self.owner.stale_after) + 5)
                    return self
                if served != last_seen:
                    last_seen, since = served, time.monotonic()
                else:
                    waited = time.monotonic() - since
                    running = int(await redis.get(self.active) or 0) == served + 1
                    if waited > (self.owner.stale_after if running else self.owner.gap_after):
                        logger.warning("turn %d of a conversation %s for %.0fs: moving on", served + 1,
                                       "stuck" if running else "never arrived", waited)
                        await self.owner._force(keys=[self.served], args=[self.ticket, KEY_TTL])
                        continue
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.02)
        except BaseException:
            if await self.owner._abandon(keys=[self.served, self.skipped], args=[self.ticket, KEY_TTL]) == -1:
                await self._release()
            raise

    async def _release(self) -> None:
        await self.owner._release(keys=[self.served, self.skipped], args=[self.ticket, KEY_TTL])

    async def __aexit__(self, *exc) -> None:
        await asyncio.shield(self._release())


class RedisTurnLocks:
    """Drop-in for the router's ``locks`` map: ``async with locks[conversation]: ...``."""

    def __init__(self, redis, *, prefix: str = "kefu:", stale_after: float = 45.0,
                 gap_after: float = 5.0) -> None:
        self.redis, self.prefix = redis, prefix
        self.stale_after, self.gap_after = stale_after, gap_after
        self._release = redis.register_script(_RELEASE)
        self._abandon = redis.register_script(_ABANDON)
        self._force = redis.register_script(_FORCE)

    def __getitem__(self, conversation: str) -> _TurnLock:
        return _TurnLock(self, conversation)


class LiveEvents:
    """Redis pub/sub between gateway replicas (console SSE updates, kefu events)."""

    def __init__(self, redis, prefix: str = "kefu:") -> None:
        self.redis = redis
        self.origin = uuid.uuid4().hex
        self.live, self.events = prefix + "live", prefix + "events"

    async def publish(self, channel: str, payload: Dict[str, Any]) -> None:
        try:
            await self.redis.publish(channel, json.dumps({"origin": self.origin, **payload},
                                                         ensure_ascii=False, default=str))
        except Exception:      # live updates are best effort; SQL holds the truth
            logger.warning("could not publish a live event", exc_info=True)

    async def listen(self, live, handoffs) -> None:
        """Deliver other replicas' console updates to this replica's consoles (supervised:
        a lost subscription raises and the supervisor reconnects with backoff)."""
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.live)
            async for item in pubsub.listen():
                if item.get("type") != "message":
                    continue
                event = json.loads(item["data"])
                if event.pop("origin", None) == self.origin:
                    continue
                live.notify({"type": event.get("type"), "handoff": event.get("handoff_id")})
                handoffs.wake.set()
        finally:
            await pubsub.close()


def _client_seq_middleware():
    from aiohttp import web

    @web.middleware
    async def client_seq(request, handler):
        """Take the web chat's ``seq`` (the customer's send order) for the turn lock."""
        if request.method == "POST" and request.path == "/api/chat":
            try:
                seq = parse_json(await request.read()).get("seq")
            except (ValueError, AttributeError):      # BadJson: the route answers 400 itself
                seq = None
            if isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq < 2**62:
                token = CLIENT_SEQ.set(seq)
                try:
                    return await handler(request)
                finally:
                    CLIENT_SEQ.reset(token)
        return await handler(request)

    return client_seq


def setup(app, *, bus, live, handoffs, supervisor) -> None:
    """With ``KEFU_REDIS_URL``: Redis turn locks, and the bus's events shared with other replicas."""
    url = setting("KEFU_REDIS_URL")
    if not url:
        return
    app.middlewares.append(_client_seq_middleware())
    import redis.asyncio as aioredis

    prefix = setting("KEFU_REDIS_PREFIX")
    client = aioredis.from_url(url, decode_responses=True)
    router = app["router"]
    router.locks = RedisTurnLocks(client, prefix=prefix,
                                  stale_after=app["settings"].rasa_timeout + 15)
    live_events = LiveEvents(client, prefix)
    app["live_events"] = live_events

    async def share_handoff_event(event: Dict[str, Any]) -> None:
        await live_events.publish(live_events.live, {"type": event.get("type"),
                                                     "handoff_id": event.get("handoff_id")})

    async def share_action_event(event: Dict[str, Any]) -> None:
        await live_events.publish(live_events.events, {
            "conversation": event["message"].conversation_id, **event["payload"]})

    bus.subscribe_many(events.HANDOFF_EVENTS + (events.SLA_CLOCK_MISSED,), share_handoff_event)
    bus.subscribe_many(events.ACTION_EVENTS, share_action_event)

    async def start(_app) -> None:
        supervisor.start("live-events", lambda: live_events.listen(live, handoffs))

    async def stop(_app) -> None:
        await client.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
