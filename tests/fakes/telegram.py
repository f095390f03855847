"""A local Telegram Bot API, for both of kefu's bots, and a customer's private chat.

:class:`FakeBotAPI` answers ``/bot<token>/<method>`` (a JSON, urlencoded or multipart body,
or a query string) with ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code":
..., "description": ...}`` and the HTTP status Telegram gives, with Telegram's rules where
kefu meets them: a wrong token is 401; ``sendMessage`` refuses empty text and more than 4096
characters and a reply to a message it does not know (unless ``allow_sending_without_reply``);
``edit*`` refuses a message it does not know and an edit that changes nothing; ``getUpdates``
long-polls (``offset`` confirms, ``limit``, ``allowed_updates``), one at a time per bot
(409), and not while a webhook is set (409). Every call is recorded.

The customers' bot (``TELEGRAM_TOKEN``) is driven by :class:`TelegramCustomer` posting
webhook updates to the gateway; the agents' group bot (:func:`agents_bot_api`) by the
fake's :meth:`FakeBotAPI.press` and :meth:`FakeBotAPI.reply`, updates served to
``getUpdates``. ``stop()`` / ``start()`` serve again on the same port: Telegram unreachable.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from aiohttp import web

from tests.fakes import FakePlatform, http

TELEGRAM_TOKEN = "7000001:customer-test-token"      # the customers' bot
TELEGRAM_SECRET = "kefu-webhook-secret"
AGENTS_TOKEN = "123456:agents-test-token"           # the agents' group bot
AGENTS_GROUP = "-1001234567890"
TEXT_LIMIT = 4096
MAX_POLL = 2.0            # a long poll answers empty after at most this long (tests end quickly)
# form fields Telegram reads as strings; any other form value is JSON (numbers, objects, ...)
STRING_FIELDS = {"text", "caption", "callback_query_id", "inline_message_id", "parse_mode",
                 "url", "secret_token", "ip_address", "name", "description", "short_description",
                 "language_code"}
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup of "
                "the message")


class BotAPIError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


# --- the objects of updates, as Telegram shapes them ---------------------------------------


def user(user_id: int, name: str, **extra) -> Dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name, **extra}


def chat(chat_id: int, *, title: str = "客服组", name: str = "顾客") -> Dict[str, Any]:
    """A private chat (positive id) or a supergroup (``-100...``)."""
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup", "title": title}
    return {"id": chat_id, "type": "private", "first_name": name}


def message(message_id: int, in_chat: Dict[str, Any], sender: Dict[str, Any], text: str | None,
            **extra) -> Dict[str, Any]:
    msg = {"message_id": message_id, "date": int(time.time()), "chat": in_chat, "from": sender,
           **extra}
    if text is not None:
        msg["text"] = text
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0,
                                "length": len(text.split()[0])}]
    return msg


def callback_query(sender: Dict[str, Any], shown: Dict[str, Any], data: str) -> Dict[str, Any]:
    return {"id": str(secrets.randbelow(10**18)), "from": sender, "data": data,
            "chat_instance": str(abs(int(shown["chat"]["id"]))), "message": shown}


# --- the Bot API ----------------------------------------------------------------------------


def _form_value(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in STRING_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int(value: Any, field: str, unknown: str) -> int:
    """``value`` as a number, else Telegram's 400: ``field`` is empty, or ``unknown``."""
    if value in (None, ""):
        raise BotAPIError(400, f"Bad Request: {field} is empty")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BotAPIError(400, f"Bad Request: {unknown}") from None


