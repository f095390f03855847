"""What the agents' workspace routes share: the API prefix, the signed-in agent, the handoff service.

Runs in the gateway. Generic HTTP pieces (cookie, headers, JSON bodies) are in bot/web.py.
"""
from __future__ import annotations

from aiohttp import web

from bot.store.agents import AgentView
from bot.support.handoffs import HandoffService

PREFIX = "/api/agent"


def handoff_service(request: web.Request) -> HandoffService:
    return request.app["handoff"]


def signed_in(request: web.Request) -> AgentView:
    return request["agent"]
