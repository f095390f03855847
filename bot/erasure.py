"""A customer's right to deletion, as the privacy FAQ promises.

``python -m bot.erasure <conversation id> [--trackers URL]`` erases one customer's
transcript, their Rasa tracker and every personal field of their tickets, and keeps
anonymous statistics (kind, category, priority, status, times, rating) so reports
stay true. The customer id on kept tickets becomes a one-way hash.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Dict

import yaml
from sqlalchemy import create_engine, delete, select, text, update
from sqlalchemy.engine import Engine

from bot.db import get_engine, retrying
from bot.models import Message, Ticket, TicketEvent
from bot.profile import PROJECT_ROOT

ERASED = "[已删除]"


def anonymous_id(conversation_id: str) -> str:
    return "erased:" + hashlib.sha256(conversation_id.encode()).hexdigest()[:16]


def default_tracker_url() -> str | None:
    """The SQL tracker store configured in endpoints.yml, if any."""
    endpoints = yaml.safe_load((PROJECT_ROOT / "endpoints.yml").read_text()) or {}
    store = endpoints.get("tracker_store") or {}
    if store.get("type") == "SQL" and store.get("dialect") == "sqlite":
        return f"sqlite:///{PROJECT_ROOT / store['db']}"
    return None


def erase_tracker(conversation_id: str, tracker_url: str) -> int:
    engine = create_engine(tracker_url, future=True)
    try:
        with engine.begin() as conn:
            return conn.execute(text("DELETE FROM events WHERE sender_id = :sender"),
                                {"sender": conversation_id}).rowcount
    finally:
        engine.dispose()


def erase_customer(conversation_id: str, *, engine: Engine | None = None,
                   tracker_url: str | None = None) -> Dict[str, int]:
    engine = engine or get_engine()

    def work(session) -> Dict[str, int]:
        lines = session.execute(delete(Message).where(
            Message.conversation_id == conversation_id)).rowcount
        tickets = list(session.scalars(select(Ticket).where(Ticket.customer_id == conversation_id)))
        ids = [ticket.id for ticket in tickets]
        anonymous = anonymous_id(conversation_id)
        for ticket in tickets:
            # the idempotency key starts with the conversation id: keep it unique, not personal
            ticket.idempotency_key = ticket.idempotency_key.replace(conversation_id, anonymous, 1)
            ticket.customer_id, ticket.description, ticket.order_id = anonymous, ERASED, None
            ticket.phone_encrypted = ticket.phone_masked = None
            ticket.address_encrypted = ticket.address_masked = None
            ticket.details = {}
        if ids:
            session.execute(update(TicketEvent).where(TicketEvent.ticket_id.in_(ids))
                            .values(note=None))
            for ticket_id in ids:
                session.add(TicketEvent(ticket_id=ticket_id, kind="erased", actor="admin"))
        return {"transcript_lines": lines, "tickets_anonymised": len(ids)}

    counts = retrying(work, engine=engine)
    if tracker_url:
        counts["tracker_events"] = erase_tracker(conversation_id, tracker_url)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("conversation_id", help="channel:platform id, e.g. wechat:oAbc123")
    parser.add_argument("--trackers", default=default_tracker_url(),
                        help="SQLAlchemy URL of Rasa's tracker store (default: endpoints.yml)")
    args = parser.parse_args(argv)
    print(json.dumps(erase_customer(args.conversation_id, tracker_url=args.trackers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
