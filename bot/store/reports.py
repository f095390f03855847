"""What the lead's dashboard reads (bot/support/metrics.py computes the figures from it).

Each query is one range scan on an indexed time column (messages by author and time,
handoffs, tickets, return calls, satisfaction and bot misses by their time), joined on
keys: no list of ids is ever sent back to the database. Rows are plain tuples.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Dict, List, Optional

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.store.engine import get_engine, retrying
from bot.store.schema import (Agent, BotMiss, Handoff, Message, ReturnCall, Satisfaction, SlaClock,
                              Ticket)


def _aware(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Line:
    conversation_id: str
    channel: str
    at: dt.datetime


@dataclass(frozen=True)
class HandoffRow:
    id: int
    conversation_id: str
    agent_id: Optional[int]
    status: str
    created_at: dt.datetime
    first_reply_at: Optional[dt.datetime]
    closed_at: Optional[dt.datetime]
    ticket_number: Optional[str]


@dataclass(frozen=True)
class TicketRow:
    id: int
    number: str
    kind: str
    priority: str
    status: str
    channel: str
    customer_id: str
    assignee_id: Optional[int]
    created_at: dt.datetime
    escalated: bool


@dataclass(frozen=True)
class ClockRow:
    ticket_id: int
    clock: str
    state: str
    used_s: float
    stopped: bool


@dataclass(frozen=True)
class CallRow:
    ticket_id: int
    status: str
    attempts: int
    created_at: dt.datetime


@dataclass(frozen=True)
class AnswerRow:
    ticket_id: Optional[int]
    handoff_id: Optional[int]
    conversation_id: Optional[str]
    agent_id: Optional[int]
    source: str
    score: Optional[int]
    asked_at: dt.datetime


@dataclass
class ReportData:
    lines: List[Line]
    handoffs: List[HandoffRow]
    tickets: List[TicketRow]
    clocks: List[ClockRow]
    calls: List[CallRow]
    answers: List[AnswerRow]
    misses: List[tuple]            # (masked text, count)
    agents: Dict[int, str]


class ReportStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def load(self, start: dt.datetime, end: dt.datetime, *, lookahead: dt.timedelta,
             top_misses: int = 10) -> ReportData:
        """Everything of [start, end); customer lines and handoffs until ``end + lookahead``
        (a repeat contact after the range's last conversations is seen)."""
        later = end + lookahead

        def work(session):
            lines = [Line(c, ch, _aware(at)) for c, ch, at in session.execute(
                select(Message.conversation_id, Message.channel, Message.at).where(
                    Message.author == "customer", Message.at >= start, Message.at < later)
                .order_by(Message.conversation_id, Message.at, Message.id))]
            handoffs = [HandoffRow(r.id, r.conversation_id, r.agent_id, r.status,
                                   _aware(r.created_at), _aware(r.first_reply_at),
                                   _aware(r.closed_at), r.ticket_number)
                        for r in session.execute(select(
                            Handoff.id, Handoff.conversation_id, Handoff.agent_id, Handoff.status,
                            Handoff.created_at, Handoff.first_reply_at, Handoff.closed_at,
                            Handoff.ticket_number).where(
                            Handoff.created_at >= start, Handoff.created_at < later))]
            in_range = (Ticket.created_at >= start, Ticket.created_at < end)
            tickets = [TicketRow(r.id, r.number, r.kind, r.priority, r.status, r.channel,
                                 r.customer_id, r.assignee_id, _aware(r.created_at),
                                 r.escalated_at is not None)
                       for r in session.execute(select(
                           Ticket.id, Ticket.number, Ticket.kind, Ticket.priority, Ticket.status,
                           Ticket.channel, Ticket.customer_id, Ticket.assignee_id,
                           Ticket.created_at, Ticket.escalated_at).where(*in_range))]
            clocks = [ClockRow(r.ticket_id, r.clock, r.state, float(r.used_s or 0),
                               r.stopped_at is not None)
                      for r in session.execute(select(
                          SlaClock.ticket_id, SlaClock.clock, SlaClock.state, SlaClock.used_s,
                          SlaClock.stopped_at).join(Ticket, Ticket.id == SlaClock.ticket_id)
                          .where(*in_range))]
            calls = [CallRow(r.ticket_id, r.status, r.attempts, _aware(r.created_at))
                     for r in session.execute(select(
                         ReturnCall.ticket_id, ReturnCall.status, ReturnCall.attempts,
                         ReturnCall.created_at).where(ReturnCall.created_at >= start,
                                                      ReturnCall.created_at < end))]
            answers = [AnswerRow(r.ticket_id, r.handoff_id, r.conversation_id, r.agent_id,
                                 r.source, r.score, _aware(r.asked_at))
                       for r in session.execute(select(
                           Satisfaction.ticket_id, Satisfaction.handoff_id,
                           Satisfaction.conversation_id, Satisfaction.agent_id,
                           Satisfaction.source, Satisfaction.score, Satisfaction.asked_at).where(
                           Satisfaction.asked_at >= start, Satisfaction.asked_at < end))]
            misses = [(text, int(n)) for text, n in session.execute(
                select(BotMiss.text, func.count(BotMiss.id).label("n")).where(
                    BotMiss.at >= start, BotMiss.at < end).group_by(BotMiss.text)
                .order_by(func.count(BotMiss.id).desc(), BotMiss.text).limit(top_misses))]
            agents = {a.id: a.display_name or a.name for a in session.scalars(select(Agent))}
            return ReportData(lines, handoffs, tickets, clocks, calls, answers, misses, agents)
        return retrying(work, engine=self.engine, write=False)
