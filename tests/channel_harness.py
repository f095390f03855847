"""An in-process gateway for connector tests: the real router and plugin, a scripted Rasa."""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Dict, List

from aiohttp import web

from bot.gateway.router import RateLimiter, Router
from bot.store.transcripts import TranscriptStore
from tests.conftest import free_port
from tests.fakes import ThreadedServer

GREETING = {"text": "您好，我是智能客服～请问有什么可以帮您？",
            "buttons": [{"title": "我要投诉", "payload": "我要投诉"},
                        {"title": "报修/安装", "payload": "我要报修"},
                        {"title": "长按钮", "payload": "/inform{\"product\": \"燃气热水器\", \"note\": \"一个很长很长的负载\"}"}]}


def use_greeting(monkeypatch, tmp_path) -> None:
    """The channels' welcome (connectors/welcome.py) reads the pack's rendered responses:
    give it GREETING, whose buttons exercise short, long and over-64-byte payloads."""
    import yaml

    import connectors.welcome

    rendered = tmp_path / "rendered.yml"
    rendered.write_text(yaml.safe_dump({"responses": {"utter_greet": [GREETING]}}, allow_unicode=True),
                        encoding="utf-8")
    monkeypatch.setattr(connectors.welcome, "RESPONSES", rendered)


class ScriptedRasa:
    """Stands in for :class:`bot.brain.rasa_client.RasaClient`: echoes, greets, can be held."""

    def __init__(self) -> None:
        self.calls: List[tuple[str, str]] = []
        self.release = threading.Event()
        self.release.set()
        self.lock = threading.Lock()

    async def send(self, sender: str, text: str) -> List[Dict[str, Any]]:
        with self.lock:
            self.calls.append((sender, text))
        while not self.release.is_set():          # a slow turn, until the test lets it go
            await asyncio.sleep(0.02)
        if text == "/greet":
            return [GREETING]
        if text == "长回答":
            return [{"text": "这是一段很长的回答。" * 300}]     # 9000 bytes of UTF-8
        if text == "超长回答":
            return [{"text": "这是一段很长的回答。" * 500, "buttons": GREETING["buttons"]}]
        return [{"text": f"收到：{text}"}, {"text": "还有什么可以帮您？"}]

    async def model_loaded(self) -> bool:
        return True

    async def actions_ready(self) -> bool:
        return True

    async def close(self) -> None:
        pass

    def texts(self, sender: str | None = None) -> List[str]:
        with self.lock:
            return [t for s, t in self.calls if sender is None or s == sender]


class Gateway:
    """The plugin under test mounted on a real router, served on a thread."""

    def __init__(self, plugin_setup: Callable[[web.Application], None]) -> None:
        self.rasa = ScriptedRasa()
        self.app = web.Application(client_max_size=64 * 1024)
        router = Router(self.rasa, TranscriptStore(), limiter=RateLimiter(6000, 1000))
        self.app["router"] = router
        self.app["senders"] = router.senders
        plugin_setup(self.app)

        # pushes outside a turn go through the router's durable outbox, delivered as the
        # gateway's supervisor delivers them
        async def start_outbox(app: web.Application) -> None:
            app["outbox_task"] = asyncio.ensure_future(router.outbox.loop())

        async def stop_outbox(app: web.Application) -> None:
            app["outbox_task"].cancel()
            await asyncio.gather(app["outbox_task"], return_exceptions=True)

        self.app.on_startup.append(start_outbox)
        self.app.on_cleanup.insert(0, stop_outbox)
        self.server = ThreadedServer(self.app, free_port()).start()

    @property
    def url(self) -> str:
        return self.server.url

    def run(self, coro, timeout: float = 30):
        """Run a coroutine on the gateway's loop from the test thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.server.loop).result(timeout)

    def stop(self) -> None:
        self.server.stop()


def eventually(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Wait for something the system does in the background (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
