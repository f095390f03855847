"""One supervisor for every background loop a process runs (the gateway's composition root).

Each loop is named; a failure is logged with that name and the loop is restarted with
backoff; :meth:`Supervisor.stop` cancels them all on shutdown. Loops themselves hold no
log-and-sleep code: a periodic job is a plain ``async def`` run by :meth:`every`.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Dict

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


class Supervisor:
    def __init__(self, *, first_backoff: float = 1.0, max_backoff: float = 30.0) -> None:
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.tasks: Dict[str, asyncio.Task] = {}

    def start(self, name: str, loop: Job) -> asyncio.Task:
        """Run ``loop()`` until cancelled; when it raises, log and restart it after a backoff."""
        if name in self.tasks and not self.tasks[name].done():
            raise RuntimeError(f"background task {name!r} is already running")

        async def supervised() -> None:
            delay = self.first_backoff
            while True:
                try:
                    await loop()
                    logger.info("background task %s finished", name)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("background task %s failed; restarting in %.0f s", name, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)

        task = asyncio.get_running_loop().create_task(supervised(), name=name)
        self.tasks[name] = task
        return task

    def every(self, name: str, seconds: float, job: Job) -> asyncio.Task:
        """Run ``job()`` now and then every ``seconds``; a failed round is logged, the next runs."""

        async def periodic() -> None:
            while True:
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("background task %s: a round failed", name)
                await asyncio.sleep(seconds)

        return self.start(name, periodic)

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()
