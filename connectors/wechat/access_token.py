"""One access token per platform account, shared by every gateway replica (SQL row + lease)."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Optional

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.store.clock import aware as _aware, utcnow as _utcnow
from bot.store.engine import get_engine, retrying
from bot.store.schema import PlatformToken

logger = logging.getLogger(__name__)


class AccessTokenHolder:
    """The one holder of an app's access token, shared by all replicas through SQL.

    The token and its expiry live in ``platform_tokens``. A replica that finds it missing,
    near expiry or rejected (40001/42001) claims a short lease by compare-and-set and
    fetches a new one; the others wait for the row to change instead of asking too, so
    a burst of requests or replicas causes one fetch, not a stampede.
    """

    MARGIN = dt.timedelta(seconds=300)     # refresh this long before WeChat's expiry
    LEASE = dt.timedelta(seconds=15)

    def __init__(self, name: str, fetch, engine=None) -> None:
        self.name = name
        self.fetch = fetch                 # async () -> (token, expires_in seconds)
        self.engine = engine or get_engine()
        self._lock = asyncio.Lock()
        self._cached: tuple[str, dt.datetime] | None = None

    def _usable(self, token, expires_at, bad) -> bool:
        return bool(token) and token != bad and expires_at is not None \
            and _aware(expires_at) - self.MARGIN > _utcnow()

    def _read(self):
        def work(session):
            row = session.get(PlatformToken, self.name)
            return (row.token, _aware(row.expires_at)) if row else (None, None)
        return retrying(work, engine=self.engine)

    def _claim(self, bad: Optional[str]) -> bool:
        def ensure(session):
            session.add(PlatformToken(name=self.name))
            session.flush()
        try:
            retrying(ensure, engine=self.engine)
        except IntegrityError:
            pass
        now = _utcnow()

        def work(session):
            stale = ((PlatformToken.token.is_(None)) | (PlatformToken.expires_at.is_(None))
                     | (PlatformToken.expires_at < now + self.MARGIN))
            if bad:
                stale = stale | (PlatformToken.token == bad)
            query = update(PlatformToken).where(
                PlatformToken.name == self.name, stale,
                (PlatformToken.lease_until.is_(None)) | (PlatformToken.lease_until < now))
            return session.execute(query.values(lease_until=now + self.LEASE)).rowcount == 1
        return retrying(work, engine=self.engine)

    def _store(self, token: Optional[str], expires_at: Optional[dt.datetime]) -> None:
        def work(session):
            values = {"lease_until": None}
            if token:
                values.update(token=token, expires_at=expires_at)
            session.execute(update(PlatformToken).where(PlatformToken.name == self.name)
                            .values(**values))
        retrying(work, engine=self.engine)

    async def get(self, bad: Optional[str] = None, timeout: float = 20.0) -> str:
        """A valid token; ``bad`` is one the platform just rejected (never returned again)."""
        if self._cached and self._usable(*self._cached, bad):
            return self._cached[0]
        async with self._lock:
            deadline = time.monotonic() + timeout
            while True:
                token, expires_at = await asyncio.to_thread(self._read)
                if self._usable(token, expires_at, bad):
                    self._cached = (token, expires_at)
                    return token
                if await asyncio.to_thread(self._claim, bad):
                    try:
                        token, expires_in = await self.fetch()
                    except BaseException:
                        await asyncio.to_thread(self._store, None, None)
                        raise
                    expires_at = _utcnow() + dt.timedelta(seconds=int(expires_in))
                    await asyncio.to_thread(self._store, token, expires_at)
                    self._cached = (token, expires_at)
                    logger.info("wechat access token refreshed (valid %ss)", expires_in)
                    return token
                if time.monotonic() > deadline:
                    raise TimeoutError("no access token: another replica's refresh hangs")
                await asyncio.sleep(0.2)
