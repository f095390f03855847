"""The embeddable web widget: ``GET /widget.js`` and CORS for the sites allowed to embed it.

A shop pastes ``<script src="https://<gateway>/widget.js" data-kefu-title="…" async></script>``
into its own pages; the script (connectors/static/widget.js) adds a chat button and panel in a
Shadow DOM and talks to the same ``/api/chat`` endpoints as the gateway's own page. Those
calls come from the shop's origin, so the browser needs CORS: only the origins listed in
``KEFU_WIDGET_ORIGINS`` get ``Access-Control-Allow-Origin`` (and an answer to the preflight);
any other origin gets no CORS header at all, so its pages cannot read the answers.
No cookies are involved (the conversation is named by the browser's random id), so
credentials are never allowed.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from aiohttp import web

logger = logging.getLogger(__name__)

SCRIPT = Path(__file__).with_name("static") / "widget.js"
CHAT_PATHS = frozenset({"/api/chat", "/api/chat/updates", "/api/chat/history"})
ALLOWED_METHODS = {"GET", "POST"}
PREFLIGHT_MAX_AGE = "600"


@lru_cache(maxsize=2)
def _script(mtime: float) -> bytes:
    return SCRIPT.read_bytes()


async def widget_script(request: web.Request) -> web.Response:
    return web.Response(body=_script(SCRIPT.stat().st_mtime),
                        content_type="application/javascript", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=300",
                                 "X-Content-Type-Options": "nosniff"})


def cors_middleware(origins: Iterable[str]):
    allowed = frozenset(origins)

    def allow(headers, origin: str) -> None:
        headers["Access-Control-Allow-Origin"] = origin

    @web.middleware
    async def cors(request: web.Request, handler):
        if request.path not in CHAT_PATHS:
            return await handler(request)
        origin = request.headers.get("Origin")
        ok = origin is not None and origin in allowed
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            wanted = request.headers["Access-Control-Request-Method"].upper()
            if not ok or wanted not in ALLOWED_METHODS:
                return web.Response(status=403, headers={"Vary": "Origin"})
            response = web.Response(status=204, headers={
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE, "Vary": "Origin"})
            allow(response.headers, origin)
            return response
        try:
            response = await handler(request)
        except web.HTTPException as exc:          # 4xx raised by aiohttp: readable too
            exc.headers["Vary"] = "Origin"
            if ok:
                allow(exc.headers, origin)
            raise
        response.headers["Vary"] = "Origin"
        if ok:
            allow(response.headers, origin)
        return response

    return cors


def setup(app: web.Application) -> None:
    """Called by :func:`connectors.web.setup` (the widget shares the web chat's endpoints)."""
    origins = app["settings"].widget_origins
    if not origins:
        logger.info("web widget: KEFU_WIDGET_ORIGINS unset, no other site may embed /widget.js")
    app.middlewares.append(cors_middleware(origins))
    app.router.add_get("/widget.js", widget_script)
