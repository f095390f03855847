"""Conversation transcripts: every customer, bot and agent line, in order, in SQL."""
from __future__ import annotations

from typing import Any, Dict, List

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from bot.db import get_engine, retrying
from bot.models import Message


class TranscriptStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def append(self, conversation_id: str, channel: str, author: str, text: str,
               data: Dict[str, Any] | None = None) -> int:
        def work(session):
            row = Message(conversation_id=conversation_id, channel=channel, author=author,
                          text=text, data=data)
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

    def erase(self, conversation_id: str) -> int:
        def work(session):
            return session.execute(delete(Message).where(
                Message.conversation_id == conversation_id)).rowcount
        return retrying(work, engine=self.engine)
