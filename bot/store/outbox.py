"""The outbox in SQL: everything the gateway sends outside a turn, until it is delivered.

Synchronous SQLAlchemy (call it through ``asyncio.to_thread``). A row waits until its
target took it (``delivered_at``) or it is given up (``dead_at``); how and when it is
tried is :mod:`bot.support.outbox`. A push to a customer is written together with its
transcript line, in one transaction, so a crash between the two loses neither.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.engine import Connection, Engine

from bot.store.clock import aware as _aware, utcnow as _now
from bot.store.engine import get_engine, retrying
from bot.store.schema import AgentOutbox, Handoff, Message
from bot.store.transcripts import Line, _add_lines

MAX_ERROR = 300


def _iso(value: dt.datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat() if value else None


def _row(r: AgentOutbox) -> Dict[str, Any]:
    return {"id": r.id, "target": r.target, "payload": r.payload, "handoff_id": r.handoff_id,
            "key": r.order_key, "attempts": r.attempts,
            "next_attempt_at": _aware(r.next_attempt_at), "last_error": r.last_error}


class OutboxStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def _run(self, work):
        return retrying(work, engine=self.engine)

    def enqueue(self, target: str, payload: Dict[str, Any], handoff_id: int | None = None,
                key: str | None = None) -> int:
        def work(session):
            row = AgentOutbox(target=target, payload=payload, handoff_id=handoff_id, order_key=key)
            session.add(row)
            session.flush()
            return row.id
        return self._run(work)

    def record_and_enqueue(self, conversation_id: str, channel: str, lines: Sequence[Line],
                           target: str | None, payloads: Sequence[Dict[str, Any]], *,
                           handoff_id: int | None = None,
                           answers: tuple[int, str] | None = None) -> Optional[List[int]]:
        """Transcript lines and their outbox rows (ordered by the conversation), one transaction.

        ``target`` None: only the lines (a channel whose mailbox is the transcript).
        ``answers`` (customer line id, its state now): the lines answer that line, which moves
        to ``done`` in the same transaction; if it is no longer in that state (requeued
        meanwhile) nothing is written and None is returned. Returns the lines' ids.
        """
        lines = list(lines)

        def work(session):
            if answers is not None and session.execute(update(Message).where(
                    Message.id == answers[0], Message.state == answers[1]).values(
                    state="done")).rowcount != 1:
                return None
            ids = [row.id for row in _add_lines(session, conversation_id, channel, lines)]
            if target is not None:
                session.add_all([AgentOutbox(target=target, payload=p, handoff_id=handoff_id,
                                             order_key=str(conversation_id)) for p in payloads])
                session.flush()
            return ids
        return self._run(work)

    def pending(self, target: str, limit: int = 100) -> List[Dict[str, Any]]:
        """The target's rows still to deliver (not delivered, not dead), oldest first."""
        def work(session):
            rows = session.scalars(select(AgentOutbox).where(
                AgentOutbox.target == target, AgentOutbox.delivered_at.is_(None),
                AgentOutbox.dead_at.is_(None)).order_by(AgentOutbox.id).limit(limit))
            return [_row(r) for r in rows]
        return retrying(work, engine=self.engine, write=False)

    def heads(self, target: str, limit: int = 200) -> List[Dict[str, Any]]:
        """The next row to send of each conversation (``order_key``), and rows without a key,
        oldest first: what may go now without overtaking an earlier row of its conversation,
        so a conversation with many rows waiting never hides the others behind a limit."""
        def work(session):
            waiting = (AgentOutbox.target == target, AgentOutbox.delivered_at.is_(None),
                       AgentOutbox.dead_at.is_(None))
            firsts = select(func.min(AgentOutbox.id)).where(
                *waiting, AgentOutbox.order_key.is_not(None)).group_by(AgentOutbox.order_key)
            rows = session.scalars(select(AgentOutbox).where(
                *waiting, or_(AgentOutbox.order_key.is_(None), AgentOutbox.id.in_(firsts)))
                .order_by(AgentOutbox.id).limit(limit))
            return [_row(r) for r in rows]
        return retrying(work, engine=self.engine, write=False)

    def delivered(self, outbox_id: int, *, forget_payload: bool = False) -> None:
        """Taken by the target. ``forget_payload``: drop the text (a customer's message)."""
        values: Dict[str, Any] = {"delivered_at": _now()}
        if forget_payload:
            values["payload"] = {}
        self._run(lambda session: session.execute(update(AgentOutbox).where(
            AgentOutbox.id == outbox_id).values(**values)))

    def failed(self, outbox_id: int, error: str = "", *, retry_at: dt.datetime | None = None,
               charge: bool = True) -> int:
        """Not delivered this time: try again at ``retry_at``; returns the attempts so far."""
        def work(session):
            values: Dict[str, Any] = {"next_attempt_at": retry_at, "last_error": error[:MAX_ERROR]}
            if charge:
                values["attempts"] = AgentOutbox.attempts + 1
            session.execute(update(AgentOutbox).where(AgentOutbox.id == outbox_id).values(**values))
            return session.scalar(select(AgentOutbox.attempts).where(AgentOutbox.id == outbox_id)) or 0
        return self._run(work)

    def dead(self, outbox_id: int, error: str) -> None:
        """Given up: refused for good, or out of attempts. Kept (with its payload) for agents."""
        self._run(lambda session: session.execute(update(AgentOutbox).where(
            AgentOutbox.id == outbox_id).values(dead_at=_now(), last_error=error[:MAX_ERROR])))

    def requeue(self, outbox_id: int) -> Optional[Dict[str, Any]]:
        """A dead row back in line (an agent asked): fresh attempts, due now. None: not dead."""
        def work(session):
            done = session.execute(update(AgentOutbox).where(
                AgentOutbox.id == outbox_id, AgentOutbox.dead_at.is_not(None),
                AgentOutbox.delivered_at.is_(None)).values(
                dead_at=None, attempts=0, next_attempt_at=None)).rowcount
            row = session.get(AgentOutbox, outbox_id) if done else None
            return _row(row) if row else None
        return self._run(work)

    def get(self, outbox_id: int) -> Optional[Dict[str, Any]]:
        def work(session):
            row = session.get(AgentOutbox, outbox_id)
            if row is None:
                return None
            return {**_row(row), "dead": row.dead_at is not None,
                    "delivered": row.delivered_at is not None}
        return retrying(work, engine=self.engine, write=False)

    def dead_letters(self, *, agent_id: int | None = None, limit: int = 100) -> List[Dict[str, Any]]:
        """Rows given up, newest first; ``agent_id``: only those of that agent's handoffs."""
        def work(session):
            query = select(AgentOutbox, Handoff.agent_id, Handoff.conversation_id).outerjoin(
                Handoff, Handoff.id == AgentOutbox.handoff_id).where(
                AgentOutbox.dead_at.is_not(None), AgentOutbox.delivered_at.is_(None))
            if agent_id is not None:
                query = query.where(Handoff.agent_id == agent_id)
            out = []
            for row, holder, conversation in session.execute(
                    query.order_by(AgentOutbox.id.desc()).limit(limit)):
                out.append({"id": row.id, "target": row.target, "handoff_id": row.handoff_id,
                            "conversation_id": conversation or (
                                row.order_key if row.target.startswith("customer:") else None),
                            "attempts": row.attempts, "last_error": row.last_error,
                            "created_at": _iso(row.created_at), "dead_at": _iso(row.dead_at),
                            "payload": row.payload, "agent_id": holder})
            return out
        return retrying(work, engine=self.engine, write=False)

    def counts(self) -> Dict[str, Dict[str, int]]:
        """Per target: rows waiting and rows dead (for the console and health checks)."""
        def work(session):
            out: Dict[str, Dict[str, int]] = {}
            for target, dead, n in session.execute(
                    select(AgentOutbox.target, AgentOutbox.dead_at.is_not(None), func.count())
                    .where(AgentOutbox.delivered_at.is_(None))
                    .group_by(AgentOutbox.target, AgentOutbox.dead_at.is_not(None))):
                out.setdefault(target, {"waiting": 0, "dead": 0})["dead" if dead else "waiting"] += n
            return out
        return retrying(work, engine=self.engine, write=False)

    def lease(self, target: str) -> "OutboxLease":
        return OutboxLease(self.engine, target)


class OutboxLease:
    """Who delivers one target's outbox right now, when several gateway replicas run.

    Every gateway runs an outbox loop. On PostgreSQL (the scaled-out setup) a round of
    deliveries to a target is done under a session-level advisory lock keyed by the
    target, so one replica at a time reads and sends that target's rows: each goes out
    once and in order. A replica that dies mid-round loses its connection and with it
    the lock; the next holder resends the row it never marked delivered (at least once).
    SQLite means a single gateway process: the lease is always granted.
    """

    def __init__(self, engine: Engine, target: str) -> None:
        self.engine = engine
        digest = hashlib.blake2b(f"kefu-outbox:{target}".encode(), digest_size=8).digest()
        self.key = int.from_bytes(digest, "big", signed=True)
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        conn = self.engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            conn.commit()
        except Exception:       # closing the session releases its advisory locks anyway
            pass
        finally:
            conn.close()
