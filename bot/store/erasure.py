"""A customer's right to deletion, as the privacy FAQ promises.

``python -m bot.store.erasure <conversation id> [--trackers URL]`` erases one customer's
transcript, their Rasa tracker, every personal field of their tickets, what was relayed
about them to the agents' side, and their platform's delivery records; it keeps anonymous
statistics (kind, category, priority, status, times, rating; handoff times and outcome)
so reports stay true. The customer id on what is kept becomes a one-way hash.
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

from bot.messages import ConversationId
from bot.store.engine import get_engine, retrying
from bot.store.schema import (AgentOutbox, Annotation, Handoff, Message, ProcessedDelivery,
                        TelegramLink, Ticket, TicketEvent)
from bot.profile.business import PROJECT_ROOT

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
        # Handoffs keep their times and outcome; what was relayed to the agent side goes.
        handoffs = list(session.scalars(select(Handoff.id).where(
            Handoff.conversation_id == conversation_id)))
        if handoffs:
            session.execute(delete(AgentOutbox).where(AgentOutbox.handoff_id.in_(handoffs)))
            session.execute(delete(TelegramLink).where(TelegramLink.handoff_id.in_(handoffs)))
            session.execute(update(Handoff).where(Handoff.id.in_(handoffs)).values(
                conversation_id=anonymous, user_id=anonymous))
        # pushes to the customer still in the outbox (waiting or dead-lettered) name and quote them
        session.execute(delete(AgentOutbox).where(AgentOutbox.order_key == str(conversation_id)))
        session.execute(update(Annotation).where(Annotation.conversation_id == conversation_id)
                        .values(conversation_id=anonymous))
        # WeChat events are deduplicated by FromUserName + CreateTime: the key names them.
        channel, user_id = ConversationId(conversation_id).parts()
        deliveries = session.execute(delete(ProcessedDelivery).where(
            ProcessedDelivery.channel == channel,
            ProcessedDelivery.key.contains(user_id))
            .execution_options(synchronize_session=False)).rowcount if user_id else 0
        return {"transcript_lines": lines, "tickets_anonymised": len(ids),
                "handoffs_anonymised": len(handoffs), "deliveries_deleted": deliveries}

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
