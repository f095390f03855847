"""HTTP basics every web surface of the gateway shares (aiohttp): the console session cookie's
name, security headers, JSON bodies, JSON errors, and the rule for state-changing POSTs.

Used by the channels' JSON routes, the agents' workspace and the admins' training API, which
must not import each other.
"""
from __future__ import annotations

import json
import re
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


@web.middleware
async def close_after_unread_body(request: web.Request, handler):
    """A request whose body the handler left unread (a refusal before reading, a 404, a 413)
    gets its answer with ``Connection: close``. aiohttp 3.9 stops reading a connection while
    more than 128 KiB of a body wait in its buffer, and a body that arrived whole but was never
    read is not drained: the next request on that kept-alive connection was never read, and
    its client waited until it gave up (found by ``make fuzz-api``: a 131 KB body to a route
    that refuses without reading, then any request on the same connection)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if not request.content.at_eof():       # data left in the buffer, or still to come
            exc.force_close()
        raise
    if not request.content.at_eof():
        response.force_close()
    return response


MAX_ID = 2 ** 63 - 1            # row ids are SQL BIGINT / SQLite INTEGER: nothing above exists


def is_id(value: Any) -> bool:
    """A row id a store can look up: an int (not a bool) from 1 to ``MAX_ID``. A larger one
    would not fit the database's integer (SQLite raises OverflowError, PostgreSQL an error)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def path_id(request: web.Request, what: str = "such row", name: str = "id") -> int:
    """The row id in the URL (``/…/{id}``), or 404 for anything that cannot be one."""
    try:
        value = int(request.match_info[name])
    except ValueError:
        value = 0
    if not is_id(value):
        raise web.HTTPNotFound(text=json.dumps({"error": f"no {what}"}),
                               content_type="application/json")
    return value


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


MAX_JSON_DEPTH = 32            # no request of ours nests deeper; json.loads recurses per level
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BadJson(ValueError):
    """A request body that is not JSON we take: malformed, not UTF-8, or nested too deep."""


def parse_json(raw: bytes) -> Any:
    """Every JSON request body of the gateway goes through here (the web chat, webhooks, the
    consoles, the admin API): a body nested deeper than MAX_JSON_DEPTH is refused before
    ``json.loads`` recurses into it (5,000 levels raised RecursionError: a 500), and lone
    surrogates (``"\\ud800"``, valid JSON, no valid text) are dropped from every string, as
    other characters no database stores are. Raises :class:`BadJson`."""
    depth = deepest = 0
    for bracket in _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_JSON_DEPTH:
        raise BadJson(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:        # UnicodeDecodeError is a ValueError
        raise BadJson(str(exc)) from exc
    return _without_surrogates(value) if _LONE_SURROGATE_ESCAPE.search(raw) else value


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return "".join(ch for ch in value if not "\ud800" <= ch <= "\udfff")
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


async def json_body(request: web.Request) -> Dict[str, Any]:
    try:
        body = parse_json(await request.read() or b"{}")
    except BadJson:
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not JSON"}),
                                 content_type="application/json")
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be an object"}),
                                 content_type="application/json")
    return body