class FakeBotAPI(FakePlatform):
    shutdown_timeout = 0.5          # a long poll in flight does not hold up stop()

    def __init__(self, token: str = TELEGRAM_TOKEN, *, username: str = "kefu_test_bot",
                 first_name: str = "Kefu", group: str = AGENTS_GROUP, group_title: str = "客服组",
                 in_groups: bool = False) -> None:
        super().__init__()
        self.token, self.username, self.first_name = token, username, first_name
        self.bot_id = int(token.split(":", 1)[0])
        self.group, self.group_title, self.in_groups = group, group_title, in_groups
        self.lock = threading.RLock()
        self.calls: List[Tuple[str, Dict[str, Any]]] = []      # every method call, in order
        self.messages: Dict[Tuple[int, int], Dict[str, Any]] = {}   # as each is now
        self.webhook: Optional[str] = None
        self.polls = 0                  # getUpdates calls answered
        self.conflicts = 0              # getUpdates while another was in flight (409)
        self._sent: List[Dict[str, Any]] = []
        self._updates: List[Dict[str, Any]] = []
        self._polling = False
        self._update_id = 100
        self._message_id = 1000

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self.dispatch)

    def customer_bot_env(self, secret: str = TELEGRAM_SECRET) -> Dict[str, str]:
        """The gateway's settings for this bot as the customers' bot (webhook ``secret``)."""
        return {"KEFU_TELEGRAM_TOKEN": self.token, "KEFU_TELEGRAM_SECRET": secret,
                "KEFU_TELEGRAM_API_BASE": self.url}

    def agents_bot_env(self) -> Dict[str, str]:
        """The gateway's settings for this bot as the agents' group bot."""
        return {"KEFU_TELEGRAM_AGENT_TOKEN": self.token, "KEFU_TELEGRAM_AGENT_GROUP": self.group,
                "KEFU_TELEGRAM_AGENT_API_BASE": self.url}

    # --- what a test reads ----------------------------------------------------------------

    def sent(self, chat_id: int | str | None = None) -> List[Dict[str, Any]]:
        """Every accepted sendMessage: its parameters, ``reply_to`` (the message id it
        answers, or None) and ``message`` (the Message Telegram returned)."""
        with self.lock:
            return [r for r in self._sent if chat_id is None or r["chat_id"] == int(chat_id)]

    def methods(self) -> List[str]:
        with self.lock:
            return [m for m, _ in self.calls]

    def params(self, *methods: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [p for m, p in self.calls if m in methods]

    @property
    def answers(self) -> List[Dict[str, Any]]:
        return self.params("answerCallbackQuery")

    @property
    def edits(self) -> List[Dict[str, Any]]:
        return self.params("editMessageReplyMarkup", "editMessageText")

    def current(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        """The message as it is now (after edits)."""
        with self.lock:
            return dict(self.messages.get((msg["chat"]["id"], msg["message_id"]), msg))

    def wait_for(self, predicate: Callable[[Dict[str, Any]], Any], timeout: float = 60
                 ) -> Dict[str, Any]:
        """The first sent message matching ``predicate`` (polls; not a timed assertion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.sent():
                if predicate(item):
                    return item
            time.sleep(0.1)
        raise AssertionError(f"no such message; sent: {[m['text'] for m in self.sent()]}")

    # --- what a test does: updates for getUpdates --------------------------------------------

    def push(self, update: Dict[str, Any]) -> Dict[str, Any]:
        """An update for ``getUpdates``; Telegram numbers it."""
        with self.lock:
            self._update_id += 1
            update["update_id"] = self._update_id
            self._updates.append(update)
        return update

    user = staticmethod(user)

    def press(self, sender: Dict[str, Any], record: Dict[str, Any], data: str, *,
              chat_id: int | None = None) -> None:
        """``sender`` presses a button on a sent message; ``chat_id``: as if the message were
        in another chat (forwarded)."""
        shown = self.current(record["message"])
        if chat_id is not None:
            shown["chat"] = {**shown["chat"], "id": chat_id}
        self.push({"callback_query": callback_query(sender, shown, data)})

    def reply(self, sender: Dict[str, Any], to: Dict[str, Any], text: str) -> Dict[str, Any]:
        """``sender`` answers the sent message ``to`` in the group (a thread)."""
        msg = message(self._next_message_id(), chat(int(self.group), title=self.group_title),
                      sender, text, reply_to_message=self.current(to["message"]))
        with self.lock:
            self.messages[(msg["chat"]["id"], msg["message_id"])] = msg
        self.push({"message": msg})
        return msg

    # --- the API --------------------------------------------------------------------------

    def _next_message_id(self) -> int:
        with self.lock:
            self._message_id += 1
            return self._message_id

    def _bot(self) -> Dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.first_name,
                "username": self.username}

    async def _params(self, request: web.Request) -> Dict[str, Any]:
        params = {k: _form_value(k, v) for k, v in request.query.items()}
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.read())
            except ValueError:
                raise BotAPIError(400, "Bad Request: can't parse JSON object") from None
            if not isinstance(body, dict):
                raise BotAPIError(400, "Bad Request: JSON object expected")
            params.update(body)
        elif request.can_read_body:
            params.update({k: _form_value(k, v) for k, v in (await request.post()).items()})
        return params

    async def dispatch(self, request: web.Request) -> web.Response:
        try:
            if request.match_info["token"] != self.token:
                raise BotAPIError(401, "Unauthorized")
            method = request.match_info["method"]
            params = await self._params(request)
            with self.lock:
                self.calls.append((method, params))
            handler = getattr(self, f"api_{method.lower()}", None)
            if handler is None:
                raise BotAPIError(404, "Not Found")
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except BotAPIError as exc:
            return web.json_response({"ok": False, "error_code": exc.code,
                                      "description": exc.description}, status=exc.code)
        return web.json_response({"ok": True, "result": result})

    def api_getme(self, _params) -> Dict[str, Any]:
        return {**self._bot(), "can_join_groups": self.in_groups,
                "can_read_all_group_messages": self.in_groups, "supports_inline_queries": False}

    def api_sendmessage(self, p: Dict[str, Any]) -> Dict[str, Any]:
        chat_id = _int(p.get("chat_id"), "chat_id", "chat not found")
        text = "" if p.get("text") is None else str(p["text"])
        if not text.strip():
            raise BotAPIError(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            raise BotAPIError(400, "Bad Request: message is too long")
        reply = p.get("reply_parameters") if isinstance(p.get("reply_parameters"), dict) else {}
        reply_to = p.get("reply_to_message_id", reply.get("message_id"))
        lenient = p.get("allow_sending_without_reply", reply.get("allow_sending_without_reply"))
        extra = {}
        with self.lock:
            if reply_to is not None:
                reply_to = _int(reply_to, "message_id", "message to be replied not found")
                original = self.messages.get((chat_id, reply_to))
                if original is not None:
                    extra["reply_to_message"] = {k: v for k, v in original.items()
                                                 if k != "reply_to_message"}
                elif not lenient:
                    raise BotAPIError(400, "Bad Request: message to be replied not found")
            markup = p.get("reply_markup")
            if isinstance(markup, dict) and "inline_keyboard" in markup:
                extra["reply_markup"] = markup
            msg = message(self._next_message_id(), chat(chat_id, title=self.group_title),
                          self._bot(), text, **extra)
            self.messages[(chat_id, msg["message_id"])] = msg
            self._sent.append({**p, "chat_id": chat_id, "reply_to": reply_to, "message": msg})
        return msg

    def _edit(self, p: Dict[str, Any], **change) -> Any:
        if p.get("inline_message_id"):
            return True
        key = (_int(p.get("chat_id"), "chat_id", "chat not found"),
               _int(p.get("message_id"), "message_id", "message to edit not found"))
        markup = p.get("reply_markup") if isinstance(p.get("reply_markup"), dict) else None
        with self.lock:
            msg = self.messages.get(key)
            if msg is None:
                raise BotAPIError(400, "Bad Request: message to edit not found")
            edited = {k: v for k, v in msg.items() if k != "reply_markup"}
            edited.update(change, edit_date=int(time.time()))
            if markup and markup.get("inline_keyboard"):
                edited["reply_markup"] = markup
            if edited.get("text") == msg.get("text") and \
                    edited.get("reply_markup") == msg.get("reply_markup"):
                raise BotAPIError(400, NOT_MODIFIED)
            self.messages[key] = edited
        return edited

    def api_editmessagereplymarkup(self, p: Dict[str, Any]) -> Any:
        return self._edit(p)

    def api_editmessagetext(self, p: Dict[str, Any]) -> Any:
        text = "" if p.get("text") is None else str(p["text"])
        if not text.strip():
            raise BotAPIError(400, "Bad Request: message text is empty")
        return self._edit(p, text=text)

    def api_answercallbackquery(self, p: Dict[str, Any]) -> bool:
        if not p.get("callback_query_id"):
            raise BotAPIError(400, "Bad Request: query_id is empty")
        return True

    def api_setwebhook(self, p: Dict[str, Any]) -> bool:
        with self.lock:
            self.webhook = str(p.get("url") or "") or None
        return True

    def api_deletewebhook(self, p: Dict[str, Any]) -> bool:
        with self.lock:
            self.webhook = None
            if p.get("drop_pending_updates"):
                self._updates.clear()
        return True

    def api_getwebhookinfo(self, _params) -> Dict[str, Any]:
        with self.lock:
            return {"url": self.webhook or "", "has_custom_certificate": False,
                    "pending_update_count": len(self._updates)}

    def api_setmycommands(self, _params) -> bool:
        return True

    api_close = api_logout = api_setmycommands

    async def api_getupdates(self, p: Dict[str, Any]) -> List[Dict[str, Any]]:
        with self.lock:
            if self.webhook:
                raise BotAPIError(409, "Conflict: can't use getUpdates method while webhook is "
                                       "active; use deleteWebhook to delete the webhook first")
            if self._polling:           # as Telegram: one getUpdates at a time per bot
                self.conflicts += 1
                raise BotAPIError(409, "Conflict: terminated by other getUpdates request; make "
                                       "sure that only one bot instance is running")
            self._polling = True
            self.polls += 1
        try:
            offset = int(p.get("offset") or 0)
            limit = max(1, min(int(p.get("limit") or 100), 100))
            allowed = p.get("allowed_updates") or None
            deadline = time.monotonic() + min(float(p.get("timeout") or 0), MAX_POLL)
            while True:
                with self.lock:
                    if offset:                  # confirms every update before it
                        self._updates = [u for u in self._updates if u["update_id"] >= offset]
                    ready = [u for u in self._updates
                             if allowed is None or any(kind in u for kind in allowed)][:limit]
                if ready or time.monotonic() >= deadline:
                    return ready
                await asyncio.sleep(0.05)
        finally:
            with self.lock:
                self._polling = False


def agents_bot_api() -> FakeBotAPI:
    """The agents' group bot (not started)."""
    return FakeBotAPI(AGENTS_TOKEN, username="kefu_agents_bot", first_name="kefu",
                      in_groups=True)


# --- a customer ----------------------------------------------------------------------------


class TelegramCustomer:
    """A private chat with the bot: posts Bot API updates to the gateway's webhook."""

    _update_id = 500000

    def __init__(self, webhook_url: str, secret: str, api: Optional[FakeBotAPI],
                 chat_id: int) -> None:
        self.url, self.secret, self.api, self.chat_id = webhook_url, secret, api, chat_id
        self._message_id = 0

    @classmethod
    def next_update_id(cls) -> int:
        cls._update_id += 1
        return cls._update_id

    def user(self) -> Dict[str, Any]:
        return user(self.chat_id, "顾客", language_code="zh-hans")

    def message_update(self, text: str | None, **extra) -> Dict[str, Any]:
        self._message_id += 1
        return {"update_id": self.next_update_id(),
                "message": message(self._message_id, chat(self.chat_id), self.user(), text,
                                   **extra)}

    def callback_update(self, bot_message: Dict[str, Any], data: str) -> Dict[str, Any]:
        return {"update_id": self.next_update_id(),
                "callback_query": callback_query(self.user(), bot_message, data)}

    def post(self, update: Any, *, secret: Optional[str] = None, raw: bytes | None = None
             ) -> int:
        body = raw if raw is not None else json.dumps(update).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not False:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.secret if secret is None else secret
        return http(self.url, body, headers, timeout=90)[0]

    def say(self, text: str | None, **extra) -> List[Dict[str, Any]]:
        """Send a message; returns the bot's sendMessage calls it caused."""
        before = len(self.api.sent(self.chat_id))
        assert self.post(self.message_update(text, **extra)) == 200
        return self.api.sent(self.chat_id)[before:]

    def press(self, sent: Dict[str, Any], title: str) -> List[Dict[str, Any]]:
        """Press the inline button ``title`` on a message the bot sent (a ``sent()`` record)."""
        rows = sent["reply_markup"]["inline_keyboard"]
        [button] = [b for row in rows for b in row if b["text"] == title]
        before = len(self.api.sent(self.chat_id))
        update = self.callback_update(self.api.current(sent["message"]), button["callback_data"])
        assert self.post(update) == 200
        return self.api.sent(self.chat_id)[before:]
