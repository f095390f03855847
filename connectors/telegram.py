"""Telegram: customers talk to the shop's bot; python-telegram-bot speaks the Bot API.

Webhook mode (default): ``POST /webhooks/telegram`` checks the
``X-Telegram-Bot-Api-Secret-Token`` header, builds the :class:`telegram.Update` and
answers through the :class:`telegram.Bot`. Polling mode (``KEFU_TELEGRAM_MODE=polling``)
needs no public URL: the gateway asks ``getUpdates`` itself (one gateway process only).

``/start`` greets; Rasa buttons become inline keyboards whose callback queries come back
as the customer's choice. Each update is processed once (``update_id`` in the SQL
ledger). Sends respect Telegram's flood limits (one message per second per chat, 30 per
second overall) by waiting, never by dropping.

Environment: ``KEFU_TELEGRAM_TOKEN`` (unset: connector off), ``KEFU_TELEGRAM_SECRET``
(webhook mode), ``KEFU_TELEGRAM_API_BASE`` (default ``https://api.telegram.org``),
``KEFU_TELEGRAM_MODE`` (``webhook`` | ``polling``).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.messages import ConversationId, InboundMessage, OutboundMessage
from bot.settings import setting
from bot.store.deliveries import DeliveryLedger, last_buttons, resolve_choice
from bot.web import BadJson, parse_json
from bot.support.outbox import Rejected, Unreachable
from connectors.welcome import welcome

# An update is settled only after all its sends (flood-limited): give a live turn a minute.
TELEGRAM_ABANDONED_AFTER = 60.0

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_BODY = 64 * 1024
DEFAULT_API = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
UNSUPPORTED_TEXT = ("暂时只能看懂文字消息哦～我可以帮您查询退换货、运费、保修等政策，登记投诉、"
                    "报修和退换货，查询工单进度，或者为您转人工。请用文字告诉我您需要什么～")


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    secret: str = ""
    api_base: str = DEFAULT_API
    mode: str = "webhook"

    @classmethod
    def from_env(cls) -> Optional["TelegramConfig"]:
        token = setting("KEFU_TELEGRAM_TOKEN")
        if not token:
            return None
        mode = setting("KEFU_TELEGRAM_MODE")
        if mode not in ("webhook", "polling"):
            raise ValueError("KEFU_TELEGRAM_MODE must be webhook or polling")
        return cls(token=token, secret=setting("KEFU_TELEGRAM_SECRET"),
                   api_base=setting("KEFU_TELEGRAM_API_BASE"),
                   mode=mode)


class FloodGate:
    """Schedules sends: at most one per ``per_chat`` seconds in a chat, ``overall`` per second.

    Every send reserves the next free slot and waits for it, so bursts are smoothed out
    in order and nothing is dropped.
    """

    def __init__(self, per_chat: float = 1.0, overall: float = 30.0) -> None:
        self.per_chat = per_chat
        self.spacing = 1.0 / overall
        self._chat_next: Dict[str, float] = {}
        self._global_next = 0.0

    def reserve(self, chat_id: str, now: float | None = None) -> float:
        """The time (monotonic) this chat's next message may go out; books that slot."""
        now = time.monotonic() if now is None else now
        at = max(now, self._chat_next.get(chat_id, 0.0), self._global_next)
        self._global_next = at + self.spacing
        self._chat_next[chat_id] = at + self.per_chat
        if len(self._chat_next) > 10_000:                 # forget chats that went quiet
            self._chat_next = {k: v for k, v in self._chat_next.items() if v > now}
        return at

    async def wait(self, chat_id: str) -> None:
        delay = self.reserve(chat_id) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def callback_data(buttons, index: int) -> str:
    """Telegram allows 64 bytes of callback data: the payload, or ``#n`` for a longer one."""
    payload = buttons[index].payload or buttons[index].title
    return payload if len(payload.encode("utf-8")) <= 64 and not payload.startswith("#") \
        else f"#{index + 1}"


def keyboard(message: OutboundMessage) -> Optional[InlineKeyboardMarkup]:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.title[:64] or str(i + 1),
                                                       callback_data=callback_data(message.buttons, i))]
                                 for i, b in enumerate(message.buttons)])


