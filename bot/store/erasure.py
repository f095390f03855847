"""A customer's right to deletion, as the privacy FAQ promises.

``python -m bot.store.erasure <conversation id> [--trackers URL] [--reason …]`` (or an admin
in the console: ``POST /api/agent/erasure``, bot/workspace/erasure_api.py) erases one
customer's transcript, their Rasa tracker (SQLite or PostgreSQL), every personal field of
their tickets (with the sealed clear copies), what was relayed about them to the agents'
side, their pushes still in the outbox, their bot misses and return-call comments, and
their platform's delivery records; it keeps anonymous statistics (kind, category,
priority, status, times, rating; handoff times and outcome) so reports stay true. The
customer id on what is kept becomes a one-way hash. Every erasure is audited in the
``erasures`` table (who, when, from where, how much; the customer only as that hash).

Rasa's trackers: ``KEFU_TRACKER_URL`` if set (or ``--trackers``); else the SQLite file
endpoints.yml names; else the ``events`` table of the ticket database itself (the scaled
setup keeps Rasa's PostgreSQL trackers in the same database, deploy/endpoints.yml).
"""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml
from sqlalchemy import create_engine, delete, inspect, select, text, update
from sqlalchemy.engine import Engine

from bot.messages import ConversationId
from bot.store.engine import get_engine, retrying
from bot.store.schema import (AgentOutbox, Annotation, BotMiss, Erasure, Handoff, KfOutbox,
                              KfSession, Message, ProcessedDelivery, ReturnCall, Satisfaction,
                              TelegramLink, Ticket, TicketEvent)
from bot.store.wecom_kf import CHANNEL as KF_CHANNEL
from bot.profile.business import PROJECT_ROOT
from bot.settings import setting

ERASED = "[已删除]"
SAME_DATABASE = "same"          # the trackers live in the ticket database (scaled setup)


def anonymous_id(conversation_id: str) -> str:
    return "erased:" + hashlib.sha256(conversation_id.encode()).hexdigest()[:16]


def default_tracker_url(endpoints: Path | None = None) -> str | None:
    """Where Rasa keeps trackers: ``KEFU_TRACKER_URL``, else the SQLite file endpoints.yml
    names (``type: SQL`` with dialect sqlite, or the project's SQLiteTrackerStore), else
    None (the ticket database is tried: :func:`erase_customer`)."""
    configured = setting("KEFU_TRACKER_URL")
    if configured:
        return configured
    path = endpoints or PROJECT_ROOT / "endpoints.yml"
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except OSError:
        return None
    store = config.get("tracker_store") or {}
    kind, db = str(store.get("type") or ""), store.get("db")
    sqlite = (kind.upper() == "SQL" and store.get("dialect") == "sqlite") or \
        kind.endswith("SQLiteTrackerStore")
    if sqlite and db:
        file = Path(db) if Path(db).is_absolute() else PROJECT_ROOT / db
        return f"sqlite:///{file}"
    return None


def _delete_events(engine: Engine, conversation_id: str) -> int | None:
    """Rasa's events of one sender; None when this database has no tracker table."""
    if not inspect(engine).has_table("events"):
        return None
    with engine.begin() as conn:
        return conn.execute(text("DELETE FROM events WHERE sender_id = :sender"),
                            {"sender": conversation_id}).rowcount


def erase_tracker(conversation_id: str, tracker_url: str) -> int:
    """Delete a sender's tracker events from Rasa's SQL tracker store at ``tracker_url``."""
    engine = create_engine(tracker_url, future=True)
    try:
        return _delete_events(engine, conversation_id) or 0
    finally:
        engine.dispose()


def _erase_trackers(conversation_id: str, tracker_url: str | None,
                    engine: Engine) -> Dict[str, Any]:
    if tracker_url and tracker_url != SAME_DATABASE:
        return {"tracker_events": erase_tracker(conversation_id, tracker_url),
                "tracker_store": tracker_url.split(":", 1)[0].split("+", 1)[0]}
    found = _delete_events(engine, conversation_id)      # trackers beside the tickets?
    return {"tracker_events": found or 0,
            "tracker_store": engine.dialect.name if found is not None else None}


