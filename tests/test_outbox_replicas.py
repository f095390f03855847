"""The agent-side outbox with several gateway replicas: each row goes out once, in order.

Two HandoffService outbox loops (as two gateway replicas run them) deliver from one
PostgreSQL database at the same time, through a deliberately slow target. Without the
per-target lease (bot/store/handoffs.py, OutboxLease) both would read the same waiting rows and
the agents' group would get messages twice and out of order.
"""
from __future__ import annotations

import asyncio
import time

from bot.store.handoffs import HandoffStore
from bot.support.handoffs import HandoffService
from bot.store.migrations import upgrade_to_head

ROWS = 30


def _service(engine) -> HandoffService:
    return HandoffService(store=HandoffStore(engine))


def test_two_replicas_deliver_each_row_once_in_order(scratch_pg):
    upgrade_to_head(scratch_pg)
    replicas = {"a": _service(scratch_pg), "b": _service(scratch_pg)}
    sent = []

    def slow_target(name):
        async def deliver(row):
            await asyncio.sleep(0.005)         # a network round trip to Telegram
            sent.append((name, row["payload"]["n"]))
            return True
        return deliver

    for name, service in replicas.items():
        service.deliverers["telegram"] = slow_target(name)
    for n in range(ROWS):
        replicas["a"].store.enqueue("telegram", {"n": n})

    async def run():
        loops = [asyncio.ensure_future(s.outbox_loop()) for s in replicas.values()]
        deadline = time.monotonic() + 30
        try:
            while replicas["a"].store.pending("telegram") and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)           # both loops go round again: nothing more is sent
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    asyncio.run(run())
    numbers = [n for _, n in sent]
    assert numbers == list(range(ROWS)), f"duplicated or reordered: {sent}"
    assert replicas["b"].store.pending("telegram") == []


def test_sqlite_lease_is_always_granted(tmp_path):
    from bot.store.engine import engine_for

    lease = HandoffStore(engine_for(f"sqlite:///{tmp_path}/k.db")).outbox_lease("telegram")
    assert lease.acquire() is True
    lease.release()
