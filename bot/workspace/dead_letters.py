"""Messages the outbox gave up on, in the console: what, to whom, why; and a retry.

``GET /api/agent/outbox`` lists dead letters (rows a target refused for good, or that
failed ``KEFU_OUTBOX_MAX_ATTEMPTS`` times) and the count still waiting per target: admins
see every row, an agent the rows of conversations they hold. The text is masked (phones,
addresses). ``POST /api/agent/outbox/{id}/retry`` puts a dead row back in line, in its
place for its conversation. Runs in the gateway.
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict

from aiohttp import web

from bot.profile import privacy
from bot.web import error, path_id
from bot.workspace.http import handoff_service, signed_in


def _preview(payload: Dict[str, Any]) -> str:
    if isinstance(payload.get("messages"), list):          # a push to a customer
        text = "\n".join(str(m.get("text", "")) for m in payload["messages"] if isinstance(m, dict))
    elif isinstance(payload.get("text"), dict):             # a WeCom robot message
        text = str(payload["text"].get("content", ""))
    else:
        text = str(payload.get("text", ""))
    return privacy.mask_customer_text(text)[:500]   # phones, addresses, orders


async def dead_letters(request: web.Request) -> web.Response:
    agent, service = signed_in(request), handoff_service(request)
    rows = await asyncio.to_thread(service.store.outbox.dead_letters,
                                   agent_id=None if agent.is_admin else agent.id)
    counts = await asyncio.to_thread(service.store.outbox.counts)
    items = [{key: row[key] for key in ("id", "target", "handoff_id", "conversation_id",
                                        "attempts", "last_error", "created_at", "dead_at")}
             | {"text": _preview(row["payload"] or {})} for row in rows]
    return web.json_response({"dead": items, "targets": counts if agent.is_admin else {}})


async def retry(request: web.Request) -> web.Response:
    agent, service = signed_in(request), handoff_service(request)
    outbox_id = path_id(request, "such message")
    row = await asyncio.to_thread(service.store.outbox.get, outbox_id)
    if row is None:
        return error(404, "no such message")
    if not agent.is_admin:
        handoff = await asyncio.to_thread(service.store.get, row["handoff_id"]) \
            if row["handoff_id"] else None
        if handoff is None or handoff.agent_id != agent.id:
            return error(403, "not a message of your conversations")
    if not row["dead"]:
        return error(409, "the message is not dead-lettered")
    if await service.outbox.retry(outbox_id) is None:
        return error(409, "the message is not dead-lettered")
    return web.json_response({"ok": True, "id": outbox_id})


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    router.add_get(f"{prefix}/outbox", dead_letters)
    router.add_post(f"{prefix}/outbox/{{id}}/retry", retry)
