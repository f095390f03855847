"""Timeouts of Rasa and the action server, against real aiohttp fakes that hang (issue 18, item 2).

On Python 3.10 aiohttp's timeouts raise ``asyncio.TimeoutError``, which is not the built-in
``TimeoutError``: every call into Rasa and the action server must treat it as "unavailable".
A hung action server gives the customer the busy notice (never a 5xx), ``/healthz`` says 503,
and a turn that fails after the customer was told to wait is answered before any later
message of that conversation.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.brain.rasa_client import RasaClient, RasaUnavailable
from bot.gateway.router import BUSY_TEXT, QUEUED_TEXT, SLOW_TEXT, Replayer, Router
from bot.messages import InboundMessage
from bot.settings import Settings
from bot.store.engine import engine_for
from bot.store.transcripts import TranscriptStore
from tests.fake_rasa import FakeRasa


@pytest.fixture
def db_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/kefu.db"
    monkeypatch.setenv("KEFU_DATABASE_URL", url)
    return url


def rows(db_url: str, conversation: str):
    path = db_url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        return [(author, text, state, json.loads(data) if data else None)
                for author, text, state, data in conn.execute(
                    "SELECT author, text, state, data FROM messages WHERE conversation_id = ? "
                    "ORDER BY id", (conversation,))]


async def _gateway(fake: FakeRasa, **settings):
    """The real gateway app (create_app) in this loop, pointed at the fake."""
    from bot.gateway.app import create_app

    rasa_server = TestServer(fake.app)
    await rasa_server.start_server()
    base = str(rasa_server.make_url("")).rstrip("/")
    app = create_app(Settings(rasa_url=base, action_url=base, **settings))
    client = TestClient(TestServer(app))
    await client.start_server()
    return rasa_server, client


def test_rasa_client_turns_asyncio_timeouts_into_rasa_unavailable(db_url):
    async def scenario():
        fake = FakeRasa()
        fake.hang = {"webhook", "status", "health"}
        server = TestServer(fake.app)
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        rasa = RasaClient(base, timeout=0.5, action_url=base)
        try:
            with pytest.raises(RasaUnavailable):
                await rasa.send("web:x", "你好")
            assert await rasa.model_loaded() is False      # no exception: "not loaded"
            assert await rasa.actions_ready() is False
        finally:
            await rasa.close()
            await server.close()

    asyncio.run(scenario())


def test_hung_action_server_gives_the_busy_notice_and_healthz_503(db_url):
    """Was: HTTP 504 with an empty body after 3 s, and the line stuck in ``processing``."""
    async def scenario():
        fake = FakeRasa()
        rasa_server, client = await _gateway(fake)
        try:
            fake.hang = {"health"}              # SIGSTOP-ed action server: connects, never answers
            resp = await client.post("/api/chat", json={"sender": "hung1", "message": "我要投诉"})
            assert resp.status == 200
            assert [m["text"] for m in (await resp.json())["messages"]] == [BUSY_TEXT]
            health = await client.get("/healthz")
            assert health.status == 503
            assert await health.json() == {"rasa_model_loaded": True, "action_server": False}
            fake.hang = {"status"}              # Rasa itself hung
            assert (await client.get("/healthz")).status == 503
        finally:
            await client.close()
            await rasa_server.close()

    asyncio.run(scenario())
    assert [(a, t, s) for a, t, s, _ in rows(db_url, "web:hung1")] == [
        ("customer", "我要投诉", "pending"), ("system", BUSY_TEXT, None)]


def test_turn_failing_after_the_wait_notice_is_answered_before_the_next_message(db_url):
    """Rasa slower than its timeout: the customer heard "please wait", then the call failed.

    Was: the late-answer task died on asyncio.TimeoutError with the line already ``done``
    (answer lost), and the next message was answered first (order and form context lost).
    """
    store = TranscriptStore(engine_for(db_url))

    async def scenario():
        fake = FakeRasa()
        fake.hang_texts = {"一"}                    # the first call for 一 never answers
        server = TestServer(fake.app)
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        rasa = RasaClient(base, timeout=1.0, action_url=base)
        router = Router(rasa, store, reply_timeout=0.2)
        say = lambda text: router.handle(InboundMessage(channel="web", user_id="late", text=text))
        try:
            assert [r.text for r in await say("一")] == [SLOW_TEXT]
            # the first line is still running: the next one queues behind it
            assert [r.text for r in await say("二")] == [QUEUED_TEXT]
            assert store.pending() == []               # the replayer may not overtake 一 either
            await asyncio.gather(*router._late)        # the slow call fails (timeout) …
            states = [s for a, _, s, _ in rows(db_url, "web:late") if a == "customer"]
            assert states == ["pending", "pending"]    # … and its line is queued again at once
            assert await Replayer(router).run_once() == 2
        finally:
            await rasa.close()
            await server.close()
        return fake.heard

    heard = asyncio.run(scenario())
    assert heard == ["一", "二"]                       # Rasa saw them in order, each once
    lines = rows(db_url, "web:late")
    assert [(a, t, s) for a, t, s, _ in lines] == [
        ("customer", "一", "done"), ("system", SLOW_TEXT, None),
        ("customer", "二", "done"), ("system", QUEUED_TEXT, None),
        ("notice", "答：一", None), ("notice", "答：二", None)]
    first, second = [i for i, line in enumerate(lines) if line[0] == "customer"]
    ids = [r[0] for r in sqlite3.connect(db_url.split("///", 1)[1]).execute(
        "SELECT id FROM messages WHERE conversation_id = 'web:late' ORDER BY id")]
    assert lines[4][3]["reply_to"] == ids[first] and lines[5][3]["reply_to"] == ids[second]


def test_slow_answer_that_does_come_is_pushed_and_the_line_done(db_url):
    store = TranscriptStore(engine_for(db_url))

    async def scenario():
        fake = FakeRasa()
        fake.delay = 0.6                            # slower than the reply timeout, within Rasa's
        server = TestServer(fake.app)
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        rasa = RasaClient(base, timeout=5.0, action_url=base)
        router = Router(rasa, store, reply_timeout=0.2)
        try:
            replies = await router.handle(InboundMessage(channel="web", user_id="slow", text="三"))
            assert [r.text for r in replies] == [SLOW_TEXT]
            assert [s for a, _, s, _ in rows(db_url, "web:slow") if a == "customer"] == ["processing"]
            await asyncio.gather(*router._late)
        finally:
            await rasa.close()
            await server.close()

    asyncio.run(scenario())
    assert [(a, t, s) for a, t, s, _ in rows(db_url, "web:slow")] == [
        ("customer", "三", "done"), ("system", SLOW_TEXT, None), ("notice", "答：三", None)]


def test_a_late_answer_and_its_line_done_are_one_transaction(db_url):
    """The line becomes done with its notices or not at all (make chaos read a done line
    whose answer was not yet written as lost); a line requeued meanwhile gets nothing."""
    from bot.store.outbox import OutboxStore

    engine = engine_for(db_url)
    store, outbox = TranscriptStore(engine), OutboxStore(engine)
    row, _ = store.open_turn("web:tx", "web", "在吗")
    lines = [("notice", "在的", {"reply_to": row})]
    assert outbox.record_and_enqueue("web:tx", "web", lines, None, [], answers=(row, "replaying")) is None
    assert [(a, s) for a, _, s, _ in rows(db_url, "web:tx")] == [("customer", "processing")]
    ids = outbox.record_and_enqueue("web:tx", "web", lines, None, [], answers=(row, "processing"))
    assert ids and [(a, s) for a, _, s, _ in rows(db_url, "web:tx")] == [
        ("customer", "done"), ("notice", None)]
