"""Who answers a customer's message: the bot (Rasa) or, in a handoff, a human.

Every inbound message is written to the transcript before anything else happens, so
nothing a customer said is lost if a later step fails. Turns of one conversation are
processed one at a time, in arrival order.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any, Awaitable, Callable, Dict, List, Optional

from bot.rasa_client import RasaClient, RasaUnavailable
from bot.transcripts import TranscriptStore
from connectors.base import Button, InboundMessage, OutboundMessage

logger = logging.getLogger(__name__)

BUSY_TEXT = "系统有点忙，您的消息已收到并保存，我们会尽快回复您，请稍候再试～"
TOO_LONG_TEXT = "消息有点长（最多{limit}字），请分几条发送或简要描述一下～"
EMPTY_TEXT = "您好像发了一条空消息，请问有什么可以帮您？"

KefuEventHandler = Callable[[InboundMessage, Dict[str, Any]], Awaitable[None]]
# A gate sees each message first; returning a list means "answered, don't ask the bot"
# (the handoff plugin relays to the agent side this way). None lets the bot answer.
Gate = Callable[[InboundMessage], Awaitable[Optional[List[OutboundMessage]]]]


class Router:
    def __init__(self, rasa: RasaClient, transcripts: TranscriptStore, *,
                 max_chars: int = 1000) -> None:
        self.rasa = rasa
        self.transcripts = transcripts
        self.max_chars = max_chars
        self._locks: Dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.event_handlers: List[KefuEventHandler] = []
        self.gates: List[Gate] = []

    async def _record(self, message: InboundMessage, author: str, text: str,
                      data: Dict[str, Any] | None = None) -> None:
        await asyncio.to_thread(self.transcripts.append, message.conversation_id,
                                message.channel, author, text, data)

    async def handle(self, message: InboundMessage) -> List[OutboundMessage]:
        text = clean_text(message.text)
        async with self._locks[message.conversation_id]:
            await self._record(message, "customer", message.text)
            if not text:
                replies = [OutboundMessage(EMPTY_TEXT, author="system")]
            elif len(text) > self.max_chars:
                replies = [OutboundMessage(TOO_LONG_TEXT.format(limit=self.max_chars), author="system")]
            else:
                replies = await self._gated(message)
                if replies is None:
                    replies = await self._ask_bot(message, text)
            for reply in replies:
                await self._record(message, reply.author, reply.text,
                                   {"buttons": [b.__dict__ for b in reply.buttons]} if reply.buttons else None)
            return replies

    async def _gated(self, message: InboundMessage) -> Optional[List[OutboundMessage]]:
        for gate in self.gates:
            replies = await gate(message)
            if replies is not None:
                return replies
        return None

    async def _ask_bot(self, message: InboundMessage, text: str) -> List[OutboundMessage]:
        try:
            bot_messages = await self.rasa.send(message.conversation_id, text)
        except RasaUnavailable as exc:
            logger.warning("rasa unavailable for a %s message: %s", message.channel, exc)
            return [OutboundMessage(BUSY_TEXT, author="system")]
        replies: List[OutboundMessage] = []
        for item in bot_messages:
            custom = item.get("custom")
            if isinstance(custom, dict) and "kefu" in custom:
                for handler in self.event_handlers:
                    await handler(message, custom["kefu"])
                continue
            if item.get("text"):
                buttons = [Button(str(b.get("title", "")), str(b.get("payload", "")))
                           for b in item.get("buttons") or []]
                replies.append(OutboundMessage(item["text"], buttons))
        return replies


def clean_text(text: str) -> str:
    """Strip control characters and surrounding whitespace; keep emoji and CJK as is."""
    kept = "".join(ch for ch in (text or "") if ch in "\n\t" or ch.isprintable())
    return kept.strip()
