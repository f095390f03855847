"""Satisfaction questions asked by the bot, and the lines the bot did not understand.

Answers: :meth:`bot.store.tickets.TicketStore.record_rating` (the customer, ``source`` bot)
and :meth:`bot.store.return_calls.ReturnCallStore.record` (an agent's 回访).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.profile import business as profile
from bot.profile.privacy import mask_customer_text
from bot.store.engine import get_engine, retrying
from bot.store.schema import BotMiss, Satisfaction, Ticket

MAX_MISS_CHARS = 500


class SatisfactionStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def asked(self, *, conversation_id: str, ticket_number: str | None = None,
              handoff_id: int | None = None, agent_id: int | None = None,
              at: dt.datetime | None = None) -> int:
        """The bot asked the customer for a 1–5 score (source ``bot``); once per handoff."""
        at = at or profile.now()

        def work(session):
            ticket_id = None
            if ticket_number:
                ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == ticket_number))
            if handoff_id is not None:
                seen = session.scalar(select(Satisfaction.id).where(
                    Satisfaction.handoff_id == handoff_id, Satisfaction.source == "bot"))
                if seen:
                    return seen
            row = Satisfaction(ticket_id=ticket_id, handoff_id=handoff_id, agent_id=agent_id,
                               conversation_id=conversation_id, source="bot", asked_at=at)
            session.add(row)
            session.flush()
            return row.id
        return retrying(work, engine=self.engine)

    def record_miss(self, conversation_id: str, text: str, confidence: float | None = None,
                    at: dt.datetime | None = None) -> None:
        """A line the bot's fallback answered, stored masked (phones, addresses never in clear)."""
        masked = mask_customer_text(text or "")[:MAX_MISS_CHARS]
        retrying(lambda session: session.add(BotMiss(
            conversation_id=conversation_id, text=masked, confidence=confidence,
            at=at or profile.now())), engine=self.engine)
