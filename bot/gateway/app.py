"""The gateway: the one process that faces customers (aiohttp).

It serves the web chat, receives channel webhooks, decides who answers each message
(:mod:`bot.gateway.router`), and reports readiness on ``GET /healthz``.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
from functools import lru_cache
from pathlib import Path

import yaml
from aiohttp import web

from bot.brain.rasa_client import RasaClient
from bot.gateway import clients, scaleout
from bot.gateway.router import RateLimiter, Replayer, Router
from bot.profile.privacy import install_log_redaction
from bot.settings import Settings
from bot.web import close_after_unread_body
from bot.store.deliveries import PRUNE_EVERY, DeliveryLedger
from bot.store.throttle import SignInThrottleStore
from bot.store.transcripts import TranscriptStore
from bot.support import events, metrics
from bot.support.events import EventBus
from bot.support.handoffs import HandoffService
from bot.support.waiting import ROUND_EVERY, QueueWatcher
from bot.support.return_calls import AfterCare
from bot.support.sla_clocks import SlaClocks
from bot.support.ticket_desk import TicketDesk
from bot.tasks import Supervisor
from bot.training import admin_api
from bot import web_static
from bot.workspace import (agents_group, console, erasure_api, reports_api, return_calls_api,
                            tickets_api)
from bot.workspace.alerts import WeComAlerts
from bot.workspace.live import LiveUpdates

logger = logging.getLogger(__name__)

# Customer channels: each module's ``setup(app)`` adds its routes and registers a sender for
# its channel in ``app["senders"]``. Nothing else is wired by a plugin: cross-cutting work
# (who listens to which event, which background loops run) is decided in create_app below.
CHANNELS = (
    "connectors.web",
    "connectors.wechat.official_account",   # customers on a WeChat official account
    "connectors.telegram",                  # customers on Telegram
    "connectors.wechat.kf",                 # customers on 微信客服 (WeCom customer service)
)


async def healthz(request: web.Request) -> web.Response:
    """200 only when Rasa has a model loaded and the action server answers."""
    rasa: RasaClient = request.app["rasa"]
    model, actions = await rasa.model_loaded(), await rasa.actions_ready()
    status = 200 if model and actions else 503
    return web.json_response({"rasa_model_loaded": model, "action_server": actions},
                             status=status)


OPENAPI = Path(__file__).with_name("openapi.yml")


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def create_app(settings: Settings | None = None) -> web.Application:
    """The composition root: every part of the gateway and every wire between them, in one place."""
    settings = settings or Settings.from_env()
    app = web.Application(client_max_size=64 * 1024)
    app.middlewares.append(close_after_unread_body)     # first: it sees every answer
    supervisor = Supervisor()
    bus = EventBus()
    rasa = RasaClient(settings.rasa_url, token=settings.rasa_token,
                      timeout=settings.rasa_timeout, action_url=settings.action_url)
    transcripts = TranscriptStore()
    router = Router(rasa, transcripts, max_chars=settings.max_message_chars,
                    reply_timeout=settings.reply_timeout,
                    limiter=RateLimiter(settings.rate_per_minute, settings.rate_burst),
                    max_turns=settings.max_concurrent_turns)
    # channel -> async push(user_id, [OutboundMessage]): delivery outside a turn
    handoffs = HandoffService(transcripts=transcripts, senders=router.senders, bus=bus)
    router.outbox = handoffs.outbox      # one durable outbox for every push (bot/support/outbox.py)
    # the client's address behind trusted proxies, for every handler after this one
    app.middlewares.append(clients.client_address_middleware(settings.trusted_proxies))
    live = LiveUpdates()
    app.update(settings=settings, rasa=rasa, router=router, senders=router.senders, bus=bus,
               handoff=handoffs, agents=handoffs.agents, live_updates=live, supervisor=supervisor)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi_json)

    # who answers: while a person has the conversation the handoff gate keeps the bot out;
    # what the actions announce (a handoff, a ticket) goes on the bus as named events
    router.gates.append(handoffs.gate)

    async def announce(message, payload) -> None:
        await bus.publish({"type": payload.get("event"), "message": message, "payload": payload})

    router.event_handlers.append(announce)
    bus.subscribe_many(events.ACTION_EVENTS, handoffs.on_action_event)

    async def clear_forms(event) -> None:
        """A person takes the conversation: Rasa's form and its slots are cleared (issue 14)."""
        conversation = (event.get("handoff") or {}).get("conversation_id")
        if conversation:
            try:
                await rasa.reset_dialogue(conversation)
            except Exception:      # RasaUnavailable: the form stays; the gate keeps the bot out
                logger.warning("could not clear the form of a handed-off conversation")

    bus.subscribe_many((events.HANDOFF_NEW, events.CLAIMED), clear_forms)
    # customers waiting for a person: their new place in the queue, a callback at shift end
    waiting = QueueWatcher(handoffs)
    bus.subscribe_many((events.CLAIMED, events.CLOSED), waiting.on_queue_event)

    for name in CHANNELS:
        importlib.import_module(name).setup(app)
    if settings.rate_per_address_minute > 0:   # new web sender ids are free: limit the address too
        app.middlewares.append(clients.address_limit_middleware(
            RateLimiter(settings.rate_per_address_minute, settings.rate_address_burst)))
    if "wecom_kf" in app:       # KEFU_WECOM_KF_HANDOFF=wecom: a new handoff goes to WeCom's staff
        bus.subscribe(events.HANDOFF_NEW, app["wecom_kf"].handoff.on_handoff_new)

    # the service team's side: consoles (live updates), WeCom alerts, the agents' group
    web_static.setup(app)                # /static/kefu.js: the helpers both consoles load
    console.setup(app)
    admin_api.setup(app)
    # the workspace (issue 15): tickets, 回访 and the bot's satisfaction question, SLA clocks
    clocks = SlaClocks(bus, engine=handoffs.store.engine)
    aftercare = AfterCare(bus, tickets=handoffs.tickets, outbox=handoffs.outbox,
                          senders=router.senders)
    app.update(ticket_desk=TicketDesk(bus, handoffs.tickets, handoffs.agents),
               aftercare=aftercare, sla_clocks=clocks)
    clocks.attach(bus)
    aftercare.attach(bus)
    tickets_api.setup(app)
    return_calls_api.setup(app)
    reports_api.setup(app)
    erasure_api.setup(app)               # admins: the right to deletion, audited
    bus.subscribe_many(events.HANDOFF_EVENTS + (events.DELIVERY_FAILED,), live.on_event)
    bus.subscribe_many(events.WORKSPACE_EVENTS, live.on_event)
    alerts = WeComAlerts(handoffs, settings.wecom_webhook) if settings.wecom_webhook else None
    if alerts:
        alerts.attach(bus)
    group = agents_group.from_settings(handoffs)
    if group:
        group.attach(bus)
        app["telegram_agents"] = group
    scaleout.setup(app, bus=bus, live=live, handoffs=handoffs, supervisor=supervisor)

    ledger, replayer = DeliveryLedger(), Replayer(router, stale_after=settings.requeue_after)
    throttle = SignInThrottleStore(handoffs.store.engine)

    async def start_background(_app: web.Application) -> None:
        supervisor.every("replayer", replayer.interval, replayer.run_once)
        # the dedup ledger of WeChat/Telegram deliveries keeps only what a retry may need
        supervisor.every("delivery-pruner", PRUNE_EVERY, ledger.prune_old)
        # sign-in back-off counters past their window (bot/store/throttle.py)
        supervisor.every("sign-in-pruner", 3600, lambda: asyncio.to_thread(throttle.prune))
        supervisor.start("outbox", handoffs.outbox_loop)
        # the one SLA loop: clocks past due breach once, alert once, escalate once
        supervisor.every("sla-clocks", settings.sla_interval, clocks.check_once)
        supervisor.every("queue-watcher", ROUND_EVERY, waiting.run_once)
        # the dashboard's change marks into stale days, whether or not anyone reads 报表
        supervisor.every("report-marks", metrics.SETTLE_EVERY,
                         lambda: asyncio.to_thread(metrics.settle_marks))
        if group:
            supervisor.start("telegram-agents-poll", group.poll_loop)

    async def stop_background(_app: web.Application) -> None:
        live.notify(None)              # end SSE streams so shutdown is prompt
        await supervisor.stop()        # before the clients the loops use are closed

    async def close_clients(_app: web.Application) -> None:
        if group:
            await group.shutdown()
        if alerts:
            await alerts.close()
        await rasa.close()

    app.on_startup.append(start_background)
    app.on_shutdown.append(stop_background)
    app.on_cleanup.append(close_clients)
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_redaction()
    settings = Settings.from_env()
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                access_log=None, print=lambda *_: logger.info(
                    "gateway on http://%s:%d", settings.host, settings.port))


if __name__ == "__main__":
    main()
