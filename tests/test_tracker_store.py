"""bot/brain/tracker_store.py: Rasa's SQL trackers, same tables, file kept open in WAL mode,
personal data in the events sealed at rest."""
from __future__ import annotations

import asyncio
import json
import sqlite3

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
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


def _json(text: str) -> str:
    """``text`` as Rasa's json.dumps writes it (non-ASCII escaped)."""
    return json.dumps(text)[1:-1]


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
    # and appends to it: the event count grows, nothing is rewritten; the new event is
    # sealed (personal data at rest), the old rows stay as Rasa wrote them
    tracker.update(SlotSet("product", "冰箱"))
    asyncio.run(ours.save(tracker))
    assert asyncio.run(ours.retrieve("web:old")).get_slot("product") == "冰箱"
    with sqlite3.connect(path) as conn:
        rows = [r[0] for r in conn.execute("SELECT data FROM events WHERE sender_id = 'web:old' "
                                           "ORDER BY id")]
    assert len(rows) == 4 and _json("空调") in rows[1] and _json("冰箱") not in rows[3]
    assert rows[3].startswith('{"kefu_sealed": "')


PHONE, ADDRESS = "13812345678", "北京市朝阳区建国路88号3单元501室"

FORM_DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [inform]
entities: [phone]
slots:
  phone:
    type: text
    mappings: [{type: from_entity, entity: phone}]
  address:
    type: text
    mappings: [{type: from_text}]
""")


def _form_tracker(sender: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, FORM_DOMAIN.slots)
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered(f"我的电话{PHONE}，地址{ADDRESS}",
                               {"name": "inform", "confidence": 0.9},
                               [{"entity": "phone", "value": PHONE, "start": 4, "end": 15}]))
    tracker.update(SlotSet("phone", PHONE))
    tracker.update(SlotSet("address", ADDRESS))
    tracker.update(BotUttered(f"好的，我们会打 {PHONE} 联系您"))
    tracker.update(ActionExecuted("action_listen"))
    return tracker


def _raw_events(path, sender):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type_name, intent_name, action_name, data FROM events "
                            "WHERE sender_id = ? ORDER BY id", (sender,)).fetchall()


def test_personal_data_in_events_is_sealed_at_rest_and_read_back_by_rasa(tmp_path):
    """Issue 18 item 11: user text, entities, slot values and bot text are not in the file
    in clear; Rasa reads back exactly the events it wrote."""
    path = tmp_path / "trackers.db"
    store = SQLiteTrackerStore(FORM_DOMAIN, db=str(path))
    tracker = _form_tracker("web:pii")
    asyncio.run(store.save(tracker))
    raw = _raw_events(path, "web:pii")
    dump = "\n".join(str(r) for r in raw)
    assert PHONE not in dump and "5678" not in dump and _json("朝阳") not in dump
    # what Rasa queries by stays in clear: event type, intent and action names
    assert [r[0] for r in raw] == ["action", "user", "slot", "slot", "bot", "action"]
    assert raw[1][1] == "inform" and raw[0][2] == "action_listen"
    assert raw[0][3].startswith('{"event": "action"')          # no customer data: readable

    again = asyncio.run(SQLiteTrackerStore(FORM_DOMAIN, db=str(path)).retrieve("web:pii"))
    assert [e.as_dict() for e in again.events] == [e.as_dict() for e in tracker.events]
    assert again.get_slot("phone") == PHONE and again.get_slot("address") == ADDRESS
    assert again.latest_message.entities[0]["value"] == PHONE
    # a second save appends only the new events (Rasa counts the stored ones)
    again.update(SlotSet("phone", "13900001111"))
    asyncio.run(store.save(again))
    assert len(_raw_events(path, "web:pii")) == 7
    assert asyncio.run(store.retrieve("web:pii")).get_slot("phone") == "13900001111"


def test_encrypted_store_on_postgresql(scratch_pg):
    """The scaled setup's trackers (PostgreSQL): sealed the same way, read back by Rasa."""
    from sqlalchemy import text

    from bot.brain.tracker_store import EncryptedSQLTrackerStore

    url = scratch_pg.url
    store = EncryptedSQLTrackerStore(FORM_DOMAIN, dialect="postgresql", host=url.host,
                                     port=url.port or 5432, db=url.database,
                                     username=url.username)
    asyncio.run(store.save(_form_tracker("telegram:42")))
    with scratch_pg.connect() as conn:
        data = [r[0] for r in conn.execute(text("SELECT data FROM events ORDER BY id"))]
    assert len(data) == 6 and not any(PHONE in d for d in data)
    tracker = asyncio.run(store.retrieve("telegram:42"))
    assert tracker.get_slot("phone") == PHONE
    store.engine.dispose()
