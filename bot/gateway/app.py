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

from bot.profile.privacy import install_log_redaction
from bot.brain.rasa_client import RasaClient
from bot.gateway.router import RateLimiter, Replayer, Router
from bot.settings import Settings
from bot.store.transcripts import TranscriptStore
from bot.store.deliveries import DeliveryLedger

logger = logging.getLogger(__name__)

# Each plugin module exposes ``setup(app)``: it adds its routes, registers a sender for its
# channel in ``app["senders"]`` and may hook the router. Order matters only for logging.
PLUGINS = (
    "connectors.web",
    "bot.workspace.console",          # handoff gate, agents' console, SLA watcher, WeCom alerts
    "bot.workspace.admin_api",    # admins: inbox, annotate, train, compare, activate (issue 6)
    "bot.workspace.agents_group",  # the agents' Telegram group (needs bot.workspace.console)
    "connectors.wechat.official_account",           # customers on a WeChat official account (issue 4)
    "connectors.telegram",         # customers on Telegram (issue 4)
    "bot.gateway.scaleout",                # KEFU_REDIS_URL: turn order + live events across replicas
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
    settings = settings or Settings.from_env()
    app = web.Application(client_max_size=64 * 1024)
    rasa = RasaClient(settings.rasa_url, token=settings.rasa_token,
                      timeout=settings.rasa_timeout, action_url=settings.action_url)
    app["settings"] = settings
    app["rasa"] = rasa
    router = Router(rasa, TranscriptStore(), max_chars=settings.max_message_chars,
                    reply_timeout=settings.reply_timeout,
                    limiter=RateLimiter(settings.rate_per_minute, settings.rate_burst))
    app["router"] = router
    # channel -> async push(user_id, [OutboundMessage]): delivery outside a turn
    app["senders"] = router.senders
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi_json)
    for name in PLUGINS:
        importlib.import_module(name).setup(app)

    async def start_replayer(_app: web.Application) -> None:
        replayer = Replayer(router, stale_after=settings.requeue_after)
        _app["replayer"] = asyncio.ensure_future(replayer.run())
        # the dedup ledger of WeChat/Telegram deliveries keeps only what a retry may need
        _app["delivery_pruner"] = asyncio.ensure_future(DeliveryLedger().prune_forever())

    async def stop_background(_app: web.Application) -> None:
        _app["replayer"].cancel()
        _app["delivery_pruner"].cancel()
        await rasa.close()

    app.on_startup.append(start_replayer)
    app.on_cleanup.append(stop_background)
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
