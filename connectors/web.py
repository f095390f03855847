"""The web chat: a page served by the gateway, the embeddable widget, and their JSON endpoints.

``POST /api/chat`` takes ``{"sender": "<browser id>", "message": "...", "id": "<optional
message id>"}`` and answers ``{"messages": [{"text", "author", "buttons": [{"title",
"payload"}]}]}``; a message posted again with the same ``id`` gets the first answer back
(``"repeat": true``) and is not run again.
``GET /api/chat/updates`` polls for agents' replies and notices; ``GET /api/chat/history``
gives the conversation's earlier lines back after a reload (and the welcome to show, which
is never sent as a message). The widget for other sites (``/widget.js``, CORS for the origins
in ``KEFU_WIDGET_ORIGINS``) is :mod:`connectors.widget`.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Dict, Tuple, Union

from aiohttp import web

from connectors.welcome import welcome
from bot.messages import InboundMessage
from bot.store.deliveries import DeliveryLedger
from bot.profile.privacy import mask_customer_text, mask_text
from bot.web import BadJson, parse_json
from connectors import widget

PAGE = Path(__file__).with_name("webchat.html")
SENDER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,32}$")    # the widget's id for one message
CHANNEL = "web"
# A claim left unsettled this long belongs to a gateway that died mid-turn: a repeat runs it.
REPEAT_TAKEOVER_SECONDS = 120.0
# History is only given for the random id a browser made itself ('w' + at least 96 random
# bits in hex, as webchat.html and widget.js create it): a guessable name gets nothing back.
HISTORY_SENDER_RE = re.compile(r"^w[0-9a-f]{24,63}$")
HISTORY_AUTHORS = ("customer", "bot", "agent", "notice")
HISTORY_LIMIT = 200
ANSWERING_SECONDS = 30
MAX_BODY = 16 * 1024


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


async def chat_page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE.read_bytes(), content_type="text/html", charset="utf-8")


async def chat_message(request: web.Request) -> web.Response:
    if request.content_length and request.content_length > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    try:
        body = parse_json(await request.read())
    except BadJson:
        return _bad_request("body is not JSON")
    if not isinstance(body, dict):
        return _bad_request("body must be a JSON object")
    sender, text = body.get("sender"), body.get("message")
    if not isinstance(sender, str) or not SENDER_RE.fullmatch(sender):
        return _bad_request("sender must be 1-64 letters, digits, '-' or '_'")
    if not isinstance(text, str):
        return _bad_request("message must be a string")
    client_id = body.get("id")
    if client_id is not None and (not isinstance(client_id, str)
                                  or not MESSAGE_ID_RE.fullmatch(client_id)):
        return _bad_request("id must be 8-32 letters, digits, '-' or '_'")
    router = request.app["router"]
    if client_id is None:
        replies = await router.handle(InboundMessage(channel=CHANNEL, user_id=sender, text=text))
        return web.json_response({"messages": [r.as_json() for r in replies]})
    return await _once(request, router, sender, text, client_id)


async def _once(request: web.Request, router, sender: str, text: str, client_id: str) -> web.Response:
    """A message with the browser's own id is taken once: posted again (the widget does
    when a page was left while it was on its way), it gets the first answer back, and the
    bot never sees it twice (the WeChat/Telegram dedup ledger, shared by every replica)."""
    ledger = DeliveryLedger(router.transcripts.engine)
    key = f"{sender}:{client_id}"
    first, reply = await asyncio.to_thread(ledger.claim, CHANNEL, key, REPEAT_TAKEOVER_SECONDS)
    if not first:
        if reply is None:           # still being answered: wait for that answer
            wait = request.app["settings"].reply_timeout + 10
            reply = await ledger.wait_settled(CHANNEL, key, wait)
        answer = json.loads(reply) if reply else {"messages": []}
        return web.json_response({**answer, "repeat": True})
    replies = await router.handle(InboundMessage(channel=CHANNEL, user_id=sender, text=text))
    answer = {"messages": [r.as_json() for r in replies]}
    await asyncio.to_thread(ledger.settle, CHANNEL, key, json.dumps(answer, ensure_ascii=False))
    return web.json_response(answer)


def _poll_query(request: web.Request, sender_re: re.Pattern[str],
                sender_error: str) -> Union[Tuple[str, int], web.Response]:
    """``sender`` (matching ``sender_re``) and ``after`` (a transcript id, default 0) of a
    poll, or the 400 answer to give instead."""
    sender = request.query.get("sender", "")
    if not sender_re.fullmatch(sender):
        return _bad_request(sender_error)
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        return _bad_request("after must be an integer")
    if not 0 <= after < 2**63:
        return _bad_request("after must be between 0 and 2^63-1")
    return sender, after


async def chat_updates(request: web.Request) -> web.Response:
    """Messages for this browser written after ``after`` (agent replies arrive this way).

    The transcript in SQL is the mailbox, so any gateway replica can answer the poll.
    """
    query = _poll_query(request, SENDER_RE, "sender must be 1-64 letters, digits, '-' or '_'")
    if isinstance(query, web.Response):
        return query
    sender, after = query
    transcripts = request.app["router"].transcripts
    lines = await asyncio.to_thread(transcripts.since, f"web:{sender}", after, clear=True)
    return web.json_response({"messages": [_line(line) for line in lines]})


def _line(line: Dict[str, Any], masked: bool = False) -> Dict[str, Any]:
    text = line["text"]
    if masked:      # what the customer wrote: phones, orders, addresses; anyone else's: phones
        text = mask_customer_text(text) if line["author"] == "customer" else mask_text(text)
    return {"id": line["id"], "text": text, "author": line["author"],
            "buttons": (line["data"] or {}).get("buttons", [])}


async def chat_history(request: web.Request) -> web.Response:
    """This browser's conversation so far (its last 200 lines), to show again after a reload.

    Only for the random id the browser created (``HISTORY_SENDER_RE``); phones (and, in the
    customer's lines, addresses and order numbers) are masked, since whoever holds the
    browser can read the answer.
    ``after`` gives only the lines after a transcript id (a turn still being answered).
    """
    query = _poll_query(request, HISTORY_SENDER_RE,
                        "sender must be the browser's random id ('w' + 24-63 hex digits)")
    if isinstance(query, web.Response):
        return query
    sender, after = query
    transcripts = request.app["router"].transcripts
    lines = await asyncio.to_thread(transcripts.since, f"web:{sender}", 0,
                                    authors=HISTORY_AUTHORS, clear=True)
    answering = _answering(lines)             # of the whole conversation, whatever ``after``
    lines = [line for line in lines if line["id"] > after][-HISTORY_LIMIT:]
    return web.json_response({"messages": [_line(line, masked=True) for line in lines],
                              "welcome": welcome().as_json(), "answering": answering})


def _answering(lines) -> bool:
    """Is the last line a customer's, written moments ago (its answer is still coming)?

    A page that was left while a message was being answered asks again until it has come.
    """
    if not lines or lines[-1]["author"] != "customer":
        return False
    at = dt.datetime.fromisoformat(lines[-1]["at"])
    if at.tzinfo is None:                      # SQLite gives the stored UTC time back naive
        at = at.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc) - at < dt.timedelta(seconds=ANSWERING_SECONDS)


def setup(app: web.Application) -> None:
    app.router.add_get("/", chat_page)
    app.router.add_post("/api/chat", chat_message)
    app.router.add_get("/api/chat/updates", chat_updates)
    app.router.add_get("/api/chat/history", chat_history)
    # no sender: the transcript is the web chat's mailbox (the browser polls /api/chat/updates),
    # so the outbox writes no push rows for this channel
    widget.setup(app)
