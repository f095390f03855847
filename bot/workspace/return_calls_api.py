"""The 回访 queue over HTTP: tasks due (phone in clear for the ticket's assignee) and an
agent recording a try. Every route needs a session.

``GET /api/agent/return-calls`` (``status``: due (default) | done | unreachable | all),
``POST /api/agent/return-calls/{id}`` ``{"outcome": reached|not_reached|refused,
"score": 1-5 (reached), "comment"?}``.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from bot.store.return_calls import OUTCOMES, ReturnCallError
from bot.support.ticket_desk import can_lead
from bot.web import error, json_body, path_id
from bot.workspace.http import PREFIX, signed_in

LISTS = ("due", "done", "unreachable", "all")
MAX_COMMENT = 1000


async def return_calls(request: web.Request) -> web.Response:
    status = request.query.get("status") or "due"
    if status not in LISTS:
        return error(400, f"status: one of {', '.join(LISTS)}")
    agent = signed_in(request)
    items = await asyncio.to_thread(request.app["aftercare"].calls.listing, viewer_id=agent.id,
                                    sees_all=can_lead(agent), status=status)
    return web.json_response({"return_calls": items})


async def record(request: web.Request) -> web.Response:
    call_id = path_id(request, "such return call")
    body = await json_body(request)
    outcome, score, comment = body.get("outcome"), body.get("score"), body.get("comment")
    if outcome not in OUTCOMES:
        return error(400, f"outcome: one of {', '.join(OUTCOMES)}")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int)):
        return error(400, "score: 1 to 5")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        return error(400, f"comment: text up to {MAX_COMMENT} characters")
    agent, care = signed_in(request), request.app["aftercare"]
    owner = await asyncio.to_thread(care.calls.ticket_of, call_id)
    if owner is None:
        return error(404, "no such return call")
    if not can_lead(agent) and owner["assignee_id"] not in (None, agent.id):
        return error(403, "another agent's ticket")
    try:
        call = await care.record(call_id, agent, outcome=outcome, score=score,
                                 comment=(comment or "").strip() or None)
    except ReturnCallError as exc:
        return error(409 if "already" in str(exc) else 400, str(exc))
    return web.json_response({"return_call": call})


def setup(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/return-calls", return_calls)
    app.router.add_post(f"{PREFIX}/return-calls/{{id}}", record)
