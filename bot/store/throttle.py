"""Sign-in throttling in the shared database: back off, never lock out.

Three counters per attempt, each a row of ``sign_in_throttle`` (keys are hashed, so a
password typed into the name field is never stored): the name and the client address
together (``pair``), the name alone (``name``) and the address alone (``addr``). Each kind
allows a few free attempts; after that every attempt pushes the key's ``not_before`` out
by a delay that doubles up to a cap, and an attempt before ``not_before`` is refused
without checking the password (and without counting, so hammering a refused key does
not push it further out).

* ``pair`` (free 5, up to 5 min): one client guessing one name slows down steeply.
* ``name`` (free 10, up to 30 s): guessing one name from many addresses gets one try per
  30 s at most, and the real agent waits at most 30 s: a back-off, not a lockout.
* ``addr`` (free 30, up to 5 min): one client trying many names.

An attempt counts before its password is checked (so parallel guesses cannot all slip
through the free allowance) and is given back when it succeeds. A key forgets its
failures ``WINDOW`` after the last one. All replicas share the rows, so they agree.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Dict, Iterable, List, Tuple

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.store.clock import aware as _aware, utcnow as _now
from bot.store.engine import get_engine, retrying
from bot.store.schema import SignInThrottle

WINDOW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Kind:
    free: int                   # attempts without a wait
    first: float                # seconds after the first attempt over them, doubling …
    cap: float                  # … up to this


KINDS: Dict[str, Kind] = {"pair": Kind(5, 1.0, 300.0), "name": Kind(10, 1.0, 30.0),
                          "addr": Kind(30, 1.0, 300.0)}


def _hashed(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"


def keys_for(name: str, address: str | None) -> List[Tuple[str, str]]:
    """(kind, hashed key) for one attempt of ``name`` from ``address``."""
    name, address = (name or "").strip().lower()[:64], address or "unknown"
    return [("pair", _hashed("pair", f"{name}\n{address}")), ("name", _hashed("name", name)),
            ("addr", _hashed("addr", address))]


def delay(kind: str, failures: int) -> float:
    spec = KINDS[kind]
    if failures <= spec.free:
        return 0.0
    return min(spec.first * 2 ** (failures - spec.free - 1), spec.cap)


class SignInThrottleStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def _ensure(self, keys: Iterable[Tuple[str, str]]) -> None:
        for _, key in keys:
            def work(session, key=key):
                if session.get(SignInThrottle, key) is None:
                    session.add(SignInThrottle(key=key, failures=0))
                    session.flush()
            try:
                retrying(work, engine=self.engine)
            except IntegrityError:          # another request made it at the same moment
                pass

    def admit(self, keys: List[Tuple[str, str]]) -> float:
        """0: go ahead (the attempt is counted); else the seconds to wait (nothing counted)."""
        self._ensure(keys)
        now = _now()

        def work(session):
            rows = {r.key: r for r in session.scalars(
                select(SignInThrottle).where(SignInThrottle.key.in_([k for _, k in keys]))
                .with_for_update())}
            wait = 0.0
            for _, key in keys:
                row = rows[key]
                if row.not_before is not None and _aware(row.not_before) > now:
                    wait = max(wait, (_aware(row.not_before) - now).total_seconds())
            if wait > 0:
                return wait
            for kind, key in keys:
                row = rows[key]
                if row.last_failure_at is None or _aware(row.last_failure_at) < now - WINDOW:
                    row.failures = 0
                row.failures += 1
                row.last_failure_at = now
                pause = delay(kind, row.failures)
                row.not_before = now + dt.timedelta(seconds=pause) if pause else None
            return 0.0
        return retrying(work, engine=self.engine)

    def succeeded(self, keys: List[Tuple[str, str]]) -> None:
        """The attempt was right: the pair starts afresh, name and address get it back."""
        def work(session):
            for kind, key in keys:
                row = session.get(SignInThrottle, key)
                if row is None:
                    continue
                if kind == "pair":
                    session.delete(row)
                    continue
                row.failures = max(0, row.failures - 1)
                pause = delay(kind, row.failures)
                if not pause:
                    row.not_before = None
        retrying(work, engine=self.engine)

    def prune(self) -> int:
        """Forget keys whose window has passed (run now and then)."""
        cutoff = _now() - WINDOW
        return retrying(lambda session: session.execute(delete(SignInThrottle).where(
            SignInThrottle.last_failure_at < cutoff)).rowcount, engine=self.engine)
