"""WeCom group-robot alerts (notify only): new handoffs waiting and SLA breaches.

A listener on the event bus turns those events into robot messages queued in the SQL
outbox (target ``wecom``); :meth:`WeComAlerts.deliver` sends one row. Runs in the gateway.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict

import aiohttp

from bot.support import events
from bot.support.handoffs import HandoffService

logger = logging.getLogger(__name__)

TARGET = "wecom"


class WeComAlerts:
    def __init__(self, service: HandoffService, url: str) -> None:
        self.service = service
        self.url = url
        self._http: aiohttp.ClientSession | None = None

    async def on_event(self, event: Dict[str, Any]) -> None:
        if event["type"] == events.HANDOFF_NEW and not event.get("agent"):
            h = event["handoff"]
            text = (f"【转人工】会话 #{h['id']}（{h['channel']}，{h['priority']}）等待接入，"
                    f"工单 {h['ticket_number'] or '-'}，原因 {h['reason']}")
        elif event["type"] == events.SLA_BREACH:
            text = f"【超时】工单 {event['ticket']}（{event['kind']}，{event['priority']}）已超过承诺时间"
        else:
            return
        await self.service.enqueue(TARGET, {"msgtype": "text", "text": {"content": text}},
                                   event.get("handoff_id"))

    async def deliver(self, row: Dict[str, Any]) -> bool:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._http.post(self.url, json=row["payload"]) as resp:
                if resp.status != 200:
                    return False
                body = await resp.json(content_type=None)
                return not isinstance(body, dict) or body.get("errcode", 0) == 0
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return False

    def attach(self, bus: events.EventBus) -> None:
        """Listen for the events that alert, and deliver the outbox target ``wecom``."""
        bus.subscribe(events.HANDOFF_NEW, self.on_event)
        bus.subscribe(events.SLA_BREACH, self.on_event)
        self.service.deliverers[TARGET] = self.deliver

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
