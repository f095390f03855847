"""Static files every web page of the gateway shares: ``kefu.js``, the consoles' DOM and JSON
helpers (loaded by the agents' console and the admins' 训练 page before their own scripts).

``GET /static/kefu.js`` needs no sign-in (no data) and carries the consoles' security headers.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.web import SECURITY_HEADERS

SCRIPT = Path(__file__).resolve().parent / "kefu.js"
ROUTE = "/static/kefu.js"


async def shared_script(request: web.Request) -> web.Response:
    return web.Response(body=SCRIPT.read_bytes(), content_type="application/javascript",
                        charset="utf-8", headers=SECURITY_HEADERS)


def setup(app: web.Application) -> None:
    app.router.add_get(ROUTE, shared_script)
