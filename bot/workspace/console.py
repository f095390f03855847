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
``POST /api/agent/agents/{id}/…``      admin: password, deactivate, activate, telegram,
                                        sessions/revoke (:mod:`bot.workspace.accounts`)
``POST /api/agent/password``            one's own password (other sessions end)
``GET|POST /api/agent/sessions[/revoke]`` one's own sessions, and ending them
``GET  /api/agent/outbox``              dead letters; ``POST …/outbox/{id}/retry``
``GET  /api/agent/reports``             admin: handoffs, SLA breaches, ratings
``GET  /api/agent/events``              server-sent events: "something changed, re-read"
=====================================  =====================================================

POSTs must be JSON (a cross-site form cannot send that) and the cookie is SameSite=Strict.
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Dict, Optional

import yaml
from aiohttp import web

from bot.messages import ConversationId

from bot.profile import business as profile
from bot.profile import pack
from bot.store.agents import AgentView
from bot.store.handoffs import HandoffError, HandoffView
from bot.workspace import accounts, dead_letters
from bot.workspace.accounts import agent_create, agent_detail, agents_list
from bot.web import error, is_id, json_body, path_id
from bot.workspace.http import PREFIX, handoff_service, signed_in
from bot.workspace.live import events
from bot.workspace.sign_in import auth_middleware, login, logout, me
from bot.store.tickets import TicketError
from bot.support import events as events_names
from bot.settings import setting

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent / "static"
PAGE = HERE / "console.html"
SCRIPT = HERE / "console.js"
CANNED = setting("KEFU_CANNED_REPLIES") or pack.current().path("canned_replies")   # the business's
MAX_REPLY = 2000



# --- pages -------------------------------------------------------------------------------


async def console_page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE.read_bytes(), content_type="text/html", charset="utf-8")


async def console_script(request: web.Request) -> web.Response:
    return web.Response(body=SCRIPT.read_bytes(), content_type="application/javascript",
                        charset="utf-8")


# --- handoffs ----------------------------------------------------------------------------


async def handoffs(request: web.Request) -> web.Response:
    agent = signed_in(request)
    items = await asyncio.to_thread(handoff_service(request).store.listing, agent_id=agent.id,
                                    include_all=agent.is_admin)
    return web.json_response({"handoffs": items, "now": profile.now().isoformat()})


async def _load(request: web.Request) -> HandoffView:
    """The handoff in the URL, if this agent may see it: queued, own, or any for admins."""
    handoff_id = path_id(request, "such conversation")
    handoff = await asyncio.to_thread(handoff_service(request).store.get, handoff_id)
    if handoff is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such conversation"}),
                               content_type="application/json")
    agent = signed_in(request)
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
    agent, service = signed_in(request), handoff_service(request)
    own = handoff.status == "claimed" and handoff.agent_id == agent.id
    # in clear only for the agent holding the conversation; anyone else (admins included)
    # reads the masked copies the store keeps (bot/store/sealing.py)
    lines = await asyncio.to_thread(service.transcripts.transcript, handoff.conversation_id,
                                    clear=own)
    ticket = None
    if handoff.ticket_number:
        ticket = await asyncio.to_thread(service.tickets.find, handoff.ticket_number,
                                         unmasked=own)
    transcript = [{"id": line["id"], "author": line["author"], "at": line["at"],
                   "text": line["text"]} for line in lines]
    if own and lines:
        await asyncio.to_thread(service.store.mark_read, handoff.id, lines[-1]["id"])
    return web.json_response({"handoff": handoff.as_json(), "own": own,
                              "transcript": transcript, "ticket": _ticket_json(ticket),
                              "now": profile.now().isoformat()})


def _conflict(exc: Exception) -> web.Response:
    return error(409, str(exc))


async def claim(request: web.Request) -> web.Response:
    handoff = await _load(request)
    try:
        handoff = await handoff_service(request).claim(handoff.id, signed_in(request))
    except HandoffError as exc:
        return _conflict(exc)
    return web.json_response({"handoff": handoff.as_json()})


async def reply(request: web.Request) -> web.Response:
    handoff = await _load(request)
    text = (await json_body(request)).get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_REPLY:
        return error(400, f"text: 1-{MAX_REPLY} characters")
    try:
        handoff = await handoff_service(request).reply(handoff.id, signed_in(request), text.strip())
    except HandoffError as exc:
        return _conflict(exc)
    return web.json_response({"handoff": handoff.as_json()})


