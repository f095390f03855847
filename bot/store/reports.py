"""What the lead's dashboard reads (bot/support/metrics.py computes the figures from it).

Each query is one range scan on an indexed time column (messages by author and time,
handoffs, tickets, return calls, satisfaction and bot misses by their time), joined on
keys: no list of ids is ever sent back to the database. Rows are plain tuples. What can be
counted by the database is (:meth:`ReportStore.day_counts`: SLA states, CSAT, 回访 by
status); times are read as text on SQLite and parsed by ``datetime.fromisoformat`` (the
column type's own parser costs ~10 µs a value: seconds on a month of 1M tickets).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Dict, List, Optional

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from bot.store.engine import get_engine, retrying
from bot.store.schema import (Agent, BotMiss, Handoff, Message, ReturnCall, Satisfaction, SlaClock,
                              Ticket)


def _aware(value) -> Optional[dt.datetime]:
    if value is None:
        return None
    if isinstance(value, str):                     # SQLite: the stored text, UTC
        try:                                       # 0.4 µs; parse + replace(tzinfo) 2 µs
            return dt.datetime.fromisoformat(value + "+00:00")
        except ValueError:                         # text that carries its own offset
            value = dt.datetime.fromisoformat(value)
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

    def _t(self, column):
        """A time column as selected: text on SQLite (parsed by :func:`_aware`)."""
        if self.engine.dialect.name == "sqlite":
            return type_coerce(column, String).label(column.key)
        return column

    def _read(self, work):
        return retrying(work, engine=self.engine, write=False)

    def load(self, start: dt.datetime, end: dt.datetime, *, lookahead: dt.timedelta,
             top_misses: int = 10) -> ReportData:
        """Everything of [start, end); customer lines and handoffs until ``end + lookahead``
        (a repeat contact after the range's last conversations is seen): the conversations'
        export (the summary reads :meth:`conversation_rows` and :meth:`day_counts`)."""
        later = end + lookahead
        t = self._t

        def work(session):
            lines = self._lines(session, start, later, by_conversation=True)
            handoffs = self._handoffs(session, start, later)
            in_range = (Ticket.created_at >= start, Ticket.created_at < end)
            tickets = [TicketRow(r.id, r.number, r.kind, r.priority, r.status, r.channel,
                                 r.customer_id, r.assignee_id, _aware(r.created_at),
                                 bool(r.escalated_at))
                       for r in session.connection().execute(select(
                           Ticket.id, Ticket.number, Ticket.kind, Ticket.priority, Ticket.status,
                           Ticket.channel, Ticket.customer_id, Ticket.assignee_id,
                           t(Ticket.created_at), Ticket.escalated_at.isnot(None).label(
                               "escalated_at")).where(*in_range))]
            clocks = [ClockRow(r.ticket_id, r.clock, r.state, float(r.used_s or 0), bool(r.stopped))
                      for r in session.connection().execute(select(
                          SlaClock.ticket_id, SlaClock.clock, SlaClock.state, SlaClock.used_s,
                          SlaClock.stopped_at.isnot(None).label("stopped"))
                          .join(Ticket, Ticket.id == SlaClock.ticket_id).where(*in_range))]
            calls = [CallRow(r.ticket_id, r.status, r.attempts, _aware(r.created_at))
                     for r in session.connection().execute(select(
                         ReturnCall.ticket_id, ReturnCall.status, ReturnCall.attempts,
                         t(ReturnCall.created_at)).where(ReturnCall.created_at >= start,
                                                         ReturnCall.created_at < end))]
            answers = [AnswerRow(r.ticket_id, r.handoff_id, r.conversation_id, r.agent_id,
                                 r.source, r.score, _aware(r.asked_at))
                       for r in session.connection().execute(select(
                           Satisfaction.ticket_id, Satisfaction.handoff_id,
                           Satisfaction.conversation_id, Satisfaction.agent_id,
                           Satisfaction.source, Satisfaction.score, t(Satisfaction.asked_at))
                           .where(Satisfaction.asked_at >= start, Satisfaction.asked_at < end))]
            misses = self._misses(session, start, end, top_misses)
            return ReportData(lines, handoffs, tickets, clocks, calls, answers, misses,
                              self._agents(session))
        return self._read(work)

    # --- the pieces the daily roll-ups read (bot/support/report_figures.py) ------------------

    def _lines(self, session, start, later, *, by_conversation: bool = False) -> List[Line]:
        order = ((Message.conversation_id, Message.at, Message.id) if by_conversation
                 else (Message.at, Message.id))
        return [Line(c, ch, _aware(at)) for c, ch, at in session.connection().execute(
            select(Message.conversation_id, Message.channel, self._t(Message.at)).where(
                Message.author == "customer", Message.at >= start, Message.at < later)
            .order_by(*order)).all()]

    def _handoffs(self, session, start, later) -> List[HandoffRow]:
        t = self._t
        return [HandoffRow(r.id, r.conversation_id, r.agent_id, r.status, _aware(r.created_at),
                           _aware(r.first_reply_at), _aware(r.closed_at), r.ticket_number)
                for r in session.connection().execute(select(
                    Handoff.id, Handoff.conversation_id, Handoff.agent_id, Handoff.status,
                    t(Handoff.created_at), t(Handoff.first_reply_at), t(Handoff.closed_at),
                    Handoff.ticket_number).where(
                    Handoff.created_at >= start, Handoff.created_at < later)
                    .order_by(Handoff.id)).all()]

    def _misses(self, session, start, end, top: int) -> List[tuple]:
        return [(text, int(n)) for text, n in session.connection().execute(
            select(BotMiss.text, func.count(BotMiss.id).label("n")).where(
                BotMiss.at >= start, BotMiss.at < end).group_by(BotMiss.text)
            .order_by(func.count(BotMiss.id).desc(), BotMiss.text).limit(top))]

    @staticmethod
    def _agents(session) -> Dict[int, str]:
        return {a.id: a.display_name or a.name for a in session.scalars(select(Agent))}

    def conversation_rows(self, start: dt.datetime, later: dt.datetime) -> tuple:
        """Customer lines of [start, later) in time order, the handoffs opened then, and the
        callback tickets filed then as (customer_id, created_at, number)."""
        def work(session):
            callbacks = [(c, _aware(at), n) for c, at, n in session.connection().execute(
                select(Ticket.customer_id, self._t(Ticket.created_at), Ticket.number).where(
                    Ticket.created_at >= start, Ticket.created_at < later,
                    Ticket.kind == "callback").order_by(Ticket.id)).all()]
            return (self._lines(session, start, later), self._handoffs(session, start, later),
                    callbacks)
        return self._read(work)

    def day_counts(self, start: dt.datetime, end: dt.datetime) -> Dict[str, list]:
        """One day's ticket figures, counted by the database: clock states of the tickets
        opened then, the resolved ones' service seconds (with the assignee), satisfaction
        questions asked then by source/score/agent, 回访 made due then by status."""
        opened = (Ticket.created_at >= start, Ticket.created_at < end)

        def work(session):
            clocks = session.connection().execute(select(SlaClock.clock, SlaClock.state, func.count())
                                     .join(Ticket, Ticket.id == SlaClock.ticket_id)
                                     .where(*opened).group_by(SlaClock.clock, SlaClock.state)).all()
            resolved = session.connection().execute(select(SlaClock.used_s, Ticket.assignee_id)
                                       .join(Ticket, Ticket.id == SlaClock.ticket_id)
                                       .where(*opened, SlaClock.clock == "resolution",
                                              SlaClock.stopped_at.isnot(None))).all()
            answers = session.connection().execute(select(Satisfaction.source, Satisfaction.score,
                                             Satisfaction.agent_id, func.count())
                                      .where(Satisfaction.asked_at >= start,
                                             Satisfaction.asked_at < end)
                                      .group_by(Satisfaction.source, Satisfaction.score,
                                                Satisfaction.agent_id)).all()
            calls = session.connection().execute(select(ReturnCall.status, func.count())
                                    .where(ReturnCall.created_at >= start, ReturnCall.created_at < end)
                                    .group_by(ReturnCall.status)).all()
            return {"clocks": clocks, "resolved": resolved, "answers": answers, "calls": calls}
        return self._read(work)

    def handoffs_opened(self, start: dt.datetime, end: dt.datetime) -> List[HandoffRow]:
        return self._read(lambda session: self._handoffs(session, start, end))

    def top_misses(self, start: dt.datetime, end: dt.datetime, top: int = 10) -> List[tuple]:
        return self._read(lambda session: self._misses(session, start, end, top))

    def agent_names(self) -> Dict[int, str]:
        return self._read(self._agents)

    def ticket_export(self, start: dt.datetime, end: dt.datetime) -> List[tuple]:
        """One row per ticket opened in [start, end), in one query: the ticket, its assignee's
        name, both clocks (state, service seconds, stopped), escalated, its latest 回访 (status,
        attempts) and its latest answered satisfaction score by source (bot, return_call)."""
        fr, res = aliased(SlaClock), aliased(SlaClock)
        latest_call = (select(ReturnCall.status, ReturnCall.attempts)
                       .where(ReturnCall.ticket_id == Ticket.id)
                       .order_by(ReturnCall.created_at.desc(), ReturnCall.id.desc()).limit(1))

        def score(source: str):
            return (select(Satisfaction.score).where(
                Satisfaction.ticket_id == Ticket.id, Satisfaction.source == source,
                Satisfaction.score.isnot(None), Satisfaction.score != 0)
                .order_by(Satisfaction.id.desc()).limit(1).scalar_subquery())

        query = (select(
            Ticket.number, Ticket.kind, Ticket.priority, Ticket.status, Ticket.channel,
            self._t(Ticket.created_at),
            func.coalesce(func.nullif(Agent.display_name, ""), Agent.name),
            fr.state, fr.used_s, fr.stopped_at.isnot(None),
            res.state, res.used_s, res.stopped_at.isnot(None),
            Ticket.escalated_at.isnot(None),
            latest_call.with_only_columns(ReturnCall.status).scalar_subquery(),
            latest_call.with_only_columns(ReturnCall.attempts).scalar_subquery(),
            score("bot"), score("return_call"))
            .outerjoin(Agent, Agent.id == Ticket.assignee_id)
            .outerjoin(fr, (fr.ticket_id == Ticket.id) & (fr.clock == "first_response"))
            .outerjoin(res, (res.ticket_id == Ticket.id) & (res.clock == "resolution"))
            .where(Ticket.created_at >= start, Ticket.created_at < end).order_by(Ticket.id))
        return self._read(lambda session: [
            (*r[:5], _aware(r[5]), *r[6:]) for r in session.connection().execute(query).all()])
