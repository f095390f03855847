"""A fake Rasa (REST channel, /status) and action server (/health) speaking the real wire
format, on one aiohttp app, that can hang on demand: a SIGSTOP-ed process accepts the
connection and never answers."""
from __future__ import annotations

import asyncio

from aiohttp import web


class FakeRasa:
    """Rasa's REST channel and /status, plus the action server's /health, on one aiohttp app.

    ``hang`` holds the named parts (``"webhook"``, ``"status"``, ``"health"``) until the
    server stops; ``hang_texts`` holds only the webhook calls for those texts, once each.
    """

    def __init__(self) -> None:
        self.hang: set[str] = set()
        self.hang_texts: set[str] = set()
        self.heard: list[str] = []
        self.delay = 0.0
        self.app = web.Application()
        self.app.router.add_post("/webhooks/rest/webhook", self.webhook)
        self.app.router.add_get("/status", self.status)
        self.app.router.add_get("/health", self.health)

    async def _maybe_hang(self, part: str) -> None:
        if part in self.hang:
            await asyncio.sleep(3600)

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        text = body["message"]
        if text in self.hang_texts:
            self.hang_texts.discard(text)
            await asyncio.sleep(3600)
        await self._maybe_hang("webhook")
        await asyncio.sleep(self.delay)
        self.heard.append(text)
        return web.json_response([{"recipient_id": body["sender"], "text": f"答：{text}"}])

    async def status(self, request: web.Request) -> web.Response:
        await self._maybe_hang("status")
        return web.json_response({"model_file": "models/fake.tar.gz"})

    async def health(self, request: web.Request) -> web.Response:
        await self._maybe_hang("health")
        return web.json_response({"status": "ok"})