class TelegramChannel:
    def __init__(self, app: web.Application, config: TelegramConfig, *, bot: Bot | None = None,
                 gate: FloodGate | None = None) -> None:
        self.app, self.config = app, config
        self.bot = bot or Bot(config.token, base_url=f"{config.api_base}/bot",
                              base_file_url=f"{config.api_base}/file/bot")
        self.gate = gate or FloodGate()
        self.ledger = DeliveryLedger()
        self._ready = asyncio.Lock()
        self._initialized = False
        self._poller: asyncio.Task | None = None

    async def ready(self) -> None:
        if self._initialized:
            return
        async with self._ready:
            if not self._initialized:
                await self.bot.initialize()            # getMe: the token works
                self._initialized = True
                logger.info("telegram bot @%s ready (%s mode)", self.bot.username,
                            self.config.mode)

    # --- outbound -------------------------------------------------------------------------

    async def _call(self, chat: str, method, /, *args, **kwargs):
        """A Bot API call within the flood limits; waits out 429s and short outages."""
        for attempt in range(1, 6):
            await self.gate.wait(chat)
            try:
                return await method(*args, **kwargs)
            except RetryAfter as exc:
                logger.warning("telegram flood control: waiting %.0f s", _seconds(exc.retry_after))
                await asyncio.sleep(_seconds(exc.retry_after))
            except (TimedOut, NetworkError):
                if attempt == 5:
                    raise
                await asyncio.sleep(min(2 ** attempt * 0.25, 5))
        raise RuntimeError("telegram call failed after retries")

    async def send(self, chat_id: str, messages: List[OutboundMessage]) -> None:
        await self.ready()
        for message in messages:
            if not message.text:
                continue
            text = message.text
            while len(text) > 4096:                  # Telegram's limit: the rest follows
                await self._call(chat_id, self.bot.send_message, chat_id=int(chat_id),
                                 text=text[:4096])
                text = text[4096:]
            await self._call(chat_id, self.bot.send_message, chat_id=int(chat_id), text=text,
                             reply_markup=keyboard(message))

    async def push(self, user_id: str, messages: List[OutboundMessage]) -> None:
        """The gateway's sender for this channel (late answers, agents' replies, notices),
        called by the outbox: a refusal for good (the customer blocked the bot, the chat is
        gone) is :class:`Rejected`, an outage :class:`Unreachable` (retried, nothing lost)."""
        try:
            await self.send(user_id, messages)
        except (BadRequest, Forbidden) as exc:
            raise Rejected(f"telegram refused: {exc}") from exc
        except (TelegramError, RuntimeError) as exc:    # network, timeouts, flood control
            raise Unreachable(type(exc).__name__) from exc

    # --- inbound --------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogatepass")
        if not self.config.secret or not hmac.compare_digest(given, self.config.secret.encode()):
            logger.warning("telegram webhook with a wrong secret token refused")
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"ok": False, "error": "body too large"}, status=413)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"ok": False, "error": "body too large"}, status=413)
        try:
            data = parse_json(raw)
        except BadJson:
            return web.json_response({"ok": False, "error": "body is not JSON"}, status=400)
        try:
            await self.ready()
            update = parse_update(data, self.bot)
        except ValueError as exc:
            logger.warning("telegram update refused: %s", exc)
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        try:
            await self.process(update)
        except Exception:
            # The update is claimed and its turn is in the transcript; a 5xx would only make
            # Telegram hold back this bot's later updates while it redelivers this one.
            logger.exception("telegram update %s failed", update.update_id)
        return web.json_response({"ok": True})

    async def process(self, update: Update) -> None:
        first, _ = await asyncio.to_thread(self.ledger.claim, CHANNEL, str(update.update_id),
                                            TELEGRAM_ABANDONED_AFTER)
        if not first:
            logger.info("telegram update delivered again; already processed")
            return
        try:
            if update.callback_query is not None:
                await self._callback(update)
            elif update.message is not None:
                await self._message(update)
        finally:
            await asyncio.to_thread(self.ledger.settle, CHANNEL, str(update.update_id), "done")

    async def _message(self, update: Update) -> None:
        message = update.message
        chat_id = str(message.chat.id)
        if message.chat.type != "private":     # customers talk one-to-one; groups are ignored
            logger.info("telegram message from a %s chat ignored", message.chat.type)
            return
        router = self.app["router"]
        text = message.text
        if text is None:
            conversation = ConversationId.of(CHANNEL, chat_id)
            await router.record(conversation, CHANNEL, "customer", "[非文字消息]")
            await router.record(conversation, CHANNEL, "system", UNSUPPORTED_TEXT)
            await self.send(chat_id, [OutboundMessage(UNSUPPORTED_TEXT, author="system")])
            return
        command = text.split()[0].split("@")[0].lower() if text.startswith("/") else ""
        if command in ("/start", "/help"):
            greeting = await router.welcome(InboundMessage(channel=CHANNEL, user_id=chat_id, text=text),
                                            welcome())
            await self.send(chat_id, greeting)
            return
        if not text.startswith("/"):
            text = await asyncio.to_thread(resolve_choice, ConversationId.of(CHANNEL, chat_id), text)
        await self._turn(chat_id, text, str(message.message_id))

    async def _callback(self, update: Update) -> None:
        query = update.callback_query
        chat_id = str(query.message.chat.id) if query.message else str(query.from_user.id)
        try:
            await self.ready()
            await self.bot.answer_callback_query(query.id)
            if query.message is not None:   # the choice is made: the keyboard goes away
                await self._call(chat_id, self.bot.edit_message_reply_markup, chat_id=int(chat_id),
                                 message_id=query.message.message_id, reply_markup=None)
        except TelegramError as exc:
            logger.warning("telegram callback bookkeeping failed: %s", type(exc).__name__)
        data = query.data or ""
        if data.startswith("#") and data[1:].isascii() and data[1:].isdigit() and len(data) <= 4:
            buttons = await asyncio.to_thread(last_buttons, ConversationId.of(CHANNEL, chat_id))
            index = int(data[1:]) - 1
            data = buttons[index].payload if 0 <= index < len(buttons) else ""
        if data:
            await self._turn(chat_id, data, f"cb:{query.id}")

    async def _turn(self, chat_id: str, text: str, delivery_id: str) -> None:
        replies = await self.app["router"].handle(
            InboundMessage(channel=CHANNEL, user_id=chat_id, text=text, delivery_id=delivery_id))
        await self.send(chat_id, replies)

    # --- polling mode ---------------------------------------------------------------------

    async def poll(self) -> None:
        offset = None
        delay = 1.0
        while True:
            try:
                await self.ready()
                if offset is None:
                    await self.bot.delete_webhook()
                updates = await self.bot.get_updates(offset=offset, timeout=25,
                                                     allowed_updates=["message", "callback_query"])
                delay = 1.0
                for update in updates:
                    offset = update.update_id + 1
                    try:
                        await self.process(update)
                    except Exception:
                        logger.exception("telegram update failed")
                if offset is None:
                    offset = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("telegram polling: %s; retrying in %.0f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def start(self, _app=None) -> None:
        if self.config.mode == "polling":
            self._poller = asyncio.ensure_future(self.poll())
        else:
            try:
                await self.ready()
            except Exception as exc:            # retried on the first update
                logger.warning("telegram not reachable at startup: %s", type(exc).__name__)

    async def close(self, _app=None) -> None:
        if self._poller is not None:
            self._poller.cancel()
        if self._initialized:
            try:
                await self.bot.shutdown()
            except Exception:
                pass


def parse_update(data: Any, bot: Bot | None = None) -> Update:
    """A Bot API update as python-telegram-bot's :class:`Update`; ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("update must be a JSON object")
    if not isinstance(data.get("update_id"), int) or isinstance(data.get("update_id"), bool):
        raise ValueError("update_id missing or not an integer")
    for key in ("message", "callback_query"):
        if key in data and not isinstance(data[key], dict):
            raise ValueError(f"{key} must be an object")
    try:
        update = Update.de_json(data, bot)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a Telegram update: {type(exc).__name__}")
    if update is None:
        raise ValueError("empty update")
    if update.message is not None and update.message.chat is None:
        raise ValueError("message without chat")
    return update


async def webhook_off(request: web.Request) -> web.Response:
    return web.json_response({"ok": False, "error": "telegram webhook is off"}, status=404)


def setup(app: web.Application) -> None:
    config = TelegramConfig.from_env()
    if config is None:   # the route exists (one documented surface) but refuses everything
        logger.info("telegram connector off (KEFU_TELEGRAM_TOKEN unset)")
        app.router.add_post("/webhooks/telegram", webhook_off)
        return
    # httpx logs every request URL at INFO, and a Bot API URL carries the bot's token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    channel = TelegramChannel(app, config)
    app["telegram"] = channel
    if config.mode == "webhook":
        if not config.secret:
            logger.warning("KEFU_TELEGRAM_SECRET unset: every webhook call will be refused")
        app.router.add_post("/webhooks/telegram", channel.webhook)
    else:
        app.router.add_post("/webhooks/telegram", webhook_off)
    app["senders"][CHANNEL] = channel.push
    app.on_startup.append(channel.start)
    app.on_cleanup.append(channel.close)
