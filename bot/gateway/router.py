"""Who answers a customer's message: the bot (Rasa) or, in a handoff, a human.

Every inbound message is written to the transcript before anything else happens, so
nothing a customer said is lost if a later step fails. Turns of one conversation are
processed one at a time, in arrival order. When Rasa is down the message waits in the
transcript (state ``pending``) and :class:`Replayer` feeds it to Rasa when it returns;
when Rasa is slow the customer hears so at once and the answer follows as a notice.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from dataclasses import replace
from typing import Any, Awaitable, Callable, Dict, List, Optional

from bot.brain.rasa_client import RasaClient, RasaUnavailable
from bot.gateway.admission import Admission, TurnLocks
from bot.store.outbox import OutboxStore
from bot.store.deliveries import last_buttons
from bot.store.transcripts import TranscriptStore
from bot.support.outbox import Outbox
from bot.messages import Button, ConversationId, InboundMessage, OutboundMessage, clean_text

logger = logging.getLogger(__name__)

BUSY_TEXT = "系统有点忙，您的消息已收到并保存，恢复后会按顺序马上回复您～"
SLOW_TEXT = "收到，正在为您处理，请稍等片刻～"
QUEUED_TEXT = "消息已收到，会按顺序回复您，请稍候～"
TOO_LONG_TEXT = "消息有点长（最多{limit}字），请分几条发送或简要描述一下～"
EMPTY_TEXT = "您好像发了一条空消息，请问有什么可以帮您？"
TOO_FAST_TEXT = "您发送得有点快，请稍等几秒再发～"
# Rasa reads a message starting with "/" as an intent with entities (``/inform{"phone": …}``);
# the normaliser makes a full-width "／" one too. Only a button the bot offered may do that:
# in any other text the slash becomes a look-alike Rasa reads as text (DIVISION SLASH).
INTENT_PREFIXES = ("/", "\uff0f")
TEXT_SLASH = "\u2215"
# Text that is nothing but Rasa's intent syntax (``/request_human``, ``/inform{"phone": …}``)
# and no offered button: not sent to Rasa at all (escaped, its words would still steer the
# classifier to the intent it names); the customer is asked to write in their own words.
COMMAND_RE = re.compile(r"^[/\uff0f][A-Za-z_][\w.\-]*\s*(\{.*\})?\s*$", re.S)
COMMAND_TEXT = "这条消息看起来像一条指令，我没法执行哦～请直接用文字描述您的问题，比如“我要报修”或“转人工”。"

KefuEventHandler = Callable[[InboundMessage, Dict[str, Any]], Awaitable[None]]
# A gate sees each message first; returning a list means "answered, don't ask the bot"
# (the handoff plugin relays to the agent side this way). None lets the bot answer.
Gate = Callable[[InboundMessage], Awaitable[Optional[List[OutboundMessage]]]]
Sender = Callable[[str, List[OutboundMessage]], Awaitable[None]]


class RateLimiter:
    """A token bucket per conversation: bursts are fine, a flood is slowed, others unaffected.

    Per gateway process; with N replicas behind a load balancer a sender gets at most N
    times the rate, which still keeps one flooder from starving everyone else.
    """

    def __init__(self, rate_per_minute: float = 30, burst: int = 10, *,
                 max_keys: int = 100_000) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: Dict[str, tuple[float, float]] = {}   # oldest use first

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._forget_idle(now)
        if tokens < 1:
            self._buckets.pop(key, None)
            self._buckets[key] = (tokens, now)
            return False
        self._buckets.pop(key, None)            # re-inserted last: the dict is in use order
        self._buckets[key] = (tokens - 1, now)
        return True

    def _forget_idle(self, now: float) -> None:
        """Bounded memory: drop buckets that are full again (the same as no bucket), then,
        if a flood of new keys still fills the table, the least recently used half."""
        refill = self.burst / self.rate if self.rate > 0 else float("inf")
        for key in [k for k, (_, last) in self._buckets.items() if now - last >= refill]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            for key in list(self._buckets)[: len(self._buckets) // 2 + 1]:
                del self._buckets[key]


class Router:
    def __init__(self, rasa: RasaClient, transcripts: TranscriptStore, *,
                 max_chars: int = 1000, reply_timeout: float = 8.0,
                 limiter: RateLimiter | None = None, max_turns: int = 32) -> None:
        self.rasa = rasa
        self.transcripts = transcripts
        self.max_chars = max_chars
        self.reply_timeout = reply_timeout
        self.limiter = limiter or RateLimiter()
        self.locks = TurnLocks()        # bounded: an entry lives only while its turn does
        self.admission = Admission(max_turns)     # turns of this gateway in Rasa at once
        self.event_handlers: List[KefuEventHandler] = []
        self.gates: List[Gate] = []
        self.senders: Dict[str, Sender] = {}
        # pushes outside a turn (late answers, replays); the gateway shares its HandoffService's
        self.outbox = Outbox(OutboxStore(transcripts.engine), senders=self.senders)
        self._late: set[asyncio.Task] = set()
        self._actions_ok_until = 0.0

    async def actions_up(self) -> bool:
        """Is the action server answering? Cached for a second while it is."""
        if time.monotonic() < self._actions_ok_until:
            return True
        if await self.rasa.actions_ready():
            self._actions_ok_until = time.monotonic() + 1.0
            return True
        return False

    async def record(self, conversation_id: str, channel: str, author: str, text: str,
                     data: Dict[str, Any] | None = None, state: str | None = None) -> int:
        return await asyncio.to_thread(self.transcripts.append, conversation_id, channel,
                                       author, text, data, state)

    async def welcome(self, message: InboundMessage, greeting: OutboundMessage) -> List[OutboundMessage]:
        """A platform's "new customer" event (a WeChat follow, Telegram /start): the channel's
        welcome is the answer, recorded with its buttons (so a number picks one), without a bot
        turn: no platform event needs an intent of its own (see ``rasa_text``)."""
        await asyncio.to_thread(self.transcripts.append_many, message.conversation_id,
                                message.channel, [("customer", message.text, {"event": "welcome"})]
                                + _lines([greeting]))
        return [greeting]

    async def handle(self, message: InboundMessage, *,
                     line: int | None = None) -> List[OutboundMessage]:
        """One turn. ``line``: the customer line is in the transcript already (state
        ``processing``), written by a connector that records before it acknowledges its
        platform (微信客服 moves its cursor only after the lines are stored)."""
        message = replace(message, text=storable_text(message.text))
        text = clean_text(message.text)
        conversation = message.conversation_id
        async with self.locks[conversation]:
            # The customer line is committed (state "processing") before anything else; the
            # same transaction tells whether earlier lines still wait for the bot.
            if line is None:
                row, waiting = await asyncio.to_thread(self.transcripts.open_turn, conversation,
                                                       message.channel, message.text)
            else:
                row, waiting = line, await asyncio.to_thread(self.transcripts.waiting,
                                                             conversation, line)
            try:
                replies, state = await self._answer(message, text, row, waiting)
            except Exception:
                # Whatever failed (Rasa, the action server, a timeout of either), the line
                # goes back to the queue at once: the replayer answers it before any later
                # message of this conversation, which queues behind it.
                logger.exception("%s turn failed; message queued", message.channel)
                replies, state = [OutboundMessage(BUSY_TEXT, author="system")], "pending"
            # The line's new state and the replies together, in one transaction.
            await asyncio.to_thread(self.transcripts.close_turn, row, state, conversation,
                                    message.channel,
                                    _lines(replies, row if state == "done" else None))
            return replies

    async def _answer(self, message: InboundMessage, text: str, row: int,
                      waiting: bool) -> tuple[List[OutboundMessage], str]:
        """The replies to one customer line and the line's new state: ``done``, ``pending``
        (queued for the replayer) or ``processing`` (Rasa is slow: its answer follows)."""
        if not text:
            return [OutboundMessage(EMPTY_TEXT, author="system")], "done"
        if len(text) > self.max_chars:
            return [OutboundMessage(TOO_LONG_TEXT.format(limit=self.max_chars), author="system")], "done"
        if not self.limiter.allow(message.conversation_id):
            return [OutboundMessage(TOO_FAST_TEXT, author="system")], "done"
        replies = await self._gated(message)
        if replies is not None:
            return replies, "done"
        if waiting:     # earlier lines first: this one joins the queue, in order
            return [OutboundMessage(QUEUED_TEXT, author="system")], "pending"
        return await self._turn(message, text, row)

    async def rasa_text(self, conversation: str, text: str, line: int) -> Optional[str]:
        """What Rasa is sent for a customer's (cleaned) text.

        A leading "/" is Rasa's intent syntax; it passes only when the text is exactly the
        payload of a button the bot offered before this line (a tap on it, or its number
        typed on WeChat), on every channel. Any other "/…" is text: the slash is replaced;
        ``None`` when the text is nothing but intent syntax (it is answered with COMMAND_TEXT).
        """
        if not text.startswith(INTENT_PREFIXES):
            return text
        offered = await asyncio.to_thread(last_buttons, conversation, None, line)
        if any(button.payload == text for button in offered):
            return text
        if COMMAND_RE.match(text):
            return None
        return TEXT_SLASH + text[1:]

    async def _gated(self, message: InboundMessage) -> Optional[List[OutboundMessage]]:
        for gate in self.gates:
            replies = await gate(message)
            if replies is not None:
                return replies
        return None

    async def _turn(self, message: InboundMessage, text: str,
                    row: int) -> tuple[List[OutboundMessage], str]:
        """One bot turn; returns the replies and the customer line's new state."""
        if not await self.actions_up():
            # A form step without its actions would lose the answer: keep it for later.
            logger.warning("action server down, %s message queued", message.channel)
            return [OutboundMessage(BUSY_TEXT, author="system")], "pending"
        bot_text = await self.rasa_text(message.conversation_id, text, row)
        if bot_text is None:
            return [OutboundMessage(COMMAND_TEXT, author="system")], "done"
        task = asyncio.ensure_future(self.send_admitted(message.conversation_id, bot_text))
        try:
            bot_messages = await asyncio.wait_for(asyncio.shield(task), self.reply_timeout)
        except RasaUnavailable as exc:
            logger.warning("rasa unavailable, %s message queued: %s", message.channel, exc)
            return [OutboundMessage(BUSY_TEXT, author="system")], "pending"
        except asyncio.TimeoutError:
            # Rasa has the message; don't send it twice. The line stays "processing" (later
            # messages queue behind it) until its answer comes, pushed as notices, or the
            # call fails after all and the line goes back to the queue.
            late = asyncio.ensure_future(self._deliver_late(message, row, task))
            self._late.add(late)
            late.add_done_callback(self._late.discard)
            return [OutboundMessage(SLOW_TEXT, author="system")], "processing"
        return await self._outcome(message, bot_messages)

    async def send_admitted(self, conversation: str, text: str) -> List[Dict[str, Any]]:
        """``rasa.send`` within the admission limit; over it RasaUnavailable at once, so the
        line waits in the transcript (``pending``) instead of in memory."""
        if not self.admission.try_enter():
            raise RasaUnavailable(f"gateway at its limit of {self.admission.limit} turns in Rasa")
        try:
            return await self.rasa.send(conversation, text)
        finally:
            self.admission.leave()

    async def _outcome(self, message: InboundMessage,
                       bot_messages: List[Dict[str, Any]]) -> tuple[List[OutboundMessage], str]:
        """Rasa's answer as replies, and the line's state."""
        if not bot_messages and not await self.rasa.actions_ready():
            # The action server died during this very turn: Rasa dropped the action's
            # events, so the message is run again (the form re-asks, nothing is filed twice).
            self._actions_ok_until = 0.0
            return [OutboundMessage(BUSY_TEXT, author="system")], "pending"
        return await self._bot_replies(message, bot_messages), "done"

    async def _deliver_late(self, message: InboundMessage, row: int, task: asyncio.Future) -> None:
        """A slow turn's answer, pushed; if the turn fails after all, its line queued again."""
        try:
            replies, state = await self._outcome(message, await task)
            if state == "done":
                await self._finish(message, row, replies, expect="processing")
                return
        except Exception as exc:
            logger.warning("slow %s turn failed; message queued: %s", message.channel,
                           str(exc) or type(exc).__name__)
        try:
            await asyncio.to_thread(self.transcripts.set_state, row, "pending", expect="processing")
        except Exception:   # the line stays "processing": the replayer requeues it when stale
            logger.exception("could not queue a failed %s turn", message.channel)

    async def _finish(self, message: InboundMessage, row: int, replies: List[OutboundMessage],
                      *, expect: str) -> bool:
        """A line answered outside its turn: ``done`` and its answer as notices naming it, one
        transaction with their outbox rows (only from ``expect``: a line requeued meanwhile is
        answered by its replay instead). No moment shows the line done without its answer."""
        notices = [OutboundMessage(r.text, r.buttons, author="notice") for r in replies]
        stored = await self.outbox.push(message.conversation_id, message.channel, message.user_id,
                                        notices, data={"reply_to": row}, answers=(row, expect))
        return stored is not None

    async def push(self, message: InboundMessage, replies: List[OutboundMessage]) -> None:
        """Deliver replies outside a turn: written as notices and, on a channel that pushes,
        queued in the durable outbox in the same transaction (sent in order, retried)."""
        notices = [OutboundMessage(r.text, r.buttons, author="notice") for r in replies]
        if notices:
            await self.outbox.push(message.conversation_id, message.channel, message.user_id,
                                   notices)

    async def _bot_replies(self, message: InboundMessage,
                           bot_messages: List[Dict[str, Any]]) -> List[OutboundMessage]:
        replies: List[OutboundMessage] = []
        for item in bot_messages:
            custom = item.get("custom")
            if isinstance(custom, dict) and "kefu" in custom:
                for handler in self.event_handlers:
                    try:
                        await handler(message, custom["kefu"])
                    except Exception:
                        logger.exception("kefu event handler failed")
                continue
            if item.get("text"):
                buttons = [Button(str(b.get("title", "")), str(b.get("payload", "")))
                           for b in item.get("buttons") or []]
                replies.append(OutboundMessage(item["text"], buttons))
        return replies


