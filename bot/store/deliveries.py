"""What the platform connectors share: once-only deliveries and numbered button choices.

:class:`DeliveryLedger` is the dedup record in SQL (``processed_deliveries``), shared by
every gateway replica. A delivery is claimed *before* it is processed (a crash after the
claim leaves the customer's line in the transcript for the replayer), and its ``reply``
column says how far it got:

* ``NULL`` – claimed, the bot is still answering (a retry waits, never runs the bot);
* ``""``   – answered by push (customer-service API / Bot API): a retry gets ``success``;
* text     – answered in the HTTP reply: a retry gets the same text again.

Only ``NULL`` may change, by compare-and-set, so exactly one party decides how the answer
goes out.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
import unicodedata
from typing import List, Optional, Tuple

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from bot.store.engine import get_engine, retrying
from bot.store.schema import Message, ProcessedDelivery
from bot.messages import Button, OutboundMessage

logger = logging.getLogger(__name__)

PUSHED = ""          # reply column: the answer went (or goes) out by push
ABANDONED_AFTER = 8.0  # seconds an unsettled claim may stand before a retry takes it over
# How long a delivery is remembered. WeChat retries within 15 s; Telegram keeps an
# unconfirmed update for at most 24 h: three days covers both, and the table stays small.
KEEP_FOR = dt.timedelta(days=3)
PRUNE_EVERY = 3600.0  # seconds
CHOICE_RE = re.compile(r"^\s*(\d{1,2})\s*[.。、)）]?\s*$")


class DeliveryLedger:
    def __init__(self, engine=None) -> None:
        self.engine = engine or get_engine()

    def claim(self, channel: str, key: str,
              abandoned_after: float = ABANDONED_AFTER) -> Tuple[bool, Optional[str]]:
        """(True, None) for a first delivery; (False, reply column) for a repeat.

        ``abandoned_after``: how long a claim may stay unsettled before a retry may take it
        over (the channel's answer window: WeChat settles within its passive window).
        """
        key = key[:128]

        def insert(session):
            session.add(ProcessedDelivery(channel=channel, key=key))
            session.flush()

        try:
            retrying(insert, engine=self.engine)
            return True, None
        except IntegrityError:
            if self.take_over_abandoned(channel, key, abandoned_after):
                return True, None
            return False, self.reply(channel, key)

    def take_over_abandoned(self, channel: str, key: str, abandoned_after: float) -> bool:
        """Claim a delivery whose first claimer died before answering.

        A live claimer settles its row within the passive window (a few seconds: answered
        or handed to push), so a row still unsettled after ``ABANDONED_AFTER`` belongs to a
        gateway that crashed between the claim and the transcript: the platform's retry
        takes it over (compare-and-set on the claim time, so only one retry does).
        """
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=abandoned_after)

        def work(session):
            row = session.execute(select(ProcessedDelivery.id, ProcessedDelivery.at).where(
                ProcessedDelivery.channel == channel, ProcessedDelivery.key == key[:128],
                ProcessedDelivery.reply.is_(None))).first()
            if row is None or _aware(row.at) > cutoff:
                return False
            return session.execute(update(ProcessedDelivery).where(
                ProcessedDelivery.id == row.id, ProcessedDelivery.at == row.at,
                ProcessedDelivery.reply.is_(None)).values(
                at=dt.datetime.now(dt.timezone.utc))).rowcount == 1
        return retrying(work, engine=self.engine)

    def reply(self, channel: str, key: str) -> Optional[str]:
        def work(session):
            return session.scalars(select(ProcessedDelivery.reply).where(
                ProcessedDelivery.channel == channel,
                ProcessedDelivery.key == key[:128])).first()
        return retrying(work, engine=self.engine)

    def settle(self, channel: str, key: str, reply: str) -> bool:
        """Set the reply if nobody has yet (compare-and-set from NULL)."""
        def work(session):
            return session.execute(update(ProcessedDelivery).where(
                ProcessedDelivery.channel == channel, ProcessedDelivery.key == key[:128],
                ProcessedDelivery.reply.is_(None)).values(reply=reply)).rowcount == 1
        return retrying(work, engine=self.engine)

    def prune(self, older_than: dt.datetime) -> int:
        """Forget deliveries claimed before ``older_than`` (no platform retries them now)."""
        return retrying(lambda session: session.execute(delete(ProcessedDelivery).where(
            ProcessedDelivery.at < older_than)).rowcount, engine=self.engine)

    async def prune_old(self, keep_for: dt.timedelta = KEEP_FOR) -> int:
        """The gateway's housekeeping (every ``PRUNE_EVERY`` s): forget what no retry needs."""
        return await asyncio.to_thread(self.prune, dt.datetime.now(dt.timezone.utc) - keep_for)

    async def wait_settled(self, channel: str, key: str, timeout: float) -> Optional[str]:
        """Poll the row until its reply is set or ``timeout`` passes (None: still in flight)."""
        deadline = time.monotonic() + timeout
        while True:
            reply = await asyncio.to_thread(self.reply, channel, key)
            if reply is not None or time.monotonic() >= deadline:
                return reply
            await asyncio.sleep(0.2)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def parse_choice(text: str) -> Optional[int]:
    """The option number a customer typed ("2", "２", "2."), or None."""
    match = CHOICE_RE.match(unicodedata.normalize("NFKC", text or ""))
    return int(match.group(1)) if match else None


def last_buttons(conversation_id: str, engine=None, before: int | None = None) -> List[Button]:
    """Buttons offered since the customer's last message (what a number refers to);
    ``before``: the customer's line already stored (the buttons offered before it)."""
    def work(session):
        query = select(Message).where(Message.conversation_id == conversation_id)
        if before is not None:
            query = query.where(Message.id < before)
        rows = session.scalars(query.order_by(Message.id.desc()).limit(20))
        found: List[List[Button]] = []
        for row in rows:
            if row.author == "customer":
                break
            buttons = (row.data or {}).get("buttons") if isinstance(row.data, dict) else None
            if buttons:
                found.append([Button(str(b.get("title", "")), str(b.get("payload", "")))
                              for b in buttons])
        return [b for group in reversed(found) for b in group]
    return retrying(work, engine=engine or get_engine())


def resolve_choice(conversation_id: str, text: str, engine=None,
                   before: int | None = None) -> str:
    """A typed option number becomes that button's payload; anything else stays as is."""
    number = parse_choice(text)
    if number is None:
        return text
    buttons = last_buttons(conversation_id, engine, before)
    if 1 <= number <= len(buttons):
        return buttons[number - 1].payload or buttons[number - 1].title
    return text


def numbered_text(message: OutboundMessage, start: int = 1) -> str:
    """A message with its buttons as numbered options the customer answers with a number."""
    if not message.buttons:
        return message.text
    options = "\n".join(f"{i}. {b.title}" for i, b in enumerate(message.buttons, start))
    return f"{message.text}\n\n{options}\n（回复数字即可选择）"


def joined_text(messages: List[OutboundMessage]) -> str:
    """Several bot messages as one text, options numbered on through all of them.

    The numbers match :func:`last_buttons`, which reads the same buttons back in order.
    """
    parts, start = [], 1
    for message in messages:
        if message.text or message.buttons:
            parts.append(numbered_text(message, start))
            start += len(message.buttons)
    return "\n\n".join(parts)
