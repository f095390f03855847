"""Named leases in SQL: one process across every gateway replica runs a job at a time.

A lease is a row (``leases``): its owner and until when it holds. Taking it is a
compare-and-set (free, expired, or already ours), the holder renews it while it works,
and a holder that dies simply stops renewing: another replica takes over once ``until``
has passed. The row also keeps the job's resume point (``cursor``), written only by the
holder, so the next holder goes on where the last one stopped. Works the same on SQLite
(several processes on one file) and PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import socket
import uuid
from typing import Optional

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.store.engine import get_engine, retrying
from bot.store.schema import Lease


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_owner() -> str:
    return f"{socket.gethostname()[:40]}:{uuid.uuid4().hex[:12]}"


class NamedLease:
    def __init__(self, name: str, *, ttl: float, owner: str | None = None,
                 engine: Engine | None = None) -> None:
        self.name = name
        self.ttl = dt.timedelta(seconds=ttl)
        self.owner = owner or new_owner()
        self.engine = engine or get_engine()

    def _ensure(self) -> None:
        def work(session):
            if session.get(Lease, self.name) is None:
                session.add(Lease(name=self.name))
                session.flush()
        try:
            retrying(work, engine=self.engine)
        except IntegrityError:          # another replica created it at the same moment
            pass

    def acquire(self) -> bool:
        """Take or renew the lease; False while another owner holds it."""
        self._ensure()
        now = _now()

        def work(session):
            return session.execute(update(Lease).where(
                Lease.name == self.name,
                or_(Lease.owner.is_(None), Lease.owner == self.owner, Lease.until.is_(None),
                    Lease.until < now)).values(owner=self.owner, until=now + self.ttl)).rowcount == 1
        return retrying(work, engine=self.engine)

    def release(self) -> None:
        retrying(lambda session: session.execute(update(Lease).where(
            Lease.name == self.name, Lease.owner == self.owner).values(owner=None, until=None)),
            engine=self.engine)

    def cursor(self) -> Optional[str]:
        def work(session):
            row = session.get(Lease, self.name)
            return row.cursor if row else None
        return retrying(work, engine=self.engine, write=False)

    def save_cursor(self, value: str) -> bool:
        """Move the resume point; False (nothing written) when the lease is no longer ours."""
        return retrying(lambda session: session.execute(update(Lease).where(
            Lease.name == self.name, Lease.owner == self.owner).values(cursor=str(value))).rowcount == 1,
            engine=self.engine)
