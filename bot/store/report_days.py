"""The dashboard's daily roll-ups (``report_days``) and their invalidation.

A closed day's figures are computed once from the raw rows and stored as JSON; triggers
(bot/store/report_marks.py) note every change to a counted row as a mark (its UTC hour).
:meth:`ReportDayStore.consume` turns the marks into stale days: the day's figures are set to
None and its ``stale_gen`` to a new generation from ``report_state``. A computation records
the generation it started under (``gen0``) and :meth:`ReportDayStore.store` keeps a day only
if no invalidation came after it: a change that commits while a day is being computed is
never lost (it either shows in the raw rows read, or leaves a mark that is consumed with a
later generation). Both writes are short transactions; PostgreSQL's runs at REPEATABLE READ
so the marks read and the marks deleted are the same rows.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Callable, Dict, Iterable, List

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.store.engine import get_engine, retrying
from bot.store.schema import ReportDay, ReportMark, ReportState

# [(hour UTC since 1970, wide)] -> the shop-local days ('YYYY-MM-DD') whose figures they may change
Touched = Callable[[List[tuple]], Iterable[str]]


class ReportDayStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def _consume(self, session, touched: Touched) -> int:
        if session.bind.dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        if not session.execute(update(ReportState).where(ReportState.id == 1)
                               .values(gen=ReportState.gen + 1)).rowcount:
            session.add(ReportState(id=1, gen=1))
            session.flush()
        gen = session.scalar(select(ReportState.gen).where(ReportState.id == 1))
        rows = session.execute(select(ReportMark.hour, ReportMark.wide, func.max(ReportMark.id))
                               .group_by(ReportMark.hour, ReportMark.wide)).all()
        if not rows:
            return gen
        session.execute(delete(ReportMark).where(ReportMark.id <= max(r[2] for r in rows)))
        for day in sorted(set(touched([(int(r[0]), bool(r[1])) for r in rows]))):
            if not session.execute(update(ReportDay).where(ReportDay.day == day).values(
                    figures=None, stale_gen=gen)).rowcount:
                session.add(ReportDay(day=day, rules="", figures=None, stale_gen=gen))
        return gen

    def consume(self, touched: Touched) -> int:
        """Marks -> stale days; returns the generation a computation starting now runs under."""
        try:
            return self._run(lambda session: self._consume(session, touched))
        except IntegrityError:      # two first readers both created report_state's row
            return self._run(lambda session: self._consume(session, touched))

    def cached(self, first: dt.date, last: dt.date, rules: str) -> Dict[dt.date, dict]:
        def work(session):
            return {dt.date.fromisoformat(day): json.loads(figures)
                    for day, figures in session.execute(select(ReportDay.day, ReportDay.figures)
                                                        .where(ReportDay.day >= first.isoformat(),
                                                               ReportDay.day <= last.isoformat(),
                                                               ReportDay.rules == rules,
                                                               ReportDay.figures.isnot(None)))}
        return retrying(work, engine=self.engine, write=False)

    def store(self, figures: Dict[dt.date, dict], rules: str, gen0: int, touched: Touched,
              now: dt.datetime) -> int:
        """Keep the days computed under ``gen0`` that no later change made stale; how many."""
        if not figures:
            return 0

        def work(session):
            self._consume(session, touched)
            kept = 0
            for day, value in sorted(figures.items()):
                key = day.isoformat()
                row = session.get(ReportDay, key)
                if row is not None and row.stale_gen > gen0:
                    continue                       # changed while it was being computed
                text = json.dumps(value, separators=(",", ":"), sort_keys=True)
                if row is None:
                    session.add(ReportDay(day=key, rules=rules, figures=text, stale_gen=0,
                                          computed_at=now))
                else:
                    row.rules, row.figures, row.computed_at = rules, text, now
                kept += 1
            return kept
        try:
            return self._run(work)
        except IntegrityError:      # another process stored the same day first: theirs stands
            return 0

    def _run(self, work):
        return retrying(work, engine=self.engine)