def erase_customer(conversation_id: str, *, engine: Engine | None = None,
                   tracker_url: str | None = None, actor: str | None = None,
                   via: str = "cli", reason: str | None = None) -> Dict[str, Any]:
    """Erase one customer (see the module's doc) and audit it; returns what was erased.

    ``tracker_url``: Rasa's tracker store (None: the ticket database's ``events`` table,
    if it has one). ``tracker_store`` in the result names the store reached, or None.
    """
    engine = engine or get_engine()
    conversation_id = str(conversation_id)
    # trackers first (another database, maybe): a failure below retries the whole erasure
    trackers = _erase_trackers(conversation_id, tracker_url, engine)
    anonymous = anonymous_id(conversation_id)

    def work(session) -> Dict[str, Any]:
        lines = session.execute(delete(Message).where(
            Message.conversation_id == conversation_id)).rowcount
        tickets = list(session.scalars(select(Ticket).where(Ticket.customer_id == conversation_id)))
        ids = [ticket.id for ticket in tickets]
        for ticket in tickets:
            # the idempotency key starts with the conversation id: keep it unique, not personal
            ticket.idempotency_key = ticket.idempotency_key.replace(conversation_id, anonymous, 1)
            ticket.customer_id, ticket.description, ticket.order_id = anonymous, ERASED, None
            ticket.description_encrypted = None
            ticket.phone_encrypted = ticket.phone_masked = ticket.phone_last4 = None
            ticket.address_encrypted = ticket.address_masked = None
            ticket.details = {}
        if ids:
            session.execute(update(TicketEvent).where(TicketEvent.ticket_id.in_(ids))
                            .values(note=None, note_encrypted=None))
            session.execute(update(ReturnCall).where(ReturnCall.ticket_id.in_(ids))
                            .values(comment=None))
            for ticket_id in ids:
                session.add(TicketEvent(ticket_id=ticket_id, kind="erased", actor="admin"))
        # Handoffs keep their times and outcome; what was relayed to the agent side goes.
        handoffs = list(session.scalars(select(Handoff.id).where(
            Handoff.conversation_id == conversation_id)))
        if handoffs:
            session.execute(delete(AgentOutbox).where(AgentOutbox.handoff_id.in_(handoffs)))
            session.execute(delete(TelegramLink).where(TelegramLink.handoff_id.in_(handoffs)))
            session.execute(update(Handoff).where(Handoff.id.in_(handoffs)).values(
                conversation_id=anonymous, user_id=anonymous))
            # one still waiting or held is over: nobody is left to answer (no rating asked)
            session.execute(update(Handoff).where(Handoff.id.in_(handoffs),
                                                  Handoff.status != "closed")
                            .values(status="closed", closed_at=dt.datetime.now(dt.timezone.utc),
                                    awaiting_rating=0))
        # pushes to the customer still in the outbox (waiting or dead-lettered) name and quote them
        session.execute(delete(AgentOutbox).where(AgentOutbox.order_key == conversation_id))
        session.execute(update(Annotation).where(Annotation.conversation_id == conversation_id)
                        .values(conversation_id=anonymous))
        misses = session.execute(delete(BotMiss).where(
            BotMiss.conversation_id == conversation_id)).rowcount
        session.execute(update(Satisfaction).where(Satisfaction.conversation_id == conversation_id)
                        .values(conversation_id=anonymous))
        channel, user_id = ConversationId(conversation_id).parts()
        session.execute(delete(KfOutbox).where(KfOutbox.conversation_id == conversation_id))
        if user_id and channel == KF_CHANNEL:       # 微信客服: WeCom's session with them
            session.execute(delete(KfSession).where(KfSession.external_userid == user_id))
        # WeChat events are deduplicated by FromUserName + CreateTime: the key names them.
        deliveries = session.execute(delete(ProcessedDelivery).where(
            ProcessedDelivery.channel == channel,
            ProcessedDelivery.key.contains(user_id))
            .execution_options(synchronize_session=False)).rowcount if user_id else 0
        counts = {"transcript_lines": lines, "tickets_anonymised": len(ids),
                  "handoffs_anonymised": len(handoffs), "bot_misses_deleted": misses,
                  "deliveries_deleted": deliveries, **trackers}
        session.add(Erasure(actor=(actor or "unknown")[:64], via=via, subject=anonymous,
                            counts=counts, reason=(reason or None) and reason[:200]))
        return counts

    return {**retrying(work, engine=engine), "subject": anonymous}


def audit_log(limit: int = 100, *, engine: Engine | None = None) -> List[Dict[str, Any]]:
    """The latest erasures, newest first."""
    def work(session):
        rows = session.scalars(select(Erasure).order_by(Erasure.id.desc()).limit(limit))
        return [{"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "via": r.via,
                 "subject": r.subject, "counts": r.counts, "reason": r.reason} for r in rows]
    return retrying(work, engine=engine or get_engine(), write=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("conversation_id", help="channel:platform id, e.g. wechat:oAbc123")
    parser.add_argument("--trackers", default=default_tracker_url(),
                        help="SQLAlchemy URL of Rasa's tracker store (default: KEFU_TRACKER_URL, "
                             "endpoints.yml's SQLite file, else the ticket database's events)")
    parser.add_argument("--reason", help="why (kept in the audit log)")
    args = parser.parse_args(argv)
    print(json.dumps(erase_customer(args.conversation_id, tracker_url=args.trackers,
                                    actor=f"cli:{getpass.getuser()}", via="cli",
                                    reason=args.reason)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