class Replayer:
    """Feeds messages kept while Rasa was down to Rasa, in order, once it is back."""

    def __init__(self, router: Router, *, interval: float = 2.0, stale_after: float = 60.0) -> None:
        self.router = router
        self.interval = interval
        # A slow turn's line stays "processing" while its answer may still come (at most
        # Rasa's timeout): only a line older than that belongs to a gateway that died.
        self.stale_after = max(stale_after, getattr(router.rasa, "timeout", 0) + 10)

    async def run_once(self) -> int:
        router = self.router
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=self.stale_after)
        await asyncio.to_thread(router.transcripts.requeue_stale, cutoff)
        rows = await asyncio.to_thread(router.transcripts.pending)
        if not rows or not await router.rasa.model_loaded() or not await router.actions_up():
            return 0
        done, blocked = 0, set()
        for row in rows:
            conversation = row["conversation_id"]
            if conversation in blocked:
                continue
            async with router.locks[conversation]:
                if not await asyncio.to_thread(router.transcripts.set_state, row["id"],
                                               "replaying", expect="pending"):
                    continue          # another replica took it
                channel, user_id = ConversationId(conversation).parts()
                message = InboundMessage(channel=channel, user_id=user_id, text=row["text"])
                try:
                    text = await router.rasa_text(conversation, clean_text(row["text"]), row["id"])
                    if text is None:
                        replies, state = [OutboundMessage(COMMAND_TEXT, author="system")], "done"
                    else:
                        replies, state = await router._outcome(
                            message, await router.send_admitted(conversation, text))
                except Exception as exc:     # RasaUnavailable, or anything: try again later
                    logger.warning("replay of a %s message failed: %s", channel,
                                   str(exc) or type(exc).__name__)
                    state = "pending"
                if state != "done":
                    await asyncio.to_thread(router.transcripts.set_state, row["id"], "pending")
                    blocked.add(conversation)     # keep this conversation's order
                    continue
                await router._finish(message, row["id"], replies, expect="replaying")
                done += 1
        return done



def _lines(replies: List[OutboundMessage], reply_to: int | None = None) -> List[tuple]:
    """Replies as transcript lines: (author, text, data with the buttons and, for an answer,
    ``reply_to``: the customer line it answers)."""
    lines = []
    for reply in replies:
        data: Dict[str, Any] = {"buttons": [b.__dict__ for b in reply.buttons]} if reply.buttons else {}
        if reply_to is not None:
            data["reply_to"] = reply_to
        lines.append((reply.author, reply.text, data or None))
    return lines


def storable_text(text: str) -> str:
    """``text`` without what no database or encoder takes: lone surrogates (``"\\ud800"``, which
    a JSON body may carry) and NUL. Applied to every inbound message before it is stored."""
    text = text or ""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join(ch for ch in text if not "\ud800" <= ch <= "\udfff")
    return text.replace("\x00", "")
