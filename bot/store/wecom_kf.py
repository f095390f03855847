"""微信客服 (WeCom customer service) state in SQL, shared by every gateway replica.

* :class:`KfStore` cursor methods: one ``kf/sync_msg`` cursor per account (``open_kfid``)
  with a database lease, so one replica pulls at a time, and a request counter, so a
  callback that arrives while another replica pulls is still served.
* :meth:`KfStore.record`: a pulled message is written once: its dedup row
  (``processed_deliveries``, keyed by ``msgid``) and its transcript lines in one
  transaction, before the cursor moves past it. A crash either leaves both or neither.
* :class:`SessionView` / reply budget: WeCom's session state per customer and account,
  the customer's last message time and the replies sent since (WeCom allows 5 within 48 h).
* the outbox (``kf_outbox``): a reply is stored before it is sent and deleted once sent,
  so a gateway that dies mid-send leaves it for the next one.

Synchronous SQLAlchemy: call it through ``asyncio.to_thread`` from the gateway.
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.store.clock import aware as _aware, utcnow as _now
from bot.store.deliveries import PUSHED
from bot.store.engine import get_engine, retrying
from bot.store.schema import KfCursor, KfOutbox, KfSession, Message, ProcessedDelivery

CHANNEL = "wecom_kf"
REPLY_WINDOW = dt.timedelta(hours=48)     # WeCom: replies only within 48 h of the customer's message
MAX_REPLIES = 5                           # … and at most 5 of them per customer message
TOKEN_FRESH = dt.timedelta(minutes=9)     # a callback's sync Token is valid for 10 minutes
ENDED = 4                                 # WeCom's "已结束/未开始"

# One line to write: (author, text, data, state)
Line = Tuple[str, str, Optional[Dict[str, Any]], Optional[str]]


@dataclass(frozen=True)
class Lease:
    """A pass's start: the cursor to pull from, the requests it covers, a usable sync Token."""

    cursor: Optional[str]
    requested: int
    token: Optional[str]


@dataclass(frozen=True)
class SessionView:
    open_kfid: str
    external_userid: str
    service_state: Optional[int]
    state_at: Optional[dt.datetime]
    servicer_userid: Optional[str]
    last_customer_at: Optional[dt.datetime]
    replies: int


def _view(row: KfSession) -> SessionView:
    return SessionView(row.open_kfid, row.external_userid, row.service_state,
                       _aware(row.state_at), row.servicer_userid, _aware(row.last_customer_at),
                       row.replies or 0)


