"""The right to deletion from the admin console (the CLI does the same: bot/store/erasure.py).

``POST /api/agent/erasure`` ``{"conversation_id": "wechat:oAbc…", "reason"?: "…"}`` erases one
customer: transcript, Rasa tracker (SQLite or PostgreSQL), the personal fields of their
tickets, what the agents' side was told, pushes and delivery records; it answers what was
erased and the one-way hash their anonymous statistics now carry. ``GET /api/agent/erasure``
is the audit log (who, when, from where, how much). Admins only; every erasure is audited
in the same transaction as the erasure itself.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from bot.store import erasure
from bot.web import error, json_body
from bot.workspace.http import PREFIX, handoff_service, signed_in

MAX_REASON = 200


def _admin(request: web.Request):
    agent = signed_in(request)
    if not agent.is_admin:
        raise web.HTTPForbidden(text='{"error": "admins only"}', content_type="application/json")
    return agent


async def erase(request: web.Request) -> web.Response:
    agent = _admin(request)
    body = await json_body(request)
    conversation = body.get("conversation_id")
    reason = body.get("reason")
    if not isinstance(conversation, str) or len(conversation) > 128:
        return error(400, "conversation_id: channel:user id, at most 128 characters")
    channel, _, user_id = conversation.partition(":")
    if not channel or not user_id or not user_id.strip():
        return error(400, "conversation_id: channel:user id, e.g. wechat:oAbc123")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        return error(400, f"reason: text up to {MAX_REASON} characters")
    engine = handoff_service(request).store.engine
    counts = await asyncio.to_thread(erasure.erase_customer, conversation, engine=engine,
                                     tracker_url=erasure.default_tracker_url(),
                                     actor=agent.name, via="console", reason=reason)
    return web.json_response({"erasure": counts})


async def audit(request: web.Request) -> web.Response:
    _admin(request)
    engine = handoff_service(request).store.engine
    return web.json_response({"erasures": await asyncio.to_thread(erasure.audit_log, 100,
                                                                   engine=engine)})


def setup(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/erasure", erase)
    app.router.add_get(f"{PREFIX}/erasure", audit)
