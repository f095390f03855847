"""Local stand-ins for the platforms kefu talks to, each speaking the platform's real wire format.

- :mod:`tests.fakes.telegram`: the Telegram Bot API (one fake for the customers' bot and the
  agents' group bot) and :class:`~tests.fakes.telegram.TelegramCustomer`, a private chat
  posting webhook updates.
- :mod:`tests.fakes.wechat`: the WeChat Official Account API and
  :class:`~tests.fakes.wechat.WeChatPusher`, WeChat's signed/encrypted XML pushes.
- :mod:`tests.fakes.wecom`: WeCom's 微信客服 API and its encrypted callbacks.

Each fake is an aiohttp app served from a thread of its own (:class:`ThreadedServer`), so
synchronous tests and the gateway subprocess can talk to it; every call is recorded for
assertions. ``stop()`` then ``start()`` serves again on the same port (a platform outage).
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
import urllib.error
import urllib.request
from typing import Callable, Dict, Optional, Tuple, Union

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.gateway.ports import free_port

AppOrFactory = Union[web.Application, Callable[[], web.Application]]


class ThreadedServer:
    """``app`` served on 127.0.0.1:``port`` by an event loop on a thread of its own.

    ``app`` is an application, or a callable making a fresh one: only then can the server
    ``start()`` again after ``stop()`` (an aiohttp application runs once), on the same port.
    """

    def __init__(self, app: AppOrFactory, port: int, *, shutdown_timeout: float = 60.0) -> None:
        self._make = None if isinstance(app, web.Application) else app
        self.app: Optional[web.Application] = app if self._make is None else None
        self.port, self.shutdown_timeout = port, shutdown_timeout
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self) -> None:
        if self._make is not None:
            self.app = self._make()
        self._runner = web.AppRunner(self.app, access_log=None,
                                     shutdown_timeout=self.shutdown_timeout)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> "ThreadedServer":
        if self._thread is not None:
            raise RuntimeError("already serving")
        if self.app is not None and self._make is None and self.app.frozen:
            raise RuntimeError("an application serves once: give ThreadedServer a factory")
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)
        except BaseException:
            self._halt()
            raise
        return self

    def stop(self) -> None:
        """Close the port (the app's cleanup runs) and end the thread."""
        if self._thread is None:
            return
        try:
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(
                    self.shutdown_timeout + 10)
        finally:
            self._runner = None
            self._halt()

    def _halt(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None


class FakePlatform:
    """A fake platform's own server: ``start()`` (again after ``stop()``: the same port)."""

    shutdown_timeout = 60.0

    def __init__(self) -> None:
        self.server: Optional[ThreadedServer] = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def make_app(self) -> web.Application:
        """A fresh application with the platform's routes (to serve, or to wrap in a test)."""
        app = web.Application()
        self.routes(app)
        return app

    def start(self, port: int | None = None):
        if self.server is None:
            self.server = ThreadedServer(self.make_app, port or free_port(),
                                         shutdown_timeout=self.shutdown_timeout)
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url


def http(url: str, body: bytes | None = None, headers: Dict[str, str] | None = None,
         timeout: float = 60) -> Tuple[int, str]:
    """GET (or POST ``body``) like a platform's servers do: (status, body text), errors too."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@contextlib.asynccontextmanager
async def served(app: web.Application):
    """``app`` on an aiohttp test server in the running loop; yields its client."""
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
