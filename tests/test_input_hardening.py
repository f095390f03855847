"""Inputs that used to give a 500 (issue 18, item 15), on the real gateway app (no model).

Every JSON body goes through one reader (bot.web.parse_json): nesting 5,000 deep is a 400,
not a RecursionError, on every route that takes JSON, anonymous or signed in; a lone
surrogate ("\\ud800", valid JSON, no valid text) is dropped like other characters no
database stores, so the message is kept and answered.
"""
from __future__ import annotations

import asyncio
import json
import re

import pytest

from bot.gateway.app import create_app, openapi_document
from bot.settings import Settings
from bot.store.agents import AgentStore
from bot.store.transcripts import TranscriptStore
from bot.web import MAX_JSON_DEPTH, BadJson, parse_json
from tests.fakes import served

NOWHERE = "http://127.0.0.1:9"
DEEP = b"[" * 5000 + b"]" * 5000
DEEP_IN_OBJECT = b'{"sender": "deep", "message": "hi", "x": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/input.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")
    for name in ("KEFU_TELEGRAM_AGENT_TOKEN", "KEFU_TELEGRAM_TOKEN", "KEFU_WECHAT_TOKEN",
                 "KEFU_WECOM_WEBHOOK", "KEFU_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def json_operations():
    for path, item in openapi_document()["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "application/json" in (op.get("requestBody") or {}).get("content", {}):
                yield method.upper(), re.sub(r"\{[^}]+\}", "1", path), bool(op.get("x-kefu-public"))


def test_parse_json_refuses_depth_before_recursing_and_drops_lone_surrogates():
    with pytest.raises(BadJson):
        parse_json(DEEP)
    with pytest.raises(BadJson):
        parse_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert parse_json(b'{"t": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == {"t": "[" * 42}
    assert parse_json(b'{"t": "a\\ud800b", "\\udfff": ["\\ud83d\\ude00"]}') == {"t": "ab", "": ["😀"]}
    for bad in (b"\xff\xfe{", b"{", b""):
        with pytest.raises(ValueError):              # BadJson is a ValueError
            parse_json(bad)


def test_deep_json_is_a_4xx_on_every_json_route_anonymous_and_signed_in(db):
    operations = list(json_operations())
    assert ("POST", "/api/chat", True) in operations and len(operations) > 5

    async def scenario():
        app = create_app(Settings(rasa_url=NOWHERE, action_url=NOWHERE))
        AgentStore().create("admin1", "a-long-password-1", role="admin")
        found = {}
        async with served(app) as client:
            for who in ("anonymous", "admin"):
                if who == "admin":
                    resp = await client.post("/api/agent/login",
                                             json={"name": "admin1", "password": "a-long-password-1"})
                    assert resp.status == 200, await resp.text()
                for method, path, public in operations:
                    for body in (DEEP, DEEP_IN_OBJECT):
                        resp = await client.request(method, path, data=body,
                                                    headers={"Content-Type": "application/json"})
                        found[(method, path, who, len(body))] = resp.status
        return found

    found = asyncio.run(scenario())
    errors = {k: v for k, v in found.items() if v >= 500}
    assert errors == {}, f"5xx on deep JSON: {errors}"
    assert found[("POST", "/api/chat", "anonymous", len(DEEP))] == 400
    assert found[("POST", "/api/agent/login", "anonymous", len(DEEP))] == 400
    # signed in, the body is read (not refused for the session) and refused as JSON
    parsed = [k for k, v in found.items() if k[2] == "admin" and v == 400]
    assert len(parsed) >= len({(m, p) for m, p, _ in operations}) // 2, found


def test_lone_surrogate_in_a_web_chat_message_is_cleaned_and_the_line_kept(db):
    async def scenario():
        app = create_app(Settings(rasa_url=NOWHERE, action_url=NOWHERE))
        async with served(app) as client:
            body = b'{"sender": "sur1", "message": "\\u4f60\\u597d\\ud800\\udc00x\\ud800"}'
            resp = await client.post("/api/chat", data=body, headers={"Content-Type": "application/json"})
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["messages"]          # the busy notice: Rasa is nowhere
            body = json.dumps({"sender": "sur2", "message": "\ud800"}).encode()   # \ud800 escaped
            resp = await client.post("/api/chat", data=body, headers={"Content-Type": "application/json"})
            assert resp.status == 200, await resp.text()

    asyncio.run(scenario())
    customer = [l["text"] for l in TranscriptStore().transcript("web:sur1") if l["author"] == "customer"]
    assert customer == ["你好\U00010000x"]                  # the valid pair kept, lone ones gone
    empty = TranscriptStore().transcript("web:sur2")
    assert [l["author"] for l in empty][:1] == ["customer"] and empty[0]["text"] == ""


def test_digits_in_other_unicode_forms_in_a_query_are_no_500(db):
    """str.isdigit() is true for '¹' and '①', int() fails on them (issue 18, item 1)."""
    async def scenario():
        app = create_app(Settings(rasa_url=NOWHERE, action_url=NOWHERE))
        AgentStore().create("admin2", "a-long-password-2", role="admin")
        async with served(app) as client:
            resp = await client.post("/api/agent/login",
                                     json={"name": "admin2", "password": "a-long-password-2"})
            assert resp.status == 200, await resp.text()
            statuses = {}
            for value in ("¹", "①", "١", "1" * 5000):
                resp = await client.get("/api/agent/tickets", params={"assignee": value})
                statuses[value[:3]] = resp.status
            return statuses

    statuses = asyncio.run(scenario())
    assert all(status < 500 for status in statuses.values()), statuses
