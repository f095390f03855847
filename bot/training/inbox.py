"""The admins' inbox: customer lines the bot answered (the gateway's transcripts) joined with
what Rasa understood of them (its tracker events: intent, confidence, the actions and answers
that followed), flagged low confidence / fallback / handoff / rephrased, masked for display.

Runs in the gateway (trackers fetched over Rasa's HTTP API by bot/training/admin_api.py)
and in the CLI (trackers read from Rasa's SQLite tracker store, :func:`sql_tracker_events`).
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from sqlalchemy import select

from bot.messages import clean_text
from bot.profile.privacy import mask_customer_text
from bot.store.engine import get_engine, retrying
from bot.store.sealing import unseal_event
from bot.store.schema import Annotation, Message
from bot.settings import setting

LOW_CONFIDENCE = setting("KEFU_LOW_CONFIDENCE")
REPHRASE_SECONDS = 120
HANDOFF_ACTIONS = {"action_request_human"}
FALLBACK_ACTIONS = {"action_handle_fallback", "action_default_fallback"}
FILTERS = ("low", "fallback", "handoff", "rephrased")


def _parse_info(parse: Dict[str, Any]) -> Dict[str, Any]:
    intent = (parse.get("intent") or {})
    name, confidence = intent.get("name"), intent.get("confidence")
    faq = ((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}
    key = faq.get("intent_response_key")
    return {"intent": key if name == "faq" and key else name,
            "confidence": round(float(confidence), 4) if confidence is not None else None}


def turns_from_events(events: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rasa tracker events → one entry per user message with what happened next."""
    turns: List[Dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            info = _parse_info(event.get("parse_data") or {})
            turns.append({"text": event.get("text") or "", "at": event.get("timestamp"),
                          "actions": [], "bot": [], **info})
        elif turns and kind == "action" and event.get("name") not in ("action_listen", None):
            turns[-1]["actions"].append(event["name"])
        elif turns and kind == "bot" and event.get("text"):
            turns[-1]["bot"].append(event["text"])
    return turns


def sql_tracker_events(db_path: Path | str) -> Callable[[List[str]], Dict[str, List[dict]]]:
    """Read trackers straight from Rasa's SQL tracker store (SQLite file) — headless use."""
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{db_path}", future=True)

    def fetch(conversations: List[str]) -> Dict[str, List[dict]]:
        found: Dict[str, List[dict]] = {c: [] for c in conversations}
        if not conversations or not Path(db_path).exists():
            return found
        with engine.connect() as conn:
            for conversation in conversations:
                rows = conn.execute(text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"),
                                    {"s": conversation})
                found[conversation] = [json.loads(unseal_event(r.data)) for r in rows]
        return found
    return fetch


def customer_lines(limit_conversations: int) -> Dict[str, List[Dict[str, Any]]]:
    """The latest customer lines the bot answered, grouped by conversation (newest first)."""
    def lines(session):
        rows = session.scalars(select(Message).where(Message.author == "customer",
                                                     Message.state == "done")
                               .order_by(Message.id.desc()).limit(2000))
        out: Dict[str, List[Dict[str, Any]]] = {}
        for m in rows:
            out.setdefault(m.conversation_id, []).append(
                {"id": m.id, "text": m.text, "at": m.at.isoformat(), "channel": m.channel})
        return out
    by_conversation = retrying(lines, engine=get_engine())
    ordered = sorted(by_conversation, key=lambda c: -max(x["id"] for x in by_conversation[c]))
    return {c: sorted(by_conversation[c], key=lambda x: x["id"])
            for c in ordered[:limit_conversations]}


def annotated_ids() -> set:
    """Ids of the customer messages an admin annotated already (they leave the inbox)."""
    return set(retrying(lambda s: s.scalars(select(Annotation.message_id)).all(),
                        engine=get_engine()))


def build_inbox(lines: Dict[str, List[Dict[str, Any]]], trackers: Dict[str, List[dict]],
                done: set, wanted: Optional[str] = None) -> List[Dict[str, Any]]:
    """Join customer lines with the turns Rasa saw (matched in order by text)."""

    items: List[Dict[str, Any]] = []
    for conversation, customer in lines.items():
        turns = turns_from_events(trackers.get(conversation) or [])
        position = 0
        matched = []
        for line in customer:
            # the transcript keeps a masked copy of lines with a phone, address or order
            # number (bot/store/sealing.py): compare with the turn's text masked alike
            text = clean_text(line["text"])
            for index in range(position, len(turns)):
                if turns[index]["text"] == text or mask_customer_text(turns[index]["text"]) == text:
                    matched.append((line, turns[index], index))
                    position = index + 1
                    break
        for n, (line, turn, index) in enumerate(matched):
            nxt = turns[index + 1] if index + 1 < len(turns) else None
            rephrased = False
            if nxt and turn["at"] and nxt["at"] and nxt["at"] - turn["at"] <= REPHRASE_SECONDS:
                similar = difflib.SequenceMatcher(None, turn["text"], nxt["text"]).ratio() >= 0.35
                confused = turn["intent"] == "nlu_fallback" or (turn["confidence"] or 0) < LOW_CONFIDENCE
                rephrased = similar or (confused and nxt["intent"] != turn["intent"])
            fallback = turn["intent"] == "nlu_fallback" or bool(FALLBACK_ACTIONS & set(turn["actions"]))
            item = {
                "id": line["id"], "conversation_id": conversation, "at": line["at"],
                "text": mask_customer_text(line["text"]), "intent": turn["intent"],
                "confidence": turn["confidence"],
                "low_confidence": (turn["confidence"] or 0) < LOW_CONFIDENCE,
                "fallback": fallback,
                "handoff": bool(HANDOFF_ACTIONS & set(turn["actions"])),
                "rephrased": rephrased,
                "next": [mask_customer_text(t)[:200] for t in turn["bot"][:3]],
                "actions": turn["actions"][:6],
            }
            if line["id"] in done:
                continue
            if wanted and wanted in FILTERS:
                flag = {"low": "low_confidence"}.get(wanted, wanted)
                if not item[flag]:
                    continue
            items.append(item)
    items.sort(key=lambda i: -i["id"])
    return items


def inbox(fetch_trackers: Callable[[List[str]], Dict[str, List[dict]]], wanted: str | None = None,
          limit_conversations: int = 60) -> List[Dict[str, Any]]:
    lines = customer_lines(limit_conversations)
    return build_inbox(lines, fetch_trackers(list(lines)), annotated_ids(), wanted)
