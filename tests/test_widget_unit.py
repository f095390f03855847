"""The web widget's server side without the stack: CORS only for the configured host
origins (preflight included), the history endpoint, the welcome, and /widget.js itself.

A real aiohttp app with connectors.web and a real Router on a scratch SQLite transcript; the
bot's turn is answered by a router gate (as the handoff gate does), so no Rasa is needed.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.brain.rasa_client import RasaClient
from bot.gateway.router import Router
from bot.messages import OutboundMessage
from bot.settings import Settings
from bot.store.engine import engine_for
from bot.store.transcripts import TranscriptStore
from connectors import web as web_connector

SHOP = "https://shop.example"
OTHER = "https://evil.example"
SENDER = "w" + "0123456789abcdef" * 2          # the shape widget.js creates


@pytest.fixture
def transcripts(tmp_path):
    return TranscriptStore(engine_for(f"sqlite:///{tmp_path}/widget.db"))


def make_app(transcripts, origins=(SHOP,)) -> web.Application:
    app = web.Application()
    app["settings"] = Settings(widget_origins=tuple(origins))
    router = Router(RasaClient("http://127.0.0.1:9"), transcripts)

    async def bot(message):                     # answers every turn like the bot would
        return [OutboundMessage(f"收到：{message.text}", author="bot")]
    router.gates.append(bot)
    app["router"] = router
    app["senders"] = router.senders
    web_connector.setup(app)
    return app


def run(transcripts, scenario, origins=(SHOP,)):
    async def main():
        client = TestClient(TestServer(make_app(transcripts, origins)))
        await client.start_server()
        try:
            return await scenario(client)
        finally:
            await client.close()
    return asyncio.run(main())


def cors_headers(resp):
    return {k: v for k, v in resp.headers.items() if k.lower().startswith("access-control-")}


def test_allowed_origin_gets_cors_on_every_chat_route(transcripts):
    async def scenario(client):
        resp = await client.post("/api/chat", data=json.dumps({"sender": SENDER, "message": "运费"}),
                                 headers={"Origin": SHOP, "Content-Type": "text/plain;charset=UTF-8"})
        assert resp.status == 200 and (await resp.json())["messages"][0]["text"] == "收到：运费"
        assert resp.headers["Access-Control-Allow-Origin"] == SHOP
        assert "Origin" in resp.headers["Vary"]
        assert "Access-Control-Allow-Credentials" not in resp.headers      # no cookies, ever
        for path in (f"/api/chat/updates?sender={SENDER}", f"/api/chat/history?sender={SENDER}"):
            resp = await client.get(path, headers={"Origin": SHOP})
            assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == SHOP
        # errors are readable by the widget too (it shows them)
        resp = await client.post("/api/chat", data=b"{not json", headers={"Origin": SHOP})
        assert resp.status == 400 and resp.headers["Access-Control-Allow-Origin"] == SHOP
    run(transcripts, scenario)


def test_other_origins_and_other_routes_get_no_cors_headers(transcripts):
    async def scenario(client):
        resp = await client.post("/api/chat", data=json.dumps({"sender": SENDER, "message": "hi"}),
                                 headers={"Origin": OTHER})
        assert resp.status == 200 and cors_headers(resp) == {}
        resp = await client.get(f"/api/chat/history?sender={SENDER}", headers={"Origin": OTHER})
        assert cors_headers(resp) == {}
        resp = await client.get(f"/api/chat/updates?sender={SENDER}")          # no Origin at all
        assert cors_headers(resp) == {}
        # a prefix of an allowed origin, or another scheme, is another origin
        for origin in (SHOP + ".attacker.example", "http://shop.example", "null"):
            resp = await client.get(f"/api/chat/updates?sender={SENDER}", headers={"Origin": origin})
            assert cors_headers(resp) == {}, origin
        # the widget script and the page are not CORS resources either
        resp = await client.get("/widget.js", headers={"Origin": SHOP})
        assert resp.status == 200 and cors_headers(resp) == {}
    run(transcripts, scenario)


def test_preflight_only_for_allowed_origins(transcripts):
    async def scenario(client):
        ask = {"Origin": SHOP, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
        resp = await client.options("/api/chat", headers=ask)
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == SHOP
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "content-type" in resp.headers["Access-Control-Allow-Headers"].lower()
        assert int(resp.headers["Access-Control-Max-Age"]) > 0
        resp = await client.options("/api/chat/history", headers={**ask, "Access-Control-Request-Method": "GET"})
        assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == SHOP

        resp = await client.options("/api/chat", headers={**ask, "Origin": OTHER})
        assert resp.status == 403 and cors_headers(resp) == {}
        resp = await client.options("/api/chat", headers={**ask, "Access-Control-Request-Method": "DELETE"})
        assert resp.status == 403 and cors_headers(resp) == {}
        resp = await client.options("/api/agent/me", headers=ask)             # not a chat route
        assert cors_headers(resp) == {}
    run(transcripts, scenario)


def test_no_origins_configured_means_no_cors_for_anyone(transcripts):
    async def scenario(client):
        resp = await client.options("/api/chat", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"})
        assert resp.status == 403 and cors_headers(resp) == {}
        resp = await client.get(f"/api/chat/updates?sender={SENDER}", headers={"Origin": SHOP})
        assert cors_headers(resp) == {}
    run(transcripts, scenario, origins=())


def test_settings_read_the_origins_list(monkeypatch):
    monkeypatch.setenv("KEFU_WIDGET_ORIGINS", " https://shop.example/ ,http://127.0.0.1:8080,, ")
    assert Settings.from_env().widget_origins == ("https://shop.example", "http://127.0.0.1:8080")
    monkeypatch.setenv("KEFU_WIDGET_ORIGINS", "")
    assert Settings.from_env().widget_origins == ()


def test_history_gives_this_conversation_back_masked(transcripts):
    conversation = f"web:{SENDER}"
    transcripts.append(f"web:w{'f' * 32}", "web", "customer", "别人的消息")     # another browser
    transcripts.append("telegram:" + SENDER, "telegram", "customer", "同名的另一个渠道")

    async def scenario(client):
        resp = await client.get(f"/api/chat/history?sender={SENDER}")
        body = await resp.json()
        assert resp.status == 200 and body["messages"] == [] and body["answering"] is False
        assert body["welcome"]["text"] and body["welcome"]["buttons"]      # the business pack's greeting
        assert transcripts.transcript(conversation) == []                   # shown, not sent

        await client.post("/api/chat", data=json.dumps({"sender": SENDER, "message": "我的电话 13812345678"}))
        transcripts.append(conversation, "web", "notice", "您现在排在第 1 位")
        transcripts.append(conversation, "web", "agent", "您好，我是客服小丽", {"agent": "小丽"})
        transcripts.append(conversation, "web", "system", "您发送得有点快")       # transient: not history
        transcripts.append(conversation, "web", "bot", "请选择", {"buttons": [{"title": "是", "payload": "是"}]})

        body = await (await client.get(f"/api/chat/history?sender={SENDER}")).json()
        lines = body["messages"]
        assert [(m["author"], m["text"]) for m in lines] == [
            ("customer", "我的电话 138****5678"), ("bot", "收到：我的电话 138****5678"),
            ("notice", "您现在排在第 1 位"), ("agent", "您好，我是客服小丽"), ("bot", "请选择")]
        assert lines[-1]["buttons"] == [{"title": "是", "payload": "是"}]
        assert all("13812345678" not in json.dumps(m, ensure_ascii=False) for m in lines)
        ids = [m["id"] for m in lines]
        assert ids == sorted(ids)

        after = ids[2]
        body = await (await client.get(f"/api/chat/history?sender={SENDER}&after={after}")).json()
        assert [m["id"] for m in body["messages"]] == ids[3:]
    run(transcripts, scenario)


def test_history_says_when_an_answer_is_still_coming(transcripts):
    conversation = f"web:{SENDER}"

    async def scenario(client):
        first = transcripts.append(conversation, "web", "customer", "刚发的")
        body = await (await client.get(f"/api/chat/history?sender={SENDER}")).json()
        assert body["answering"] is True
        # asked again for what came after it: nothing yet, still coming
        body = await (await client.get(f"/api/chat/history?sender={SENDER}&after={first}")).json()
        assert body["messages"] == [] and body["answering"] is True
        transcripts.append(conversation, "web", "bot", "答复")
        body = await (await client.get(f"/api/chat/history?sender={SENDER}")).json()
        assert body["answering"] is False
    run(transcripts, scenario)
    # an unanswered line from long ago (a handoff, nobody replied) is not "still coming"
    old = transcripts.append(conversation, "web", "customer", "很久以前")
    from sqlalchemy import update
    from bot.store.schema import Message
    with transcripts.engine.begin() as conn:
        conn.execute(update(Message).where(Message.id == old).values(
            at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)))

    async def later(client):
        body = await (await client.get(f"/api/chat/history?sender={SENDER}")).json()
        assert body["messages"][-1]["text"] == "很久以前" and body["answering"] is False
    run(transcripts, later)


@pytest.mark.parametrize("sender", ["t-test", "w123", "W" + "0" * 32, "w" + "g" * 32, "w" + "0" * 64,
                                    "w" + "0" * 24 + "'", ""])
def test_history_refuses_ids_a_browser_did_not_make_at_random(transcripts, sender):
    transcripts.append(f"web:{sender}", "web", "customer", "私密")

    async def scenario(client):
        resp = await client.get("/api/chat/history", params={"sender": sender})
        assert resp.status == 400 and "私密" not in await resp.text()
    run(transcripts, scenario)


def test_history_refuses_a_bad_after(transcripts):
    async def scenario(client):
        for after in ("x", "-1", str(2**63)):
            resp = await client.get("/api/chat/history", params={"sender": SENDER, "after": after})
            assert resp.status == 400
    run(transcripts, scenario)


def test_widget_script_is_served_as_javascript(transcripts):
    async def scenario(client):
        resp = await client.get("/widget.js")
        text = await resp.text()
        assert resp.status == 200 and resp.content_type == "application/javascript"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "attachShadow" in text and "/history?sender=" in text
        # never a message the customer did not write: the only POST body is what send() got
        assert "你好" not in text
    run(transcripts, scenario)


def test_a_message_posted_again_with_its_id_is_answered_once(transcripts):
    """The widget posts a message again when a page was left while it was on its way: the
    bot sees it once, and the repeat (even one arriving while the first is being answered)
    gets the first answer back."""
    conversation = f"web:{SENDER}"

    async def scenario(client):
        client.server.app["router"].gates.insert(0, slow_gate)
        body = json.dumps({"sender": SENDER, "message": "保修多久", "id": "m-0001-abcd"})
        first, repeat = await asyncio.gather(client.post("/api/chat", data=body),
                                             delayed(client.post("/api/chat", data=body)))
        answers = [await first.json(), await repeat.json()]
        assert [a.get("repeat", False) for a in answers] == [False, True]
        assert answers[0]["messages"] == answers[1]["messages"] == [
            {"text": "收到：保修多久", "author": "bot", "buttons": []}]
        later = await (await client.post("/api/chat", data=body)).json()
        assert later["repeat"] is True and later["messages"] == answers[0]["messages"]
        # another id is another message; no id at all is the web chat page's way (no ledger)
        await client.post("/api/chat", data=json.dumps({"sender": SENDER, "message": "保修多久", "id": "m-0002-abcd"}))
        await client.post("/api/chat", data=json.dumps({"sender": SENDER, "message": "保修多久"}))
        for bad in ("short", "x" * 33, "有中文的编号123", 7):
            resp = await client.post("/api/chat", data=json.dumps({"sender": SENDER, "message": "hi", "id": bad}))
            assert resp.status == 400, bad
    calls = []

    async def slow_gate(message):
        calls.append(message.text)
        await asyncio.sleep(0.5)
        return None                                 # on to the answering gate

    async def delayed(coro):
        await asyncio.sleep(0.1)
        return await coro

    run(transcripts, scenario)
    assert calls == ["保修多久"] * 3
    customer = [l["text"] for l in transcripts.transcript(conversation) if l["author"] == "customer"]
    assert customer == ["保修多久"] * 3
