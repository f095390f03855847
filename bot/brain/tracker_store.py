"""Rasa's conversation trackers in one SQLite file, kept open and in WAL mode.

Rasa's SQLTrackerStore on SQLite (the single-machine default here, ``make run``) gets
SQLAlchemy 1.4's ``NullPool``: every tracker read and every save opens the file anew,
reads the schema and, in the default rollback-journal mode with ``synchronous=FULL``,
syncs the disk more than once per commit. Profiled under 10 concurrent customers that
was ~38 % of Rasa's CPU (README, "Performance"). This subclass changes only the
connection: a pool of open connections, WAL (readers never wait for the writer) and
``synchronous=NORMAL`` (no fsync per commit; still durable when a process crashes, only an
operating-system crash may lose the last commits). Tables, queries and the event format
are Rasa's, so a tracker file written by either class is read by the other.

Used through ``endpoints.yml``::

    tracker_store:
      type: bot.brain.tracker_store.SQLiteTrackerStore
      db: var/trackers.db
"""
from __future__ import annotations

from typing import Any, Optional, Text

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from sqlalchemy.pool import QueuePool


def _pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


class SQLiteTrackerStore(SQLTrackerStore):
    def __init__(self, domain: Optional[Domain] = None, db: Text = "rasa.db",
                 event_broker: Optional[EventBroker] = None, **kwargs: Any) -> None:
        kwargs.pop("dialect", None)
        super().__init__(domain=domain, dialect="sqlite", db=db, event_broker=event_broker,
                         **kwargs)
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, poolclass=QueuePool, pool_size=2,
                                       connect_args={"timeout": 15, "check_same_thread": False})
        sa.event.listen(self.engine, "connect", _pragmas)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