class KfStore:
    def __init__(self, engine=None) -> None:
        self.engine = engine or get_engine()

    def _run(self, work, write: bool = True):
        return retrying(work, engine=self.engine, write=write)

    # --- the cursor and its lease --------------------------------------------------------

    def _ensure_cursor(self, open_kfid: str) -> None:
        def work(session):
            if session.get(KfCursor, open_kfid) is None:
                session.add(KfCursor(open_kfid=open_kfid, requested=0, served=0))
                session.flush()
        try:
            self._run(work)
        except IntegrityError:          # another replica created it at the same moment
            pass

    def request(self, open_kfid: str, token: Optional[str]) -> None:
        """A callback said there is something to pull (``token``: its sync Token)."""
        self._ensure_cursor(open_kfid)
        values: Dict[str, Any] = {"requested": KfCursor.requested + 1}
        if token:
            values.update(sync_token=token[:160], token_at=_now())
        self._run(lambda session: session.execute(
            update(KfCursor).where(KfCursor.open_kfid == open_kfid).values(**values)))

    def acquire(self, open_kfid: str, owner: str, seconds: float) -> Optional[Lease]:
        """Take the account's pull lease (free, expired or already ours); None: someone has it."""
        self._ensure_cursor(open_kfid)
        now = _now()

        def work(session):
            taken = session.execute(update(KfCursor).where(
                KfCursor.open_kfid == open_kfid,
                (KfCursor.lease_owner.is_(None)) | (KfCursor.lease_until < now)
                | (KfCursor.lease_owner == owner))
                .values(lease_owner=owner, lease_until=now + dt.timedelta(seconds=seconds)))
            if taken.rowcount != 1:
                return None
            row = session.get(KfCursor, open_kfid)
            fresh = row.token_at is not None and _aware(row.token_at) > now - TOKEN_FRESH
            return Lease(row.cursor, row.requested, row.sync_token if fresh else None)
        return self._run(work)

    def advance(self, open_kfid: str, owner: str, cursor: str, seconds: float) -> bool:
        """Move the cursor (and extend the lease); False when the lease is no longer ours."""
        until = _now() + dt.timedelta(seconds=seconds)
        return self._run(lambda session: session.execute(update(KfCursor).where(
            KfCursor.open_kfid == open_kfid, KfCursor.lease_owner == owner)
            .values(cursor=cursor, lease_until=until)).rowcount == 1)

    def finish(self, open_kfid: str, owner: str, served: int) -> bool:
        """End a pass that covered ``served`` requests: True and the lease is free when no
        callback came meanwhile; False (lease kept) when another pass is needed."""
        def work(session):
            done = session.execute(update(KfCursor).where(
                KfCursor.open_kfid == open_kfid, KfCursor.lease_owner == owner,
                KfCursor.requested <= served)
                .values(served=served, lease_owner=None, lease_until=None)).rowcount == 1
            if not done:
                session.execute(update(KfCursor).where(
                    KfCursor.open_kfid == open_kfid, KfCursor.lease_owner == owner)
                    .values(served=served))
            return done
        return self._run(work)

    def release(self, open_kfid: str, owner: str) -> None:
        """Give the lease up after a failed pass (the requests stay unserved for a retry)."""
        self._run(lambda session: session.execute(update(KfCursor).where(
            KfCursor.open_kfid == open_kfid, KfCursor.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)))

    def unserved(self) -> List[str]:
        """Accounts with a callback no finished pass covered and nobody pulling (a crash)."""
        now = _now()
        return self._run(lambda session: list(session.scalars(select(KfCursor.open_kfid).where(
            KfCursor.requested > KfCursor.served,
            (KfCursor.lease_owner.is_(None)) | (KfCursor.lease_until < now)))), write=False)

    def cursor(self, open_kfid: str) -> Optional[str]:
        def work(session):
            row = session.get(KfCursor, open_kfid)
            return row.cursor if row else None
        return self._run(work, write=False)

    # --- recording a pulled message once ---------------------------------------------------

    def record(self, key: str, conversation_id: str, lines: Iterable[Line], *, open_kfid: str,
               external_userid: str, customer_at: Optional[dt.datetime] = None,
               state: Optional[int] = None, servicer: Optional[str] = None) -> Optional[List[int]]:
        """Write one pulled message: its dedup row, its lines and the session's change, in one
        transaction. Returns the lines' ids, or None when ``key`` was recorded before."""
        lines = list(lines)

        def work(session):
            session.add(ProcessedDelivery(channel=CHANNEL, key=key[:128], reply=PUSHED))
            session.flush()
            rows = [Message(conversation_id=conversation_id, channel=CHANNEL, author=author,
                            text=text, data=data, state=line_state)
                    for author, text, data, line_state in lines]
            session.add_all(rows)
            session.flush()
            if customer_at is not None or state is not None:
                row = self._session_row(session, open_kfid, external_userid)
                if customer_at is not None:
                    last = _aware(row.last_customer_at)
                    row.last_customer_at = customer_at if last is None else max(last, customer_at)
                    row.replies = 0
                    if row.service_state == ENDED:    # a new message reopens the session
                        row.service_state, row.state_at = 0, _now()
                if state is not None:
                    row.service_state, row.state_at = state, _now()
                    row.servicer_userid = servicer
            return [r.id for r in rows]
        try:
            return self._run(work)
        except IntegrityError:
            # the message's dedup row exists already … unless the session row raced: retry once
            if self.seen(key):
                return None
            return self._run(work)

    def seen(self, key: str) -> bool:
        return self._run(lambda session: session.scalars(select(ProcessedDelivery.id).where(
            ProcessedDelivery.channel == CHANNEL, ProcessedDelivery.key == key[:128]))
            .first() is not None, write=False)

    # --- sessions and the reply budget -----------------------------------------------------

    @staticmethod
    def _session_row(session, open_kfid: str, external_userid: str) -> KfSession:
        row = session.scalars(select(KfSession).where(
            KfSession.open_kfid == open_kfid,
            KfSession.external_userid == external_userid)).first()
        if row is None:
            row = KfSession(open_kfid=open_kfid, external_userid=external_userid, replies=0)
            session.add(row)
            session.flush()
        return row

    def session(self, open_kfid: str, external_userid: str) -> Optional[SessionView]:
        def work(session):
            row = session.scalars(select(KfSession).where(
                KfSession.open_kfid == open_kfid,
                KfSession.external_userid == external_userid)).first()
            return _view(row) if row else None
        return self._run(work, write=False)

    def latest_session(self, external_userid: str) -> Optional[SessionView]:
        """The account this customer wrote to last (where replies to them go)."""
        def work(session):
            rows = session.scalars(select(KfSession).where(
                KfSession.external_userid == external_userid)).all()
            if not rows:
                return None
            epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
            return _view(max(rows, key=lambda r: (_aware(r.last_customer_at) or epoch, r.id)))
        return self._run(work, write=False)

    def set_state(self, open_kfid: str, external_userid: str, state: Optional[int],
                  servicer: Optional[str] = None) -> None:
        def work(session):
            row = self._session_row(session, open_kfid, external_userid)
            row.service_state, row.state_at, row.servicer_userid = state, _now(), servicer
        try:
            self._run(work)
        except IntegrityError:          # created by another replica meanwhile
            self._run(work)

    def take_reply(self, open_kfid: str, external_userid: str) -> Optional[str]:
        """Reserve one reply under WeCom's limits: None when allowed, else why not."""
        return self._run(lambda session: _take_budget(session, open_kfid, external_userid))

    # --- the outbox --------------------------------------------------------------------------

    def enqueue(self, open_kfid: str, external_userid: str, conversation_id: str,
                pieces: Iterable[str], *, kind: str = "text",
                code: Optional[str] = None) -> List[int]:
        """Store replies to send, in order (one transaction)."""
        def work(session):
            rows = [KfOutbox(open_kfid=open_kfid, external_userid=external_userid,
                             conversation_id=conversation_id, kind=kind, code=code,
                             content=piece, msgid=secrets.token_hex(16), status="queued",
                             reserved=0, attempts=0) for piece in pieces]
            session.add_all(rows)
            session.flush()
            return [row.id for row in rows]
        return self._run(work)

    def claim(self, row_id: int, seconds: float) -> Optional["OutboxRow"]:
        """Take a reply to send (queued, or left mid-send by a gateway whose lease ran out)."""
        now = _now()

        def work(session):
            taken = session.execute(update(KfOutbox).where(
                KfOutbox.id == row_id,
                (KfOutbox.status == "queued")
                | ((KfOutbox.status == "sending") & (KfOutbox.lease_until < now)))
                .values(status="sending", lease_until=now + dt.timedelta(seconds=seconds),
                        attempts=KfOutbox.attempts + 1)).rowcount
            if taken != 1:
                return None
            row = session.get(KfOutbox, row_id)
            return OutboxRow(row.id, row.open_kfid, row.external_userid, row.conversation_id,
                             row.kind, row.code, row.content, row.msgid, row.attempts)
        return self._run(work)

    def renew(self, row_id: int, attempt: int, seconds: float) -> bool:
        """Extend a send still in progress, so the sweep does not take it and send it twice.

        ``attempt`` fences the renewal: a gateway whose lease already ran out and whose row
        another one re-claimed (attempts moved on) renews nothing.
        """
        until = _now() + dt.timedelta(seconds=seconds)
        return self._run(lambda session: session.execute(update(KfOutbox).where(
            KfOutbox.id == row_id, KfOutbox.status == "sending", KfOutbox.attempts == attempt)
            .values(lease_until=until)).rowcount == 1)

    def reserve(self, row_id: int) -> Optional[str]:
        """The reply's place in WeCom's budget, taken once however often it is retried."""
        def work(session):
            row = session.get(KfOutbox, row_id)
            if row is None or row.reserved:
                return None
            why = _take_budget(session, row.open_kfid, row.external_userid)
            if why is None:
                row.reserved = 1
            return why
        return self._run(work)

    def sent(self, row_id: int) -> None:
        """WeCom took it, or it was found unsendable and said so: it leaves the outbox."""
        self._run(lambda session: session.execute(
            KfOutbox.__table__.delete().where(KfOutbox.id == row_id)))

    def due(self, queued_before: dt.datetime, limit: int = 200) -> List[int]:
        """Replies a gateway left behind (queued long ago, or mid-send with its lease over)."""
        now = _now()
        return self._run(lambda session: list(session.scalars(select(KfOutbox.id).where(
            ((KfOutbox.status == "queued") & (KfOutbox.created_at < queued_before))
            | ((KfOutbox.status == "sending") & (KfOutbox.lease_until < now)))
            .order_by(KfOutbox.id).limit(limit))), write=False)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    open_kfid: str
    external_userid: str
    conversation_id: str
    kind: str
    code: Optional[str]
    content: str
    msgid: str
    attempts: int


def _take_budget(session, open_kfid: str, external_userid: str) -> Optional[str]:
    now = _now()
    done = session.execute(update(KfSession).where(
        KfSession.open_kfid == open_kfid, KfSession.external_userid == external_userid,
        KfSession.replies < MAX_REPLIES, KfSession.last_customer_at > now - REPLY_WINDOW)
        .values(replies=KfSession.replies + 1)).rowcount == 1
    if done:
        return None
    row = session.scalars(select(KfSession).where(
        KfSession.open_kfid == open_kfid, KfSession.external_userid == external_userid)).first()
    if row is None or row.last_customer_at is None \
            or _aware(row.last_customer_at) <= now - REPLY_WINDOW:
        return "48h"
    return "5"
