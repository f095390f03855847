"""Conversation transcripts: every customer, bot and agent line, in order, in SQL.

Personal data at rest: a line holding a phone, address or order number is stored masked,
with the clear text sealed beside it (bot/store/sealing.py, on every insert). Reads are
masked unless the caller asks for ``clear`` (the assigned agent, the customer's own chat,
the replayer feeding Rasa).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.engine import Engine

from bot.store import sealing
from bot.store.engine import get_engine, retrying
from bot.store.schema import Message

# One line to write: (author, text, data)
Line = Tuple[str, str, Optional[Dict[str, Any]]]
WAITING = ("pending", "replaying")      # customer lines the bot has yet to answer
# ... and those whose turn is still running (a slow Rasa: the answer follows). A new line
# of the conversation queues behind any of them, so turns are answered in order.
UNANSWERED = WAITING + ("processing",)


class TranscriptStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def append(self, conversation_id: str, channel: str, author: str, text: str,
               data: Dict[str, Any] | None = None, state: str | None = None) -> int:
        def work(session):
            row = Message(conversation_id=conversation_id, channel=channel, author=author,
                          text=text, data=data, state=state)
            session.add(row)
            session.flush()
            return row.id
        return retrying(work, engine=self.engine)

    def append_many(self, conversation_id: str, channel: str, lines: Iterable[Line]) -> List[int]:
        """Several lines of one conversation, in this order, in one transaction."""
        lines = list(lines)
        if not lines:
            return []

        def work(session):
            rows = _add_lines(session, conversation_id, channel, lines)
            return [row.id for row in rows]
        return retrying(work, engine=self.engine)

    def open_turn(self, conversation_id: str, channel: str, text: str) -> Tuple[int, bool]:
        """Store a customer line (state ``processing``) and tell whether earlier lines of the
        conversation still wait for the bot (``pending``/``replaying``): one transaction.

        Returns ``(row id, waiting)``. The line is committed when this returns.
        """
        def work(session):
            row = Message(conversation_id=conversation_id, channel=channel, author="customer",
                          text=text, state="processing")
            session.add(row)
            session.flush()
            return row.id, _waiting(session, conversation_id, before=row.id)
        return retrying(work, engine=self.engine)

    def waiting(self, conversation_id: str, before: int | None = None) -> bool:
        """Are lines of the conversation (before line ``before``) still unanswered?"""
        return retrying(lambda session: _waiting(session, conversation_id, before),
                        engine=self.engine, write=False)

    def close_turn(self, message_id: int, state: str, conversation_id: str, channel: str,
                   replies: Iterable[Line]) -> List[int]:
        """Move the customer line to ``state`` and store the replies, in order: one transaction.

        Returns the replies' row ids.
        """
        replies = list(replies)

        def work(session):
            session.execute(update(Message).where(Message.id == message_id).values(state=state))
            return [row.id for row in _add_lines(session, conversation_id, channel, replies)]
        return retrying(work, engine=self.engine)

    def transcript(self, conversation_id: str, *, clear: bool = False) -> List[Dict[str, Any]]:
        """The conversation's lines, phones/addresses/orders masked; ``clear``: as written
        (only for the agent holding the conversation: bot/store/sealing.py)."""
        def work(session):
            rows = session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                   .order_by(Message.id))
            return [_line(m, clear) for m in rows]
        return retrying(work, engine=self.engine, write=False)

    def since(self, conversation_id: str, after_id: int, *,
              authors=("agent", "notice"), clear: bool = False) -> List[Dict[str, Any]]:
        """Lines after ``after_id`` written outside a bot turn: agents' replies and notices.
        ``clear``: as written (the customer's own chat), else masked."""
        def work(session):
            rows = session.scalars(select(Message).where(
                Message.conversation_id == conversation_id, Message.id > after_id,
                Message.author.in_(authors)).order_by(Message.id))
            return [_line(m, clear) for m in rows]
        return retrying(work, engine=self.engine, write=False)

    def set_state(self, message_id: int, state: str, *, expect: str | None = None) -> bool:
        """Move a customer line to ``state``; with ``expect``, only from that state (a claim)."""
        def work(session):
            query = update(Message).where(Message.id == message_id)
            if expect is not None:
                query = query.where(Message.state == expect)
            return session.execute(query.values(state=state)).rowcount == 1
        return retrying(work, engine=self.engine)

    def pending(self, limit: int = 500) -> List[Dict[str, Any]]:
        """Customer lines waiting for the bot, oldest first (any conversation), except those
        behind an earlier line of their conversation whose turn is still running."""
        def work(session):
            earlier = aliased(Message)
            running = exists().where(earlier.conversation_id == Message.conversation_id,
                                     earlier.id < Message.id,
                                     earlier.state.in_(("processing", "replaying")))
            rows = session.scalars(select(Message).where(Message.state == "pending", ~running)
                                   .order_by(Message.id).limit(limit))
            # what the customer wrote, in clear: Rasa must see the phone the form asks for
            return [{"id": m.id, "conversation_id": m.conversation_id, "channel": m.channel,
                     "text": sealing.clear(m.text, m.text_encrypted)} for m in rows]
        return retrying(work, engine=self.engine, write=False)

    def requeue_stale(self, older_than: dt.datetime) -> int:
        """Lines a crashed gateway left mid-turn go back to the queue (persist before ack)."""
        def work(session):
            return session.execute(update(Message).where(
                Message.state.in_(("processing", "replaying")), Message.at < older_than)
                .values(state="pending")).rowcount
        return retrying(work, engine=self.engine)

    def erase(self, conversation_id: str) -> int:
        def work(session):
            return session.execute(delete(Message).where(
                Message.conversation_id == conversation_id)).rowcount
        return retrying(work, engine=self.engine)


def _line(m: Message, clear: bool) -> Dict[str, Any]:
    return {"id": m.id, "author": m.author,
            "text": sealing.clear(m.text, m.text_encrypted) if clear else m.text,
            "data": m.data, "at": m.at.isoformat()}


def _waiting(session, conversation_id: str, before: int | None = None) -> bool:
    """Is a line of the conversation (before line ``before``) still unanswered?"""
    query = select(Message.id).where(Message.conversation_id == conversation_id,
                                     Message.state.in_(UNANSWERED))
    if before is not None:
        query = query.where(Message.id < before)
    return session.scalars(query.limit(1)).first() is not None


def _add_lines(session, conversation_id: str, channel: str, lines: List[Line]) -> List[Message]:
    rows = [Message(conversation_id=conversation_id, channel=channel, author=author, text=text,
                    data=data) for author, text, data in lines]
    session.add_all(rows)
    session.flush()             # the unit of work inserts one class's rows in the order added
    return rows
