"""Agents' sign-in: password check, session cookie, back-off, and the middleware guarding /api/agent.

Runs in the gateway. Every route under ``/api/agent`` needs a signed-in agent except those
in ``PUBLIC_ROUTES``.
"""
from __future__ import annotations

import asyncio
import math

from aiohttp import web

from bot.profile import business as profile
from bot.settings import setting
from bot.store.throttle import SignInThrottleStore, keys_for
from bot.web import COOKIE, SECURITY_HEADERS, error, json_body, refuse_unsafe_post
from bot.workspace.http import PREFIX, handoff_service, signed_in

PUBLIC_ROUTES = {("POST", "/api/agent/login")}     # everything else under PREFIX needs a session


@web.middleware
async def auth_middleware(request: web.Request, handler):
    path = request.path
    if path.startswith(PREFIX + "/") or path == PREFIX:
        refused = refuse_unsafe_post(request)
        if refused is not None:
            return refused
        if (request.method, path) not in PUBLIC_ROUTES:
            service = handoff_service(request)
            agent = await asyncio.to_thread(service.agents.session_agent, request.cookies.get(COOKIE))
            if agent is None:
                return error(401, "sign in first")
            request["agent"] = agent
    response = await handler(request)
    if path.startswith(PREFIX) or path.startswith("/console"):
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
    return response


async def login(request: web.Request) -> web.Response:
    """Name + password → session cookie. Failed attempts back off per name, per client
    address (the real client behind ``KEFU_TRUSTED_PROXIES``) and per both, in the shared
    database (:mod:`bot.store.throttle`): a wait, answered 429, never a lockout."""
    body = await json_body(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or len(password) > 256:
        return error(400, "name and password are required")
    service = handoff_service(request)
    throttle = SignInThrottleStore(service.store.engine)
    keys = keys_for(name, request.remote)
    wait = await asyncio.to_thread(throttle.admit, keys)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        return web.json_response({"error": f"too many failed sign-ins; try again in {seconds} s"},
                                 status=429, headers={"Retry-After": str(seconds)})
    agent = await asyncio.to_thread(service.agents.authenticate, name[:64], password)
    if agent is None:
        await asyncio.sleep(0.2)
        return error(401, "wrong name or password")
    await asyncio.to_thread(throttle.succeeded, keys)
    token = await asyncio.to_thread(service.agents.start_session, agent.id)
    response = web.json_response({"agent": agent.as_json()})
    secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=secure, max_age=int(setting("KEFU_SESSION_HOURS") * 3600))
    return response


async def logout(request: web.Request) -> web.Response:
    await asyncio.to_thread(handoff_service(request).agents.end_session, request.cookies.get(COOKIE))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    return web.json_response({"agent": signed_in(request).as_json(),
                              "now": profile.now().isoformat()})
