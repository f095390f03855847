"""Agent accounts in the console: names for transfer, one account's details, admins creating agents.

Runs in the gateway.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from bot.store.agents import AgentError
from bot.web import error, json_body
from bot.workspace.http import handoff_service, signed_in


async def agents_list(request: web.Request) -> web.Response:
    everyone = await asyncio.to_thread(handoff_service(request).agents.all)
    return web.json_response({"agents": [{"id": a.id, "display_name": a.display_name}
                                         for a in everyone]})


async def agent_detail(request: web.Request) -> web.Response:
    agent = signed_in(request)
    try:
        wanted = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound()
    if wanted != agent.id and not agent.is_admin:
        return error(403, "another agent's account")
    other = await asyncio.to_thread(handoff_service(request).agents.get, wanted)
    if other is None:
        return error(404, "no such agent")
    return web.json_response({"agent": {**other.as_json(),
                                        "telegram_user_id": other.telegram_user_id}})


async def agent_create(request: web.Request) -> web.Response:
    if not signed_in(request).is_admin:
        return error(403, "admins only")
    body = await json_body(request)
    try:
        created = await asyncio.to_thread(
            handoff_service(request).agents.create, str(body.get("name", "")),
            str(body.get("password", "")), role=str(body.get("role", "agent")),
            display_name=str(body.get("display_name", "")))
    except AgentError as exc:
        return error(400, str(exc))
    return web.json_response({"agent": created.as_json()}, status=201)