async def transfer(request: web.Request) -> web.Response:
    handoff = await _load(request)
    agent = signed_in(request)
    target = (await json_body(request)).get("agent_id")
    if not is_id(target):
        return error(400, "agent_id is required")
    if handoff.agent_id != agent.id and not agent.is_admin:
        return error(403, "claim the conversation before transferring it")
    try:
        handoff = await handoff_service(request).transfer(handoff.id, agent, target)
    except HandoffError as exc:
        return _conflict(exc)
    return web.json_response({"handoff": handoff.as_json()})


async def close(request: web.Request) -> web.Response:
    handoff = await _load(request)
    try:
        handoff = await handoff_service(request).close(handoff.id, signed_in(request))
    except (HandoffError, TicketError) as exc:
        return _conflict(exc)
    return web.json_response({"handoff": handoff.as_json()})


def _may_edit(handoff: HandoffView, agent: AgentView) -> bool:
    return agent.is_admin or handoff.agent_id == agent.id


async def note(request: web.Request) -> web.Response:
    handoff = await _load(request)
    agent = signed_in(request)
    text = (await json_body(request)).get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_REPLY:
        return error(400, f"text: 1-{MAX_REPLY} characters")
    if not handoff.ticket_number or not _may_edit(handoff, agent):
        return error(403, "claim the conversation first")
    await asyncio.to_thread(handoff_service(request).tickets.add_note, handoff.ticket_number,
                            text.strip(), actor=agent.name)
    await handoff_service(request).publish({"type": events_names.TICKET_CHANGED, "handoff_id": handoff.id})
    return web.json_response({"ok": True})


async def ticket_status(request: web.Request) -> web.Response:
    handoff = await _load(request)
    agent = signed_in(request)
    status = (await json_body(request)).get("status")
    if not handoff.ticket_number or not _may_edit(handoff, agent):
        return error(403, "claim the conversation first")
    try:
        await asyncio.to_thread(handoff_service(request).tickets.change_status, handoff.ticket_number,
                                str(status), actor=agent.name)
    except TicketError as exc:
        return _conflict(exc)
    await handoff_service(request).publish({"type": events_names.TICKET_CHANGED, "handoff_id": handoff.id})
    return web.json_response({"ok": True})


async def takeover(request: web.Request) -> web.Response:
    """An agent takes a conversation from the bot: a callback ticket and a claimed handoff."""
    agent, service = signed_in(request), handoff_service(request)
    conversation = (await json_body(request)).get("conversation_id")
    if not isinstance(conversation, str) or ":" not in conversation or len(conversation) > 128:
        return error(400, "conversation_id is required")
    channel, user_id = ConversationId(conversation).parts()
    lines = await asyncio.to_thread(service.transcripts.transcript, conversation)
    if not lines:
        return error(404, "no such conversation")
    active = await asyncio.to_thread(service.store.active, conversation)
    if active is not None:
        return error(409, "a person has this conversation already")
    ticket, _ = await asyncio.to_thread(
        service.tickets.open_ticket, kind="callback", category=pack.say("handoff_category"),
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
    items = await asyncio.to_thread(retrying, work, engine=handoff_service(request).store.engine)
    return web.json_response({"conversations": items})


async def canned(request: web.Request) -> web.Response:
    try:
        items = yaml.safe_load(CANNED.read_text(encoding="utf-8")) or []
    except OSError:
        items = []
    return web.json_response({"replies": [{"title": str(i.get("title", "")),
                                           "text": str(i.get("text", ""))} for i in items]})


# --- accounts and reports ------------------------------------------------------------------


async def reports(request: web.Request) -> web.Response:
    if not signed_in(request).is_admin:
        return error(403, "admins only")
    return web.json_response(await asyncio.to_thread(handoff_service(request).store.report))


# --- plugin ------------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    """Routes of the agents' console; the handoff service itself is wired by the gateway."""
    app.middlewares.append(auth_middleware)
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
    accounts.add_routes(r, PREFIX)          # passwords, deactivation, sessions, Telegram links
    dead_letters.add_routes(r, PREFIX)      # what the outbox gave up on, and a retry
    r.add_get(f"{PREFIX}/reports", reports)
    r.add_get(f"{PREFIX}/events", events)
