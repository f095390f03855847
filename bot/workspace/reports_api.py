"""The lead's dashboard (报表) over HTTP: admins and leads only; agents get 403.

``GET /api/agent/reports/summary?from=YYYY-MM-DD&to=YYYY-MM-DD`` (the figures of
bot/support/metrics.py, with their definitions), ``GET /api/agent/reports/chart.svg?chart=…``
(server-drawn SVG, bot/workspace/charts.py), ``GET /api/agent/reports/export.csv?rows=
conversations|tickets``. Without dates: the last 7 days (shop time).
"""
from __future__ import annotations

import asyncio
import datetime as dt

from aiohttp import web

from bot.profile import business as profile
from bot.store.reports import ReportStore
from bot.support import metrics
from bot.support.ticket_desk import can_lead
from bot.workspace import charts
from bot.web import error
from bot.workspace.http import PREFIX, handoff_service, signed_in
from bot.workspace.tickets_api import parse_day

MAX_DAYS = 366
DEFINITIONS = {
    "conversations": "会话：同一客户在同一渠道的一段连续消息，间隔超过 30 分钟即为新会话；按开始日期计。",
    "bot_resolved_rate": "机器人解决率：未转人工（无人工会话、无非服务时间回电工单）且 72 小时内未再次咨询的会话 / 全部会话。",
    "handoff_rate": "转人工率：会话中请求了人工（人工会话或非服务时间回电工单）的会话 / 全部会话。",
    "first_response": "人工首次响应 P50/P90：从转人工请求到第一条人工回复，仅计服务时间（机器人时间、下班时间不计）；最近秩百分位。",
    "resolution": "解决时长 P50/P90：工单从创建到解决，仅计服务时间，等待客户回复的时间不计。",
    "sla_attainment": "SLA 达成率：按时钟（首次响应、解决）统计本期创建工单中 达成 /（达成 + 超时）；进行中的不计入。",
    "csat": "满意度：本期发出的满意度询问（机器人询问与人工回访）的 1–5 分答复分布；回复率 = 已答复 / 已询问。",
    "return_calls": "回访：本期产生的回访任务中 待回访、已完成（接通或拒绝）、无法联系（达到最大尝试次数）。",
    "top_misses": "未理解：机器人兜底回复的客户消息（已脱敏），按出现次数排序；到训练页处理。",
    "agents": "按客服：处理的人工会话数、其首次响应 P50、解决的工单数、满意度平均分。",
}


def _lead(request: web.Request) -> None:
    if not can_lead(signed_in(request)):
        raise web.HTTPForbidden(text='{"error": "admins and team leads only"}',
                                content_type="application/json")


def _range(request: web.Request) -> tuple[dt.date, dt.date]:
    today = profile.now().astimezone(profile.shop_tz()).date()
    date_to = parse_day(request.query.get("to"), "to") or today
    date_from = parse_day(request.query.get("from"), "from") or date_to - dt.timedelta(days=6)
    if date_to < date_from or (date_to - date_from).days >= MAX_DAYS:
        raise web.HTTPBadRequest(text=f'{{"error": "from ≤ to, at most {MAX_DAYS} days"}}',
                                 content_type="application/json")
    return date_from, date_to


def _store(request: web.Request) -> ReportStore:
    return ReportStore(handoff_service(request).store.engine)


async def summary(request: web.Request) -> web.Response:
    _lead(request)
    date_from, date_to = _range(request)
    result = await asyncio.to_thread(metrics.summary, date_from, date_to, _store(request))
    return web.json_response({**result, "definitions": DEFINITIONS})


async def chart(request: web.Request) -> web.Response:
    _lead(request)
    name = request.query.get("chart") or ""
    if name not in charts.CHARTS:
        return error(400, f"chart: one of {', '.join(charts.CHARTS)}")
    date_from, date_to = _range(request)
    result = await asyncio.to_thread(metrics.summary, date_from, date_to, _store(request))
    return web.Response(text=charts.chart(name, result), content_type="image/svg+xml",
                        charset="utf-8")


async def export(request: web.Request) -> web.Response:
    _lead(request)
    rows = request.query.get("rows") or "conversations"
    if rows not in ("conversations", "tickets"):
        return error(400, "rows: conversations or tickets")
    date_from, date_to = _range(request)
    text = await asyncio.to_thread(metrics.export_csv, rows, date_from, date_to, _store(request))
    name = f"kefu-{rows}-{date_from}-{date_to}.csv"
    return web.Response(body=("\ufeff" + text).encode("utf-8"), content_type="text/csv",
                        charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def setup(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/reports/summary", summary)
    app.router.add_get(f"{PREFIX}/reports/chart.svg", chart)
    app.router.add_get(f"{PREFIX}/reports/export.csv", export)
