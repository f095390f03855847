"""The transcript's batched turn writes: what they store, in which order, and when."""
import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.store.engine import engine_for, retrying, write_lock
from bot.brain.rasa_client import RasaUnavailable
from bot.gateway.router import BUSY_TEXT, QUEUED_TEXT, Replayer, Router
from bot.store.transcripts import TranscriptStore
from bot.messages import InboundMessage


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "kefu.db"


@pytest.fixture
def store(db_path):
    return TranscriptStore(engine_for(f"sqlite:///{db_path}"))


def raw_rows(db_path, conversation):
    """The rows as another process sees them (committed only)."""
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT id, author, text, state, data FROM messages "
                            "WHERE conversation_id = ? ORDER BY id", (conversation,)).fetchall()


def test_open_turn_commits_the_customer_line_and_reports_waiting_lines(store, db_path):
    row, waiting = store.open_turn("web:a", "web", "你好")
    assert not waiting
    assert raw_rows(db_path, "web:a") == [(row, "customer", "你好", "processing", None)]

    store.set_state(row, "pending")                   # e.g. Rasa was down
    other, _ = store.open_turn("web:b", "web", "别的会话")   # another conversation: not waiting
    store.set_state(other, "done")
    assert store.open_turn("web:b", "web", "再来")[1] is False
    second, waiting = store.open_turn("web:a", "web", "还在吗")
    assert waiting and second > row
    store.set_state(row, "replaying")
    third, waiting = store.open_turn("web:a", "web", "?")
    assert waiting
    store.set_state(row, "done")
    store.set_state(second, "done")
    # a line whose turn still runs (a slow Rasa: state 'processing') holds later ones back too
    fourth, waiting = store.open_turn("web:a", "web", "好了")
    assert waiting is True
    store.set_state(third, "done")
    assert store.waiting("web:a", before=fourth) is False
    assert store.waiting("web:a") is True           # 好了 itself is still open


def test_close_turn_sets_the_state_and_writes_the_replies_in_order(store, db_path):
    row, _ = store.open_turn("web:a", "web", "我要报修")
    buttons = {"buttons": [{"title": "是", "payload": "/affirm"}]}
    ids = store.close_turn(row, "done", "web:a", "web",
                           [("bot", "一", None), ("bot", "二", buttons), ("system", "三", None)])
    assert ids == sorted(ids) and ids[0] > row
    rows = raw_rows(db_path, "web:a")
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("customer", "我要报修", "done"), ("bot", "一", None), ("bot", "二", None),
        ("system", "三", None)]
    assert [r[0] for r in rows[1:]] == ids
    lines = store.transcript("web:a")
    assert lines[2]["data"] == buttons and lines[1]["data"] is None

    # no replies: only the state moves
    row2, _ = store.open_turn("web:a", "web", "嗯")
    assert store.close_turn(row2, "pending", "web:a", "web", []) == []
    assert raw_rows(db_path, "web:a")[-1][3] == "pending"


def test_close_turn_is_one_transaction(store, db_path):
    row, _ = store.open_turn("web:a", "web", "你好")
    with pytest.raises(IntegrityError):               # the second reply violates NOT NULL
        store.close_turn(row, "done", "web:a", "web", [("bot", "一", None), ("bot", None, None)])
    assert raw_rows(db_path, "web:a") == [(row, "customer", "你好", "processing", None)]


def test_append_many_keeps_order(store, db_path):
    assert store.append_many("web:a", "web", []) == []
    ids = store.append_many("web:a", "web", [("notice", str(i), None) for i in range(20)])
    assert ids == sorted(ids)
    assert [r[2] for r in raw_rows(db_path, "web:a")] == [str(i) for i in range(20)]


def test_concurrent_turns_lose_nothing_and_keep_each_conversations_order(store, db_path):
    def customer(n):
        for k in range(15):
            row, waiting = store.open_turn(f"web:c{n}", "web", f"q{k}")
            assert not waiting
            store.close_turn(row, "done", f"web:c{n}", "web", [("bot", f"a{k}", None),
                                                                ("bot", f"b{k}", None)])
    threads = [threading.Thread(target=customer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(8):
        rows = raw_rows(db_path, f"web:c{n}")
        assert [r[2] for r in rows] == [x for k in range(15) for x in (f"q{k}", f"a{k}", f"b{k}")]
        assert {r[3] for r in rows if r[1] == "customer"} == {"done"}


def test_writes_wait_for_another_process_holding_the_lock(store, db_path):
    store.open_turn("web:a", "web", "建表")
    locked, release = threading.Event(), threading.Event()

    def holder():                                     # another process's write transaction
        conn = sqlite3.connect(db_path, timeout=30)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(1.0)
        conn.rollback()
        conn.close()

    thread = threading.Thread(target=holder)
    thread.start()
    locked.wait(5)
    started = time.monotonic()
    row, _ = store.open_turn("web:a", "web", "锁着也要存下")
    thread.join()
    assert time.monotonic() - started >= 0.5
    assert raw_rows(db_path, "web:a")[-1][:4] == (row, "customer", "锁着也要存下", "processing")


def test_retrying_releases_the_writers_lock_between_attempts(store):
    lock = write_lock(store.engine)
    calls = []

    def work(session):
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        return "ok"

    seen = []

    def other_writer():                               # another thread's writes
        while len(calls) < 3:
            with lock:
                seen.append(len(calls))
            time.sleep(0.002)

    thread = threading.Thread(target=other_writer)
    thread.start()
    assert retrying(work, engine=store.engine, first_delay=0.05) == "ok"
    thread.join()
    assert len(calls) == 3
    assert {1, 2} & set(seen)         # it got the lock while retrying backed off


class FakeRasa:
    """Rasa's client as the router uses it; ``up`` switches it off and on."""

    def __init__(self):
        self.up = True
        self.heard = []

    async def send(self, sender, text):
        if not self.up:
            raise RasaUnavailable("down")
        self.heard.append((sender, text))
        return [{"text": f"答：{text}", "buttons": [{"title": "好", "payload": "/ok"}]}]

    async def actions_ready(self):
        return True

    async def model_loaded(self):
        return self.up


def test_router_turns_rasa_down_and_replay_in_order(store, db_path):
    rasa = FakeRasa()
    router = Router(rasa, store)
    say = lambda text: router.handle(InboundMessage(channel="web", user_id="u", text=text))

    async def scenario():
        replies = await say("一")
        assert [r.text for r in replies] == ["答：一"]
        rasa.up = False
        assert [r.text for r in await say("二")] == [BUSY_TEXT]
        rasa.up = True
        # "二" still waits: "三" queues behind it instead of overtaking it
        assert [r.text for r in await say("三")] == [QUEUED_TEXT]
        assert await Replayer(router).run_once() == 2

    asyncio.run(scenario())
    assert rasa.heard == [("web:u", "一"), ("web:u", "二"), ("web:u", "三")]
    rows = raw_rows(db_path, "web:u")
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("customer", "一", "done"), ("bot", "答：一", None),
        ("customer", "二", "done"), ("system", BUSY_TEXT, None),
        ("customer", "三", "done"), ("system", QUEUED_TEXT, None),
        ("notice", "答：二", None), ("notice", "答：三", None)]
    assert '"payload": "/ok"' in rows[1][4]
