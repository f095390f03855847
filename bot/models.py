"""Tables: tickets and their audit trail, conversations and transcripts, webhook dedup.

Words follow what a support team says: a *Ticket* (工单) has *TicketEvents*; a
*Conversation* with one customer on one channel has *Messages* (the transcript).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, Column, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Ticket(Base):
    __tablename__ = "tickets"

    id = Column(Integer, primary_key=True)
    number = Column(String(16), nullable=False, unique=True)
    kind = Column(String(16), nullable=False)           # complaint | repair | return | callback
    category = Column(String(32), nullable=False)
    priority = Column(String(8), nullable=False, default="normal")  # urgent | high | normal
    status = Column(String(16), nullable=False, default="new")
    channel = Column(String(16), nullable=False)
    customer_id = Column(String(128), nullable=False, index=True)
    description = Column(Text, nullable=False, default="")
    order_id = Column(String(32))
    product = Column(String(32))
    phone_encrypted = Column(Text)
    phone_masked = Column(String(16))
    address_encrypted = Column(Text)
    address_masked = Column(String(64))
    details = Column(JSON, nullable=False, default=dict)
    idempotency_key = Column(String(200), nullable=False, unique=True)
    sla_due_at = Column(DateTime(timezone=True), nullable=False)
    rating = Column(Integer)
    created_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow,
                        onupdate=_utcnow)

    events = relationship("TicketEvent", back_populates="ticket", order_by="TicketEvent.id")

    __table_args__ = (Index("ix_tickets_status_due", "status", "sla_due_at"),)


class TicketEvent(Base):
    """Append-only history of a ticket: creation, status changes, notes, return calls."""

    __tablename__ = "ticket_events"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False,
                       index=True)
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    kind = Column(String(24), nullable=False)   # created | status | note | return_call | rating
    actor = Column(String(64), nullable=False)
    from_status = Column(String(16))
    to_status = Column(String(16))
    note = Column(Text)

    ticket = relationship("Ticket", back_populates="events")


class Message(Base):
    """One line of a conversation's transcript (customer, bot or agent)."""

    __tablename__ = "messages"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(128), nullable=False)
    channel = Column(String(16), nullable=False)
    author = Column(String(16), nullable=False)          # customer | bot | agent | system
    text = Column(Text, nullable=False)
    data = Column(JSON)
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)

    __table_args__ = (Index("ix_messages_conversation", "conversation_id", "id"),)


class ProcessedDelivery(Base):
    """A platform delivery (WeChat MsgId, Telegram update_id) seen once, by any replica."""

    __tablename__ = "processed_deliveries"

    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    key = Column(String(128), nullable=False)
    reply = Column(Text)
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)

    __table_args__ = (UniqueConstraint("channel", "key", name="uq_delivery"),)
