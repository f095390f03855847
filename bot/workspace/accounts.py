"""Agent accounts in the console: names for transfer, one account's details, admins creating,
deactivating and linking agents and resetting passwords; one's own password and sessions.

Runs in the gateway.
"""
from __future__ import annotations

import asyncio
import math

from aiohttp import web

from bot.store.agents import AgentError
from bot.store.throttle import SignInThrottleStore, keys_for
from bot.web import COOKIE, error, is_id, json_body, path_id
from bot.workspace.http import handoff_service, signed_in


async def agents_list(request: web.Request) -> web.Response:
    """Active agents' names (for transfer); admins with ``?all=1``: every account."""
    agents = handoff_service(request).agents
    if request.query.get("all") in ("1", "true") and signed_in(request).is_admin:
        everyone = await asyncio.to_thread(agents.everyone)
        return web.json_response({"agents": [{**a.as_json(), "active": a.active,
                                              "telegram_user_id": a.telegram_user_id}
                                             for a in everyone]})
    everyone = await asyncio.to_thread(agents.all)
    return web.json_response({"agents": [{"id": a.id, "display_name": a.display_name}
                                         for a in everyone]})


async def agent_detail(request: web.Request) -> web.Response:
    agent = signed_in(request)
    wanted = path_id(request, "such agent")
    if wanted != agent.id and not agent.is_admin:
        return error(403, "another agent's account")
    other = await asyncio.to_thread(handoff_service(request).agents.get, wanted,
                                    include_inactive=agent.is_admin)
    if other is None:
        return error(404, "no such agent")
    return web.json_response({"agent": {**other.as_json(), "active": other.active,
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


# --- passwords, deactivation, sessions (every route needs a session; admin ones say so) -----


def _target_id(request: web.Request) -> int:
    return path_id(request, "such agent")


def _admin(request: web.Request):
    return None if signed_in(request).is_admin else error(403, "admins only")


async def change_own_password(request: web.Request) -> web.Response:
    """The agent's own password: the current one is checked (and throttled like sign-in);
    every other session of the agent ends, this one stays."""
    agent, service = signed_in(request), handoff_service(request)
    body = await json_body(request)
    current, new = body.get("current_password"), body.get("new_password")
    if not isinstance(current, str) or not isinstance(new, str) or len(current) > 256:
        return error(400, "current_password and new_password are required")
    throttle = SignInThrottleStore(service.store.engine)
    keys = keys_for(agent.name, request.remote)
    wait = await asyncio.to_thread(throttle.admit, keys)
    if wait > 0:
        return error(429, f"too many wrong passwords; try again in {max(1, math.ceil(wait))} s")
    try:
        ok = await asyncio.to_thread(service.agents.change_password, agent.id, current, new,
                                     keep_token=request.cookies.get(COOKIE))
    except AgentError as exc:
        return error(400, str(exc))
    if not ok:
        return error(403, "the current password is wrong")
    await asyncio.to_thread(throttle.succeeded, keys)
    return web.json_response({"ok": True})


async def reset_password(request: web.Request) -> web.Response:
    """Admins: set another agent's password; that agent's sessions all end."""
    refused = _admin(request)
    if refused is not None:
        return refused
    password = (await json_body(request)).get("password")
    try:
        await asyncio.to_thread(handoff_service(request).agents.set_password, _target_id(request),
                                password if isinstance(password, str) else "")
    except AgentError as exc:
        return error(404 if "no such" in str(exc) else 400, str(exc))
    return web.json_response({"ok": True})


async def _set_active(request: web.Request, active: bool) -> web.Response:
    refused = _admin(request)
    if refused is not None:
        return refused
    target = _target_id(request)
    if not active and target == signed_in(request).id:
        return error(409, "an admin cannot deactivate their own account")
    try:
        agent = await asyncio.to_thread(handoff_service(request).agents.set_active, target, active)
    except AgentError as exc:
        return error(404, str(exc))
    return web.json_response({"agent": {**agent.as_json(), "active": agent.active}})


async def deactivate(request: web.Request) -> web.Response:
    """Admins: the agent can no longer sign in or claim, and every session ends at once."""
    return await _set_active(request, False)


async def activate(request: web.Request) -> web.Response:
    return await _set_active(request, True)


async def link_telegram(request: web.Request) -> web.Response:
    """Admins: the Telegram user (numeric id) who acts for this agent in the agents' group."""
    refused = _admin(request)
    if refused is not None:
        return refused
    value = (await json_body(request)).get("telegram_user_id")
    if value is not None and not isinstance(value, (str, int)) or isinstance(value, bool):
        return error(400, "telegram_user_id: a numeric id, or null to unlink")
    try:
        agent = await asyncio.to_thread(handoff_service(request).agents.link_telegram,
                                        _target_id(request), None if value is None else str(value))
    except AgentError as exc:
        return error(404 if "no such" in str(exc) else 409 if "another" in str(exc) else 400, str(exc))
    return web.json_response({"agent": {**agent.as_json(), "telegram_user_id": agent.telegram_user_id}})


async def own_sessions(request: web.Request) -> web.Response:
    sessions = await asyncio.to_thread(handoff_service(request).agents.sessions,
                                       signed_in(request).id, request.cookies.get(COOKIE))
    return web.json_response({"sessions": sessions})


async def revoke_own_sessions(request: web.Request) -> web.Response:
    """``{"session_id": n}`` ends one of one's sessions; ``{}`` ends all but this one."""
    session_id = (await json_body(request)).get("session_id")
    if session_id is not None and not is_id(session_id):
        return error(400, "session_id must be a session's id (a positive integer)")
    ended = await asyncio.to_thread(handoff_service(request).agents.revoke_sessions,
                                    signed_in(request).id, session_id=session_id,
                                    keep_token=request.cookies.get(COOKIE))
    return web.json_response({"ended": ended})


async def revoke_agent_sessions(request: web.Request) -> web.Response:
    """Admins: end every session of an agent (signed out everywhere)."""
    refused = _admin(request)
    if refused is not None:
        return refused
    ended = await asyncio.to_thread(handoff_service(request).agents.revoke_sessions,
                                    _target_id(request))
    return web.json_response({"ended": ended})


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    """The account routes (the console's setup calls this)."""
    router.add_post(f"{prefix}/password", change_own_password)
    router.add_get(f"{prefix}/sessions", own_sessions)
    router.add_post(f"{prefix}/sessions/revoke", revoke_own_sessions)
    router.add_post(f"{prefix}/agents/{{id}}/password", reset_password)
    router.add_post(f"{prefix}/agents/{{id}}/deactivate", deactivate)
    router.add_post(f"{prefix}/agents/{{id}}/activate", activate)
    router.add_post(f"{prefix}/agents/{{id}}/telegram", link_telegram)
    router.add_post(f"{prefix}/agents/{{id}}/sessions/revoke", revoke_agent_sessions)
