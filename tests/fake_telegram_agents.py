"""A local fake of the Telegram Bot API for the agents' group (just what kefu uses).

Runs an aiohttp server in a thread. It records what the bot sends (``sent``) and serves
updates the test injects (an agent pressing Claim, replying in a thread) to ``getUpdates``.
``stop()`` / ``start()`` on the same port imitate Telegram being unreachable for a while.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Dict, List, Optional

from aiohttp import web


class FakeBotApi:
    def __init__(self, port: int, group: str = "-1001234567890") -> None:
        self.port, self.group = port, group
        self.sent: List[Dict[str, Any]] = []          # every sendMessage, in order
        self.edits: List[Dict[str, Any]] = []
        self.answers: List[Dict[str, Any]] = []
        self._updates: List[Dict[str, Any]] = []
        self.polls = 0                  # getUpdates calls answered
        self.conflicts = 0              # getUpdates while another was in flight (Telegram: 409)
        self._polling = False
        self._update_id = 100
        self._message_id = 1000
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: Optional[web.AppRunner] = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- server lifecycle ---------------------------------------------------------------

    def start(self) -> "FakeBotApi":
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- what a test does -----------------------------------------------------------------

    def _next_message_id(self) -> int:
        with self._lock:
            self._message_id += 1
            return self._message_id

    def _push(self, update: Dict[str, Any]) -> None:
        with self._lock:
            self._update_id += 1
            update["update_id"] = self._update_id
            self._updates.append(update)

    @staticmethod
    def user(user_id: int, name: str) -> Dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name}

    def press(self, user: Dict[str, Any], message: Dict[str, Any], data: str, *,
              chat_id: int | None = None) -> None:
        """A button press; ``chat_id``: as if the message were in another chat (forwarded)."""
        shown = dict(message["message"])
        if chat_id is not None:
            shown["chat"] = {**shown["chat"], "id": chat_id}
        self._push({"callback_query": {"id": f"cq{time.monotonic_ns()}", "from": user,
                                       "chat_instance": "ci", "data": data, "message": shown}})

    def reply(self, user: Dict[str, Any], to: Dict[str, Any], text: str) -> None:
        self._push({"message": {"message_id": self._next_message_id(), "date": int(time.time()),
                                "chat": {"id": int(self.group), "type": "supergroup",
                                         "title": "客服组"},
                                "from": user, "text": text,
                                "reply_to_message": to["message"]}})

    def wait_for(self, predicate, timeout: float = 60) -> Dict[str, Any]:
        """The first sent message matching ``predicate`` (polls; not a timed assertion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in list(self.sent):
                if predicate(item):
                    return item
            time.sleep(0.1)
        raise AssertionError(f"no such message; sent: {[m['text'] for m in self.sent]}")

    # --- the API --------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> Dict[str, Any]:
        if request.content_type == "application/json":
            raw = await request.json()
        else:
            raw = dict(await request.post())
        params = {}
        for key, value in raw.items():
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            params[key] = value
        return params

    def _message(self, chat_id, text, reply_to=None, markup=None) -> Dict[str, Any]:
        message = {"message_id": self._next_message_id(), "date": int(time.time()),
                   "chat": {"id": int(chat_id), "type": "supergroup", "title": "客服组"},
                   "from": {"id": 1, "is_bot": True, "first_name": "kefu"}, "text": str(text)}
        if markup:
            message["reply_markup"] = markup
        if reply_to:
            original = next((m["message"] for m in self.sent
                             if m["message"]["message_id"] == reply_to), None)
            if original:
                message["reply_to_message"] = original
        return message

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        ok = lambda result: web.json_response({"ok": True, "result": result})  # noqa: E731
        if method == "getMe":
            return ok({"id": 1, "is_bot": True, "first_name": "kefu", "username": "kefu_agents_bot",
                       "can_join_groups": True, "can_read_all_group_messages": True,
                       "supports_inline_queries": False})
        if method == "sendMessage":
            reply_to = params.get("reply_to_message_id")
            if reply_to is None and isinstance(params.get("reply_parameters"), dict):
                reply_to = params["reply_parameters"].get("message_id")
            message = self._message(params["chat_id"], params["text"], reply_to,
                                    params.get("reply_markup"))
            self.sent.append({"text": message["text"], "reply_to": reply_to,
                              "markup": params.get("reply_markup"), "message": message})
            return ok(message)
        if method == "editMessageReplyMarkup":
            self.edits.append(params)
            return ok(True)
        if method == "answerCallbackQuery":
            self.answers.append(params)
            return ok(True)
        if method == "getUpdates" and self._polling:
            self.conflicts += 1         # as Telegram: one getUpdates at a time per bot
            return web.json_response({"ok": False, "error_code": 409, "description":
                                      "Conflict: terminated by other getUpdates request; make "
                                      "sure that only one bot instance is running"}, status=409)
        if method == "getUpdates":
            self._polling = True
            try:
                return await self._get_updates(params, ok)
            finally:
                self._polling = False
        if method in ("deleteWebhook", "setMyCommands", "close", "logOut"):
            return ok(True)
        return web.json_response({"ok": False, "error_code": 404,
                                  "description": f"Not Found: method {method}"}, status=404)

    async def _get_updates(self, params: Dict[str, Any], ok) -> web.Response:
        self.polls += 1
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            with self._lock:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = list(self._updates)
            if ready or time.monotonic() >= deadline:
                return ok(ready)
            await asyncio.sleep(0.05)
