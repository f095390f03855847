"""HTTP basics every web surface of the gateway shares (aiohttp): the console session cookie's
name, security headers, JSON bodies, JSON errors, and the rule for state-changing POSTs.

Used by the channels' JSON routes, the agents' workspace and the admins' training API, which
must not import each other.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

from aiohttp import web

COOKIE = "kefu_agent"          # the console's session cookie (agents and admins)
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self' "
                                "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def refuse_unsafe_post(request: web.Request) -> Optional[web.Response]:
    """A POST must be JSON from this origin: a cross-site form can send neither."""
    if request.method != "POST":
        return None
    if request.content_type != "application/json":
        return error(415, "JSON only")
    origin = request.headers.get("Origin")
    if origin and origin.split("://", 1)[-1] != request.host:
        return error(403, "cross-origin request refused")
    return None


async def json_body(request: web.Request) -> Dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not JSON"}),
                                 content_type="application/json")
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be an object"}),
                                 content_type="application/json")
    return body
