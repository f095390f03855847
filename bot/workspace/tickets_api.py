"""The agents' tickets (工单) over HTTP: list with filters and search, ticket page, status,
assignment and internal notes. Every route needs a session (bot/workspace/sign_in.py).

``GET /api/agent/tickets`` (``status kind priority channel sla assignee from to q page``),
``GET /api/agent/tickets/{number}``, ``POST …/{number}/status`` ``{"status", "note"?}``,
``POST …/{number}/assign`` ``{"agent_id": id | null}``, ``POST …/{number}/note`` ``{"text"}``.
Phones, addresses and the transcript are in clear only for the ticket's assignee.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

from aiohttp import web

from bot.store.ticket_queries import SLA_STATES, TicketFilter, TicketQueries
from bot.store.tickets import KIND_LABELS, STATUSES, TicketError
from bot.support.ticket_desk import TicketDesk
from bot.web import error, is_id, json_body
from bot.workspace.http import PREFIX, handoff_service, signed_in

NUMBER_RE = re.compile(r"^[A-Za-z]{2}\d{6,20}$")
PRIORITIES = ("urgent", "high", "normal")
MAX_NOTE = 2000


def desk(request: web.Request) -> TicketDesk:
    return request.app["ticket_desk"]


def queries(request: web.Request) -> TicketQueries:
    if "ticket_queries" not in request.app:
        request.app["ticket_queries"] = TicketQueries(handoff_service(request).store.engine)
    return request.app["ticket_queries"]


def parse_day(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f'{{"error": "{name}: YYYY-MM-DD"}}',
                                 content_type="application/json")


def _choice(request: web.Request, name: str, allowed) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise web.HTTPBadRequest(text=f'{{"error": "{name}: one of {", ".join(allowed)}"}}',
                                 content_type="application/json")
    return value


async def tickets_list(request: web.Request) -> web.Response:
    q = request.query
    assignee = q.get("assignee") or None
    if assignee is not None and assignee not in ("me", "none") and not assignee.isdigit():
        return error(400, "assignee: me, none or an agent id")
    try:
        page = int(q.get("page") or 1)
    except ValueError:
        return error(400, "page: a number")
    text = (q.get("q") or "").strip()
    if len(text) > 64:
        return error(400, "q: at most 64 characters")
    f = TicketFilter(status=_choice(request, "status", STATUSES),
                     kind=_choice(request, "kind", tuple(KIND_LABELS)),
                     priority=_choice(request, "priority", PRIORITIES),
                     channel=(q.get("channel") or None), sla=_choice(request, "sla", SLA_STATES),
                     assignee=assignee, date_from=parse_day(q.get("from"), "from"),
                     date_to=parse_day(q.get("to"), "to"), q=text or None,
                     page=min(max(page, 1), 100_000))
    if f.channel is not None and len(f.channel) > 16:
        return error(400, "channel: at most 16 characters")
    result = await asyncio.to_thread(queries(request).listing, f, viewer_id=signed_in(request).id)
    return web.json_response(result)


def _number(request: web.Request) -> str:
    number = request.match_info["number"]
    if not NUMBER_RE.match(number):
        raise web.HTTPNotFound(text='{"error": "no such ticket"}', content_type="application/json")
    return number.upper()


async def ticket_detail(request: web.Request) -> web.Response:
    number = _number(request)
    item = await asyncio.to_thread(queries(request).detail, number, viewer_id=signed_in(request).id)
    if item is None:
        return error(404, "no such ticket")
    item["return_calls"] = await asyncio.to_thread(
        request.app["aftercare"].calls.for_ticket, item.pop("id"), unmasked=item["own"])
    return web.json_response({"ticket": item})


async def _act(request: web.Request, work) -> web.Response:
    try:
        ticket = await work()
    except PermissionError as exc:
        return error(403, str(exc))
    except TicketError as exc:
        return error(404 if str(exc).startswith("no ticket") else 409, str(exc))
    return web.json_response({"ticket": {"number": ticket.number, "status": ticket.status,
                                         "status_label": ticket.status_label,
                                         "assignee_id": ticket.assignee_id,
                                         "priority": ticket.priority}})


async def ticket_status(request: web.Request) -> web.Response:
    number = _number(request)
    body = await json_body(request)
    status, note = body.get("status"), body.get("note")
    if status not in STATUSES:
        return error(400, f"status: one of {', '.join(STATUSES)}")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        return error(400, f"note: text up to {MAX_NOTE} characters")
    return await _act(request, lambda: desk(request).change_status(
        number, status, signed_in(request), note=(note or "").strip() or None))


async def ticket_assign(request: web.Request) -> web.Response:
    number = _number(request)
    body = await json_body(request)
    agent_id = body.get("agent_id")
    if agent_id is not None and not is_id(agent_id):
        return error(400, "agent_id: an agent's id or null")
    return await _act(request, lambda: desk(request).assign(number, agent_id, signed_in(request)))


async def ticket_note(request: web.Request) -> web.Response:
    number = _number(request)
    text = (await json_body(request)).get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_NOTE:
        return error(400, f"text: 1-{MAX_NOTE} characters")
    return await _act(request, lambda: desk(request).note(number, text.strip(), signed_in(request)))


SCRIPT = Path(__file__).resolve().parent / "static" / "workspace.js"


async def workspace_script(request: web.Request) -> web.Response:
    """The console's 工单 / 回访 / 报表 tabs (no data: public, like the console page)."""
    return web.Response(body=SCRIPT.read_bytes(), content_type="application/javascript",
                        charset="utf-8")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/workspace.js", workspace_script)
    r.add_get(f"{PREFIX}/tickets", tickets_list)
    r.add_get(f"{PREFIX}/tickets/{{number}}", ticket_detail)
    r.add_post(f"{PREFIX}/tickets/{{number}}/status", ticket_status)
    r.add_post(f"{PREFIX}/tickets/{{number}}/assign", ticket_assign)
    r.add_post(f"{PREFIX}/tickets/{{number}}/note", ticket_note)
