"""WeCom group-robot alerts (notify only): new handoffs waiting and SLA breaches (one each).

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
from bot.support.outbox import Rejected, TryLater, Unreachable

logger = logging.getLogger(__name__)

TARGET = "wecom"
# WeCom's "try again" answers: system busy (-1) and the API rate limits (45009, 45011)
TRANSIENT_ERRCODES = frozenset({-1, 45009, 45011})


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
        elif event["type"] == events.SLA_CLOCK_MISSED:       # one alert per breach
            clock = {"first_response": "首次响应", "resolution": "解决"}.get(event["clock"], event["clock"])
            text = f"【SLA 超时】工单 {event['ticket']}（{event['kind']}）{clock}时限已过"
            if event.get("escalated"):                         # the ticket's first breach
                text += f"，已升级为 {event['priority']}，请组长处理"
        else:
            return
        await self.service.enqueue(TARGET, {"msgtype": "text", "text": {"content": text}},
                                   event.get("handoff_id"))

    async def deliver(self, row: Dict[str, Any]) -> bool:
        """One row to the robot. Unreachable (network, 5xx) and a transient errcode are tried
        again; any other errcode or 4xx means this message is refused for good (bad key,
        content too long …): the row is dead-lettered and the rows after it go on."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._http.post(self.url, json=row["payload"]) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise Unreachable(f"WeCom answered HTTP {resp.status}")
                if resp.status != 200:
                    raise Rejected(f"WeCom answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unreachable(type(exc).__name__) from exc
        except ValueError as exc:
            raise Unreachable("WeCom's answer is not JSON") from exc
        code = body.get("errcode", 0) if isinstance(body, dict) else 0
        if code == 0:
            return True
        if code in TRANSIENT_ERRCODES:          # retried with backoff, then dead-lettered
            raise TryLater(f"WeCom errcode {code}")
        raise Rejected(f"WeCom errcode {code}: {str(body.get('errmsg', ''))[:120]}")

    def attach(self, bus: events.EventBus) -> None:
        """Listen for the events that alert, and deliver the outbox target ``wecom``."""
        bus.subscribe(events.HANDOFF_NEW, self.on_event)
        bus.subscribe(events.SLA_CLOCK_MISSED, self.on_event)
        self.service.deliverers[TARGET] = self.deliver

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
