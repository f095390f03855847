"""Conversation transcripts: every customer, bot and agent line, in order, in SQL."""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from bot.db import get_engine, retrying
from bot.models import Message


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

    def transcript(self, conversation_id: str) -> List[Dict[str, Any]]:
        def work(session):
            rows = session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                   .order_by(Message.id))
            return [{"id": m.id, "author": m.author, "text": m.text, "data": m.data,
                     "at": m.at.isoformat()} for m in rows]
        return retrying(work, engine=self.engine)

    def since(self, conversation_id: str, after_id: int, *,
              authors=("agent", "notice")) -> List[Dict[str, Any]]:
        """Lines after ``after_id`` written outside a bot turn: agents' replies and notices."""
        def work(session):
            rows = session.scalars(select(Message).where(
                Message.conversation_id == conversation_id, Message.id > after_id,
                Message.author.in_(authors)).order_by(Message.id))
            return [{"id": m.id, "author": m.author, "text": m.text, "data": m.data,
                     "at": m.at.isoformat()} for m in rows]
        return retrying(work, engine=self.engine)

    def set_state(self, message_id: int, state: str, *, expect: str | None = None) -> bool:
        """Move a customer line to ``state``; with ``expect``, only from that state (a claim)."""
        def work(session):
            query = update(Message).where(Message.id == message_id)
            if expect is not None:
                query = query.where(Message.state == expect)
            return session.execute(query.values(state=state)).rowcount == 1
        return retrying(work, engine=self.engine)

    def has_pending(self, conversation_id: str) -> bool:
        def work(session):
            return session.scalars(select(Message.id).where(
                Message.conversation_id == conversation_id,
                Message.state.in_(("pending", "replaying"))).limit(1)).first() is not None
        return retrying(work, engine=self.engine)

    def pending(self, limit: int = 500) -> List[Dict[str, Any]]:
        """Customer lines waiting for the bot, oldest first (any conversation)."""
        def work(session):
            rows = session.scalars(select(Message).where(Message.state == "pending")
                                   .order_by(Message.id).limit(limit))
            return [{"id": m.id, "conversation_id": m.conversation_id, "channel": m.channel,
                     "text": m.text} for m in rows]
        return retrying(work, engine=self.engine)

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
