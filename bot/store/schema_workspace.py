"""Tables of the service team's workspace (issue 15): a ticket's SLA clocks, its return call
(回访), satisfaction answers with their source, and the lines the bot did not understand.

Same metadata as :mod:`bot.store.schema` (which imports this module at its end).
"""
from __future__ import annotations

from sqlalchemy import (Column, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, event)

from bot.store.schema import Base, _utcnow



class SlaClock(Base):
    """One of a ticket's two clocks (``first_response``, ``resolution``), in service hours.

    ``state``: active → hit (stopped in time) or missed (ran past its budget). While the
    ticket waits on the customer the clock is paused (``running_since`` None): ``used_s``
    holds the service seconds counted so far; ``due_at`` is the projected deadline while
    it runs. ``calendar``: counts every hour (urgent repairs are dispatched around the clock).
    """

    __tablename__ = "sla_clocks"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    clock = Column(String(16), nullable=False)            # first_response | resolution
    state = Column(String(8), nullable=False, default="active")   # active | hit | missed
    calendar = Column(Integer, nullable=False, default=0)
    budget_s = Column(Float, nullable=False)
    used_s = Column(Float, nullable=False, default=0.0)
    running_since = Column(DateTime(timezone=True))       # None: paused or stopped
    due_at = Column(DateTime(timezone=True))
    started_at = Column(DateTime(timezone=True), nullable=False)
    stopped_at = Column(DateTime(timezone=True))
    breached_at = Column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("ticket_id", "clock", name="uq_sla_clock"),
                      Index("ix_sla_clocks_due", "state", "due_at"))


class ReturnCall(Base):
    """The 回访 of a resolved repair or complaint: due → done | unreachable (or cancelled)."""

    __tablename__ = "return_calls"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    status = Column(String(12), nullable=False, default="due")
    attempts = Column(Integer, nullable=False, default=0)
    due_at = Column(DateTime(timezone=True), nullable=False)
    outcome = Column(String(12))                          # reached | not_reached | refused
    score = Column(Integer)
    comment = Column(Text)
    agent_id = Column(Integer, ForeignKey("agents.id"))   # who recorded the last try
    created_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    finished_at = Column(DateTime(timezone=True))

    __table_args__ = (Index("ix_return_calls_status_due", "status", "due_at"),
                      Index("ix_return_calls_ticket", "ticket_id"),
                      Index("ix_return_calls_created", "created_at"))


class Satisfaction(Base):
    """A satisfaction question and its answer (1–5), with where it came from.

    ``source``: ``bot`` (the bot asked after a handoff closed or a ticket was resolved; the
    customer answered in the chat) or ``return_call`` (an agent's 回访). ``score`` None:
    asked, not (yet) answered, or refused.
    """

    __tablename__ = "satisfaction"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"))
    handoff_id = Column(Integer)
    conversation_id = Column(String(128))
    agent_id = Column(Integer)
    source = Column(String(12), nullable=False)
    score = Column(Integer)
    asked_at = Column(DateTime(timezone=True), nullable=False)
    answered_at = Column(DateTime(timezone=True))

    __table_args__ = (Index("ix_satisfaction_asked", "asked_at"),
                      Index("ix_satisfaction_ticket", "ticket_id"),
                      Index("ix_satisfaction_conversation", "conversation_id", "id"))


class BotMiss(Base):
    """A customer line the bot did not understand (its fallback ran), masked when stored."""

    __tablename__ = "bot_misses"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(128), nullable=False)
    text = Column(Text, nullable=False)
    confidence = Column(Float)
    at = Column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_bot_misses_at", "at"),)


class ReportDay(Base):
    """The lead's dashboard figures of one closed shop-local day, computed once from the raw
    rows (bot/support/report_days.py) and read instead of them; ``figures`` None: a change
    touched the day (``stale_gen``: when), so it is computed again on the next read.
    ``rules``: the definitions' settings it was computed under (other rules: ignored)."""

    __tablename__ = "report_days"

    day = Column(String(10), primary_key=True)            # YYYY-MM-DD, shop time
    rules = Column(String(64), nullable=False, default="")
    figures = Column(Text)                                # JSON
    stale_gen = Column(Integer, nullable=False, default=0)
    computed_at = Column(DateTime(timezone=True))


class ReportMark(Base):
    """A change to a row the dashboard counts, written by database triggers
    (bot/store/report_marks.py): the hour (UTC, hours since 1970) the row belongs to;
    ``wide``: the row is also read by the conversations of the days before (lines, handoffs,
    tickets), else only by its own day's figures (clocks, 回访, satisfaction answers)."""

    __tablename__ = "report_marks"

    id = Column(Integer, primary_key=True)
    hour = Column(Integer, nullable=False)
    wide = Column(Integer, nullable=False, default=1)


class ReportState(Base):
    """One row: the generation counter of the roll-ups' invalidations (``report_days``)."""

    __tablename__ = "report_state"

    id = Column(Integer, primary_key=True)
    gen = Column(Integer, nullable=False, default=0)


@event.listens_for(Base.metadata, "after_create")
def _report_triggers(_metadata, connection, **_kw) -> None:
    """SQLite's schema is ``create_all``: the roll-ups' triggers come with it (PostgreSQL: 0007)."""
    if connection.dialect.name == "sqlite":
        from bot.store.report_marks import install_sqlite

        install_sqlite(connection)
