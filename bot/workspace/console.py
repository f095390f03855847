"""The agents' web console and the handoff plugin (gate, event handler, background work).

Routes (every one under ``/api/agent`` needs a signed-in agent, except those in
``PUBLIC_ROUTES``; the middleware enforces it for the whole prefix):

=====================================  =====================================================
``GET  /console``, ``/console/app.js``  the page and its script (no data: public)
``POST /api/agent/login``               name + password → HttpOnly session cookie (public)
``POST /api/agent/logout``              ends the session
``GET  /api/agent/me``                  who is signed in
``GET  /api/agent/handoffs``            queue, own conversations (admins: all), by SLA due
``GET  /api/agent/handoffs/{id}``       transcript + ticket (refused for another agent's)
``POST /api/agent/handoffs/{id}/…``     claim, reply, transfer, close, note, status
``POST /api/agent/takeover``            take a conversation from the bot
``GET  /api/agent/conversations``       recent conversations (for takeover)
``GET  /api/agent/canned``              快捷回复 from ``bot/canned_replies.yml``
``GET  /api/agent/agents[/{id}]``       names for transfer; one account: self or admin
``POST /api/agent/agents``              admin: create an agent
``GET  /api/agent/reports``             admin: handoffs, SLA breaches, ratings
``GET  /api/agent/events``              server-sent events: "something changed, re-read"
=====================================  =====================================================

POSTs must be JSON (a cross-site form cannot send that) and the cookie is SameSite=Strict.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, Optional

import yaml
from aiohttp import web

from bot.profile import privacy

from bot.profile import business as profile
from bot.profile.business import PROJECT_ROOT
from bot.store.agents import AgentError, AgentView
from bot.store.handoffs import HandoffError, HandoffView
from bot.support.handoffs import HandoffService
from bot.store.tickets import TicketError

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent / "static"
PAGE = HERE / "console.html"
SCRIPT = HERE / "console.js"
CANNED = Path(os.environ.get("KEFU_CANNED_REPLIES",
                             PROJECT_ROOT / "bot" / "canned_replies.yml"))
COOKIE = "kefu_agent"
PREFIX = "/api/agent"
PUBLIC_ROUTES = {("POST", "/api/agent/login")}     # everything else under PREFIX needs a session
MAX_REPLY = 2000
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self' "
                                "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _service(request: web.Request) -> HandoffService:
    return request.app["handoff"]


def _agent(request: web.Request) -> AgentView:
    return request["agent"]


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def refuse_unsafe_post(request: web.Request) -> Optional[web.Response]:
    """A POST must be JSON from this origin: a cross-site form can send neither."""
    if request.method != "POST":
        return None
    if request.content_type != "application/json":
        return _error(415, "JSON only")
    origin = request.headers.get("Origin")
    if origin and origin.split("://", 1)[-1] != request.host:
        return _error(403, "cross-origin request refused")
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler):
    path = request.path
    if path.startswith(PREFIX + "/") or path == PREFIX:
        refused = refuse_unsafe_post(request)
        if refused is not None:
            return refused
        if (request.method, path) not in PUBLIC_ROUTES:
            service = _service(request)
            agent = await asyncio.to_thread(service.agents.session_agent, request.cookies.get(COOKIE))
            if agent is None:
                return _error(401, "sign in first")
            request["agent"] = agent
    response = await handler(request)
    if path.startswith(PREFIX) or path.startswith("/console"):
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
    return response


async def _json_body(request: web.Request) -> Dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not JSON"}),
                                 content_type="application/json")
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be an object"}),
                                 content_type="application/json")
    return body


# --- pages -------------------------------------------------------------------------------


async def console_page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE.read_bytes(), content_type="text/html", charset="utf-8")


async def console_script(request: web.Request) -> web.Response:
    return web.Response(body=SCRIPT.read_bytes(), content_type="application/javascript",
                        charset="utf-8")


# --- sign-in -------------------------------------------------------------------------------


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
    body = await _json_body(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or len(password) > 256:
        return _error(400, "name and password are required")
    keys = (f"name:{name[:64]}", f"addr:{request.remote}")
    if _locked_out(keys):
        return _error(401, "too many failed sign-ins; try again in a few minutes")
    service = _service(request)
    agent = await asyncio.to_thread(service.agents.authenticate, name, password)
    if agent is None:
        if len(_failures) > 10_000:
            _failures.clear()
        for key in keys:
            _failures.setdefault(key, []).append(time.monotonic())
        await asyncio.sleep(0.2)
        return _error(401, "wrong name or password")
    token = await asyncio.to_thread(service.agents.start_session, agent.id)
    response = web.json_response({"agent": agent.as_json()})
    secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=secure, max_age=int(float(os.environ.get("KEFU_SESSION_HOURS", "12")) * 3600))
    return response


async def logout(request: web.Request) -> web.Response:
    await asyncio.to_thread(_service(request).agents.end_session, request.cookies.get(COOKIE))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    return web.json_response({"agent": _agent(request).as_json(),
                              "now": profile.now().isoformat()})


# --- handoffs ----------------------------------------------------------------------------


async def handoffs(request: web.Request) -> web.Response:
    agent = _agent(request)
    items = await asyncio.to_thread(_service(request).store.listing, agent_id=agent.id,
                                    include_all=agent.is_admin)
    return web.json_response({"handoffs": items, "now": profile.now().isoformat()})


async def _load(request: web.Request) -> HandoffView:
    """The handoff in the URL, if this agent may see it: queued, own, or any for admins."""
    try:
        handoff_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound()
    handoff = await asyncio.to_thread(_service(request).store.get, handoff_id)
    if handoff is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such conversation"}),
                               content_type="application/json")
    agent = _agent(request)
    if not agent.is_admin and handoff.agent_id not in (None, agent.id):
        raise web.HTTPForbidden(text=json.dumps({"error": "another agent's conversation"}),
                                content_type="application/json")
    return handoff


def _ticket_json(ticket) -> Optional[Dict[str, Any]]:
    if ticket is None:
        return None
    return {"number": ticket.number, "kind": ticket.kind, "kind_label": ticket.kind_label,
            "category": ticket.category, "priority": ticket.priority, "status": ticket.status,
            "status_label": ticket.status_label, "description": ticket.description,
            "order_id": ticket.order_id, "product": ticket.product, "phone": ticket.phone,
            "address": ticket.address, "sla_due_at": ticket.sla_due_at.isoformat(),
            "created_at": ticket.created_at.isoformat(), "rating": ticket.rating,
            "events": ticket.events}


async def handoff_detail(request: web.Request) -> web.Response:
    handoff = await _load(request)
    agent, service = _agent(request), _service(request)
    own = handoff.status == "claimed" and handoff.agent_id == agent.id
    lines = await asyncio.to_thread(service.transcripts.transcript, handoff.conversation_id)
    ticket = None
    if handoff.ticket_number:
        ticket = await asyncio.to_thread(service.tickets.find, handoff.ticket_number,
                                         unmasked=own)
    transcript = [{"id": line["id"], "author": line["author"], "at": line["at"],
                   "text": line["text"] if own else privacy.mask_text(line["text"])}
                  for line in lines]
    if own and lines:
        await asyncio.to_thread(service.store.mark_read, handoff.id, lines[-1]["id"])
    return web.json_response({"handoff": handoff.as_json(), "own": own,
                              "transcript": transcript, "ticket": _ticket_json(ticket),
                              "now": profile.now().isoformat()})


def _conflict(exc: Exception) -> web.Response:
    return _error(409, str(exc))


async def claim(request: web.Request) -> web.Response:
    handoff = await _load(request)
    try:
        handoff = await _service(request).claim(handoff.id, _agent(request))
    except HandoffError as exc:
        return _conflict(exc)
    return web.json_response({"handoff": handoff.as_json()})


async def reply(request: web.Request) -> web.Response:
    handoff = await _load(request)
    text = (await _json_body(request)).get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_REPLY:
        return _error(400, f"text: 1-{MAX_REPLY} characters")
    try:
        handoff = await _service(request).reply(handoff.id, _agent(request), text.strip())
    except HandoffError as exc:
        return _conflict(exc)
    return web.json_response({"handoff": handoff.as_json()})


async def transfer(request: web.Request) -> web.Response:
    handoff = await _load(request)
    agent = _agent(request)
    target = (await _json_body(request)).get("agent_id")
    if not isinstance(target, int):
        return _error(400, "agent_id is required")
    if handoff.agent_id != agent.id and not agent.is_admin:
        return _error(403, "claim the conversation before transferring it")
    try:
        handoff = await _service(request).transfer(handoff.id, agent, target)
    except HandoffError as exc:
        return _conflict(exc)
    return web.json_response({"handoff": handoff.as_json()})


async def close(request: web.Request) -> web.Response:
    handoff = await _load(request)
    try:
        handoff = await _service(request).close(handoff.id, _agent(request))
    except (HandoffError, TicketError) as exc:
        return _conflict(exc)
    return web.json_response({"handoff": handoff.as_json()})


def _may_edit(handoff: HandoffView, agent: AgentView) -> bool:
    return agent.is_admin or handoff.agent_id == agent.id


async def note(request: web.Request) -> web.Response:
    handoff = await _load(request)
    agent = _agent(request)
    text = (await _json_body(request)).get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_REPLY:
        return _error(400, f"text: 1-{MAX_REPLY} characters")
    if not handoff.ticket_number or not _may_edit(handoff, agent):
        return _error(403, "claim the conversation first")
    await asyncio.to_thread(_service(request).tickets.add_note, handoff.ticket_number,
                            text.strip(), actor=agent.name)
    await _service(request).publish({"type": "ticket", "handoff_id": handoff.id})
    return web.json_response({"ok": True})


async def ticket_status(request: web.Request) -> web.Response:
    handoff = await _load(request)
    agent = _agent(request)
    status = (await _json_body(request)).get("status")
    if not handoff.ticket_number or not _may_edit(handoff, agent):
        return _error(403, "claim the conversation first")
    try:
        await asyncio.to_thread(_service(request).tickets.change_status, handoff.ticket_number,
                                str(status), actor=agent.name)
    except TicketError as exc:
        return _conflict(exc)
    await _service(request).publish({"type": "ticket", "handoff_id": handoff.id})
    return web.json_response({"ok": True})


async def takeover(request: web.Request) -> web.Response:
    """An agent takes a conversation from the bot: a callback ticket and a claimed handoff."""
    agent, service = _agent(request), _service(request)
    conversation = (await _json_body(request)).get("conversation_id")
    if not isinstance(conversation, str) or ":" not in conversation or len(conversation) > 128:
        return _error(400, "conversation_id is required")
    channel, user_id = conversation.split(":", 1)
    lines = await asyncio.to_thread(service.transcripts.transcript, conversation)
    if not lines:
        return _error(404, "no such conversation")
    active = await asyncio.to_thread(service.store.active, conversation)
    if active is not None:
        return _error(409, "a person has this conversation already")
    ticket, _ = await asyncio.to_thread(
        service.tickets.open_ticket, kind="callback", category="人工服务",
        description="客服主动接入", customer_id=conversation, channel=channel,
        idempotency_key=f"{conversation}:takeover:{lines[-1]['id']}",
        details={"reason": "takeover", "agent": agent.name})
    handoff = await service.open(conversation, channel, user_id, ticket_number=ticket.number,
                                 reason="takeover", agent=agent)
    return web.json_response({"handoff": handoff.as_json()})


async def conversations(request: web.Request) -> web.Response:
    from sqlalchemy import func, select

    from bot.store.engine import retrying
    from bot.store.schema import Message

    def work(session):
        rows = session.execute(select(Message.conversation_id, func.max(Message.id).label("last"))
                               .group_by(Message.conversation_id)
                               .order_by(func.max(Message.id).desc()).limit(30)).all()
        return [{"conversation_id": r.conversation_id, "last_message_id": r.last} for r in rows]
    items = await asyncio.to_thread(retrying, work, engine=_service(request).store.engine)
    return web.json_response({"conversations": items})


async def canned(request: web.Request) -> web.Response:
    try:
        items = yaml.safe_load(CANNED.read_text(encoding="utf-8")) or []
    except OSError:
        items = []
    return web.json_response({"replies": [{"title": str(i.get("title", "")),
                                           "text": str(i.get("text", ""))} for i in items]})


# --- accounts and reports ------------------------------------------------------------------


async def agents_list(request: web.Request) -> web.Response:
    everyone = await asyncio.to_thread(_service(request).agents.all)
    return web.json_response({"agents": [{"id": a.id, "display_name": a.display_name}
                                         for a in everyone]})


async def agent_detail(request: web.Request) -> web.Response:
    agent = _agent(request)
    try:
        wanted = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound()
    if wanted != agent.id and not agent.is_admin:
        return _error(403, "another agent's account")
    other = await asyncio.to_thread(_service(request).agents.get, wanted)
    if other is None:
        return _error(404, "no such agent")
    return web.json_response({"agent": {**other.as_json(),
                                        "telegram_user_id": other.telegram_user_id}})


async def agent_create(request: web.Request) -> web.Response:
    if not _agent(request).is_admin:
        return _error(403, "admins only")
    body = await _json_body(request)
    try:
        created = await asyncio.to_thread(
            _service(request).agents.create, str(body.get("name", "")),
            str(body.get("password", "")), role=str(body.get("role", "agent")),
            display_name=str(body.get("display_name", "")))
    except AgentError as exc:
        return _error(400, str(exc))
    return web.json_response({"agent": created.as_json()}, status=201)


async def reports(request: web.Request) -> web.Response:
    if not _agent(request).is_admin:
        return _error(403, "admins only")
    return web.json_response(await asyncio.to_thread(_service(request).store.report))


# --- live updates ----------------------------------------------------------------------------


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events. They say only *what* changed; the page re-reads what it may see."""
    service = _service(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
    service.subscribers.add(queue)
    try:
        await response.write(b"retry: 2000\nevent: hello\ndata: {}\n\n")
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=15)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            await response.write(f"event: change\ndata: {json.dumps(item)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        service.subscribers.discard(queue)
    return response


# --- plugin ------------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    service = HandoffService(app)
    app["handoff"] = service
    app.middlewares.append(auth_middleware)
    router = app["router"]
    router.gates.append(service.gate)
    router.event_handlers.append(service.on_kefu_event)
    service.hooks.append(service.wecom_hook)

    app.router.add_get("/console", console_page)
    app.router.add_get("/console/app.js", console_script)
    r = app.router
    r.add_post(f"{PREFIX}/login", login)
    r.add_post(f"{PREFIX}/logout", logout)
    r.add_get(f"{PREFIX}/me", me)
    r.add_get(f"{PREFIX}/handoffs", handoffs)
    r.add_get(f"{PREFIX}/handoffs/{{id}}", handoff_detail)
    r.add_post(f"{PREFIX}/handoffs/{{id}}/claim", claim)
    r.add_post(f"{PREFIX}/handoffs/{{id}}/reply", reply)
    r.add_post(f"{PREFIX}/handoffs/{{id}}/transfer", transfer)
    r.add_post(f"{PREFIX}/handoffs/{{id}}/close", close)
    r.add_post(f"{PREFIX}/handoffs/{{id}}/note", note)
    r.add_post(f"{PREFIX}/handoffs/{{id}}/status", ticket_status)
    r.add_post(f"{PREFIX}/takeover", takeover)
    r.add_get(f"{PREFIX}/conversations", conversations)
    r.add_get(f"{PREFIX}/canned", canned)
    r.add_get(f"{PREFIX}/agents", agents_list)
    r.add_post(f"{PREFIX}/agents", agent_create)
    r.add_get(f"{PREFIX}/agents/{{id}}", agent_detail)
    r.add_get(f"{PREFIX}/reports", reports)
    r.add_get(f"{PREFIX}/events", events)

    sla_interval = float(os.environ.get("KEFU_SLA_INTERVAL", "30"))

    async def start(_app: web.Application) -> None:
        _app["handoff_tasks"] = [asyncio.ensure_future(service.outbox_loop()),
                                 asyncio.ensure_future(service.sla_loop(sla_interval))]

    async def shutdown(_app: web.Application) -> None:
        for queue in list(service.subscribers):    # end SSE streams so shutdown is prompt
            queue.put_nowait(None)

    async def cleanup(_app: web.Application) -> None:
        for task in _app.get("handoff_tasks", []):
            task.cancel()
        await service.close_http()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)
