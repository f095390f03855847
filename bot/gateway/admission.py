"""Bounded per-gateway state: per-conversation locks that exist only while used, and the
admission limit on turns in Rasa.

* :class:`TurnLocks` is the router's ``locks`` map (``async with locks[conversation]``). An
  entry lives while a turn holds it or waits for it and is removed when the last one
  leaves, so a flood of new conversation ids leaves nothing behind. (With Redis the
  scaled-out gateways use :class:`bot.gateway.scaleout.RedisTurnLocks` instead.)
* :class:`Admission` counts this gateway's turns in Rasa (``KEFU_MAX_CONCURRENT_TURNS``). A
  turn over the limit is not queued in memory: the customer gets the busy notice at once
  and the line stays ``pending`` in the transcript, which the replayer answers in order
  when there is room. So load beyond what Rasa can take costs a short wait, never
  unbounded memory or a timeout for everyone.
"""
from __future__ import annotations

import asyncio
from typing import Dict, List


class _Held:
    def __init__(self, owner: "TurnLocks", key: str) -> None:
        self.owner, self.key = owner, key
        self.entry: List | None = None

    async def __aenter__(self) -> "_Held":
        entry = self.owner._locks.get(self.key)
        if entry is None:
            entry = self.owner._locks[self.key] = [asyncio.Lock(), 0]
        entry[1] += 1                    # holders and waiters: FIFO order kept by the Lock
        self.entry = entry
        try:
            await entry[0].acquire()
        except BaseException:
            self._leave()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        self.entry[0].release()
        self._leave()

    def _leave(self) -> None:
        entry, self.entry = self.entry, None
        entry[1] -= 1
        if entry[1] == 0 and self.owner._locks.get(self.key) is entry:
            del self.owner._locks[self.key]


class TurnLocks:
    """One lock per conversation, kept only while a turn of it runs or waits."""

    def __init__(self) -> None:
        self._locks: Dict[str, List] = {}

    def __getitem__(self, conversation: str) -> _Held:
        return _Held(self, conversation)

    def __len__(self) -> int:
        return len(self._locks)


class Admission:
    """At most ``limit`` turns of this gateway in Rasa at once; never a queue in memory."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self.active = 0

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active = max(0, self.active - 1)
