"""bot/brain/tracker_store.py: Rasa's SQL trackers, same tables, file kept open in WAL mode."""
from __future__ import annotations

import asyncio
import sqlite3

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.brain.tracker_store import SQLiteTrackerStore

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [request_repair]
slots:
  product:
    type: text
    mappings: [{type: from_entity, entity: product}]
entities: [product]
""")


def _tracker(sender: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    tracker.update(UserUttered("空调坏了", {"name": "request_repair", "confidence": 0.9}))
    tracker.update(SlotSet("product", "空调"))
    tracker.update(ActionExecuted("action_listen"))
    return tracker


def test_saves_and_reads_back_in_wal_mode(tmp_path):
    path = tmp_path / "trackers.db"
    store = SQLiteTrackerStore(DOMAIN, db=str(path))
    asyncio.run(store.save(_tracker("web:a")))
    asyncio.run(store.save(_tracker("web:b")))
    again = asyncio.run(store.retrieve("web:a"))
    assert again is not None
    assert again.get_slot("product") == "空调"
    assert again.latest_message.text == "空调坏了"
    assert sorted(asyncio.run(store.keys())) == ["web:a", "web:b"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.engine.pool.__class__.__name__ == "QueuePool"


def test_reads_what_rasas_own_store_wrote(tmp_path):
    path = tmp_path / "trackers.db"
    plain = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(path))
    asyncio.run(plain.save(_tracker("web:old")))
    plain.engine.dispose()
    ours = SQLiteTrackerStore(DOMAIN, db=str(path))
    tracker = asyncio.run(ours.retrieve("web:old"))
    assert tracker is not None and tracker.get_slot("product") == "空调"
    # and appends to it: the event count grows, nothing is rewritten
    tracker.update(SlotSet("product", "冰箱"))
    asyncio.run(ours.save(tracker))
    assert asyncio.run(SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(path))
                       .retrieve("web:old")).get_slot("product") == "冰箱"
