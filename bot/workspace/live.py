"""Live updates for the consoles: server-sent events that say only *what* changed.

:class:`LiveUpdates` holds this gateway's SSE subscribers and is an event-bus listener
(subscribed by the composition root); other replicas' events arrive through
``bot/gateway/scaleout.py``. The page re-reads what it may see through authorised routes.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, Optional, Set

from aiohttp import web


class LiveUpdates:
    def __init__(self) -> None:
        self.subscribers: Set[asyncio.Queue] = set()

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.subscribers.discard(queue)

    def notify(self, item: Optional[Dict[str, Any]]) -> None:
        """To every subscriber; ``None`` ends the streams (shutdown).

        A subscriber whose queue is full (a stalled tab) is dropped, never the publisher:
        its stream ends at the next keep-alive and the page reconnects and re-reads.
        """
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                self.subscribers.discard(queue)

    async def on_event(self, event: Dict[str, Any]) -> None:
        """Event-bus listener: every handoff event becomes a "change" for the consoles."""
        self.notify({"type": event["type"], "handoff": event.get("handoff_id")})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events. They say only *what* changed; the page re-reads what it may see."""
    live: LiveUpdates = request.app["live_updates"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = live.subscribe()
    try:
        await response.write(b"retry: 2000\nevent: hello\ndata: {}\n\n")
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=15)
            except asyncio.TimeoutError:
                if queue not in live.subscribers:      # dropped as too slow
                    break
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            await response.write(f"event: change\ndata: {json.dumps(item)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        live.unsubscribe(queue)
    return response
