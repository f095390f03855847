"""The web chat widget: a page served by the gateway and its JSON endpoint.

``POST /api/chat`` takes ``{"sender": "<browser id>", "message": "..."}`` and answers
``{"messages": [{"text", "author", "buttons": [{"title", "payload"}]}]}``.
"""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from aiohttp import web

from bot.messages import InboundMessage

PAGE = Path(__file__).with_name("webchat.html")
SENDER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_BODY = 16 * 1024


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


async def chat_page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE.read_bytes(), content_type="text/html", charset="utf-8")


async def chat_message(request: web.Request) -> web.Response:
    if request.content_length and request.content_length > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _bad_request("body is not JSON")
    if not isinstance(body, dict):
        return _bad_request("body must be a JSON object")
    sender, text = body.get("sender"), body.get("message")
    if not isinstance(sender, str) or not SENDER_RE.fullmatch(sender):
        return _bad_request("sender must be 1-64 letters, digits, '-' or '_'")
    if not isinstance(text, str):
        return _bad_request("message must be a string")
    router = request.app["router"]
    replies = await router.handle(InboundMessage(channel="web", user_id=sender, text=text))
    return web.json_response({"messages": [r.as_json() for r in replies]})


async def chat_updates(request: web.Request) -> web.Response:
    """Messages for this browser written after ``after`` (agent replies arrive this way).

    The transcript in SQL is the mailbox, so any gateway replica can answer the poll.
    """
    sender = request.query.get("sender", "")
    if not SENDER_RE.fullmatch(sender):
        return _bad_request("sender must be 1-64 letters, digits, '-' or '_'")
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        return _bad_request("after must be an integer")
    if not 0 <= after < 2**63:
        return _bad_request("after must be between 0 and 2^63-1")
    transcripts = request.app["router"].transcripts
    lines = await asyncio.to_thread(transcripts.since, f"web:{sender}", after)
    return web.json_response({"messages": [
        {"id": line["id"], "text": line["text"], "author": line["author"],
         "buttons": (line["data"] or {}).get("buttons", [])} for line in lines]})


async def push(user_id: str, messages) -> None:
    """Nothing to do: the browser polls ``/api/chat/updates`` for what the transcript holds."""


def setup(app: web.Application) -> None:
    app.router.add_get("/", chat_page)
    app.router.add_post("/api/chat", chat_message)
    app.router.add_get("/api/chat/updates", chat_updates)
    app["senders"]["web"] = push
