"""Agents' sign-in: password check, session cookie, lockout, and the middleware guarding /api/agent.

Runs in the gateway. Every route under ``/api/agent`` needs a signed-in agent except those
in ``PUBLIC_ROUTES``.
"""
from __future__ import annotations

import asyncio
import time
from typing import Dict

from aiohttp import web

from bot.profile import business as profile
from bot.settings import setting
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


LOGIN_FAILURES_ALLOWED = {"name": 10, "addr": 200}   # per account name, per client address …
LOGIN_LOCKOUT_SECONDS = 300           # … within this window; then sign-in is refused a while
_failures: Dict[str, list] = {}


def _locked_out(keys) -> bool:
    now = time.monotonic()
    for key in keys:
        recent = [t for t in _failures.get(key, []) if now - t < LOGIN_LOCKOUT_SECONDS]
        _failures[key] = recent
        if len(recent) >= LOGIN_FAILURES_ALLOWED[key.split(":", 1)[0]]:
            return True
    return False


async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or len(password) > 256:
        return error(400, "name and password are required")
    keys = (f"name:{name[:64]}", f"addr:{request.remote}")
    if _locked_out(keys):
        return error(401, "too many failed sign-ins; try again in a few minutes")
    service = handoff_service(request)
    agent = await asyncio.to_thread(service.agents.authenticate, name, password)
    if agent is None:
        if len(_failures) > 10_000:
            _failures.clear()
        for key in keys:
            _failures.setdefault(key, []).append(time.monotonic())
        await asyncio.sleep(0.2)
        return error(401, "wrong name or password")
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
