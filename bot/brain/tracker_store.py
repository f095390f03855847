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

Personal data at rest (both classes): an event that may hold what a customer wrote (user
text and its parse data with entities, bot text, slot values, metadata) is stored as
``{"kefu_sealed": "<Fernet token>"}`` in the ``data`` column, through a column type that
seals on write and unseals on read, so Rasa's own save and retrieve code runs unchanged
and reads back exactly what it wrote (bot/store/sealing.py; ``KEFU_DATA_KEY``). Rows
written in clear before (or by Rasa's own class) are read as they are. Type, timestamp,
intent and action names stay in their columns in clear: Rasa queries by them. The scaled
setup uses :class:`EncryptedSQLTrackerStore` (any dialect: PostgreSQL) with Rasa's pool.
"""
from __future__ import annotations

from typing import Any, Optional, Text

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from sqlalchemy.ext.declarative import declarative_base
from sqlalchemy.pool import QueuePool

from bot.store.sealing import seal_event, unseal_event


class SealedEventData(sa.types.TypeDecorator):
    """Rasa's ``events.data`` (TEXT, an event's JSON), sealed at rest."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return seal_event(value)

    def process_result_value(self, value, dialect):
        return unseal_event(value)


def _pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


class EncryptedSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQLTrackerStore (same table, queries and event format) with the events' data
    sealed at rest. Configured like ``type: SQL`` (dialect, url, port, db, username …)."""

    Base = declarative_base()

    class SQLEvent(Base):
        __tablename__ = "events"

        id = sa.Column(sa.Integer, sa.Sequence("events_seq", optional=True), primary_key=True)
        sender_id = sa.Column(sa.String(255), nullable=False, index=True)
        type_name = sa.Column(sa.String(255), nullable=False)
        timestamp = sa.Column(sa.Float)
        intent_name = sa.Column(sa.String(255))
        action_name = sa.Column(sa.String(255))
        data = sa.Column(SealedEventData)


class SQLiteTrackerStore(EncryptedSQLTrackerStore):
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
