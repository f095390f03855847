"""The admins' 训练 page: inbox → annotate → train → compare → activate / roll back (issue 6).

Every route under ``/api/admin`` needs a signed-in **admin** (the console's session
cookie): anonymous requests get 401, agents 403. The page ``/console/admin`` and its
script carry no data and are public. The work itself is in bot/training/ (inbox, annotations,
trainer, compare, activation: the same functions as the CLI, ``python -m bot.training``).
Runs in the gateway process (mounted by its composition root); Rasa is reached through the
gateway's RasaClient. It lives beside the loop it drives, not in bot/workspace/: the
workspace and the training loop do not import each other.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Dict

from aiohttp import web

from bot.brain.rasa_client import RasaUnavailable
from bot.training.activation import (activations, check_activation, keep_models,
                                     record_activation, resolve_model, rollback_target)
from bot.training.annotations import annotate as annotate_message, known_intents
from bot.training.compare import compare, comparison_for
from bot.training.inbox import FILTERS, LOW_CONFIDENCE, annotated_ids, build_inbox, customer_lines
from bot.training.project import AdminError
from bot.training.trainer import Trainer, mark_interrupted, recent_runs
from bot.web import COOKIE, SECURITY_HEADERS, is_id, json_body, refuse_unsafe_post

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent / "static"
PAGE = HERE / "admin.html"
SCRIPT = HERE / "admin.js"
PREFIX = "/api/admin"


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


@web.middleware
async def admin_middleware(request: web.Request, handler):
    path = request.path
    if path == PREFIX or path.startswith(PREFIX + "/"):
        refused = refuse_unsafe_post(request)
        if refused is not None:
            return refused
        agents = request.app["agents"]
        agent = await asyncio.to_thread(agents.session_agent, request.cookies.get(COOKIE))
        if agent is None:
            return _error(401, "sign in first")
        if not agent.is_admin:
            return _error(403, "admins only")
        request["agent"] = agent
        response = await handler(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response
    return await handler(request)


async def page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE.read_bytes(), content_type="text/html", charset="utf-8")


async def script(request: web.Request) -> web.Response:
    return web.Response(body=SCRIPT.read_bytes(), content_type="application/javascript",
                        charset="utf-8")


# --- inbox and annotation ------------------------------------------------------------------


async def _trackers(request: web.Request, conversations) -> Dict[str, list]:
    rasa = request.app["rasa"]
    found: Dict[str, list] = {}

    async def one(conversation: str) -> None:
        try:
            found[conversation] = await rasa.tracker_events(conversation, timeout=10)
        except RasaUnavailable:
            found[conversation] = []
    await asyncio.gather(*(one(c) for c in conversations))
    return found


async def inbox(request: web.Request) -> web.Response:
    wanted = request.query.get("filter") or None
    if wanted is not None and wanted not in FILTERS:
        return _error(400, f"filter: one of {', '.join(FILTERS)}")
    lines = await asyncio.to_thread(customer_lines, 60)
    trackers = await _trackers(request, list(lines))
    done = await asyncio.to_thread(annotated_ids)
    items = build_inbox(lines, trackers, done, wanted)
    return web.json_response({"items": items[:200], "low_confidence": LOW_CONFIDENCE})


async def intents(request: web.Request) -> web.Response:
    return web.json_response({"intents": await asyncio.to_thread(known_intents)})


async def annotate(request: web.Request) -> web.Response:
    body = await json_body(request)
    message_id, intent = body.get("message_id"), body.get("intent")
    text, entities, answer = body.get("text"), body.get("entities") or [], body.get("answer")
    if not is_id(message_id) or not isinstance(intent, str):
        return _error(400, "message_id (integer) and intent are required")
    if (text is not None and not isinstance(text, str)) or not isinstance(entities, list) \
            or not all(isinstance(e, dict) for e in entities) \
            or (answer is not None and not isinstance(answer, str)):
        return _error(400, "text, answer: strings; entities: a list of {value, entity}")
    try:
        result = await asyncio.to_thread(annotate_message, message_id, intent,
                                         actor=request["agent"].name, text=text,
                                         entities=entities, answer=answer)
    except AdminError as exc:
        return _error(409 if "already" in str(exc) or "exists" in str(exc) else 400, str(exc))
    return web.json_response(result)


# --- training --------------------------------------------------------------------------------


async def _live(request: web.Request) -> str | None:
    try:
        name = await request.app["rasa"].live_model(timeout=10)
    except RasaUnavailable:
        return None
    return await asyncio.to_thread(resolve_model, name)


async def train(request: web.Request) -> web.Response:
    body = await json_body(request)
    mode = body.get("mode", "full")
    if mode not in ("full", "finetune"):
        return _error(400, "mode: full or finetune")
    base = await _live(request) if mode == "finetune" else None
    try:
        result = await asyncio.to_thread(request.app["admin_trainer"].request,
                                         request["agent"].name, mode, base)
    except AdminError as exc:
        return _error(400, str(exc))
    return web.json_response(result, status=202)


async def train_status(request: web.Request) -> web.Response:
    status = await asyncio.to_thread(request.app["admin_trainer"].status)
    return web.json_response(status)


# --- compare, activate, roll back ------------------------------------------------------------


def _latest_candidate() -> str | None:
    for run in recent_runs(20):
        if run["status"] == "succeeded" and run["model"] and Path(run["model"]).exists():
            return run["model"]
    return None


async def compare_start(request: web.Request) -> web.Response:
    body = await json_body(request)
    candidate = body.get("candidate") or await asyncio.to_thread(_latest_candidate)
    if not isinstance(candidate, str) or not candidate:
        return _error(409, "no trained candidate yet")
    known = {r["model"] for r in await asyncio.to_thread(recent_runs, 50)}
    if candidate not in known or not Path(candidate).exists():
        return _error(404, "no such candidate")
    live = await _live(request)
    if not live:
        return _error(503, "Rasa reports no live model")
    state = request.app["admin_compare"]
    if state.get("running"):
        return _error(409, "a comparison is running already")
    state.update(running=True, candidate=candidate, live=live, error=None, result=None)

    async def work() -> None:
        try:
            state["result"] = await asyncio.to_thread(compare, Path(candidate), Path(live))
        except Exception as exc:                           # shown on the page
            logger.exception("comparison failed")
            state["error"] = str(exc)[-2000:]
        finally:
            state["running"] = False
    request.app["admin_tasks"].add(asyncio.ensure_future(work()))
    return web.json_response({"running": True, "candidate": candidate, "live": live}, status=202)


async def compare_status(request: web.Request) -> web.Response:
    state = dict(request.app["admin_compare"])
    if not state.get("result") and not state.get("running"):
        candidate = await asyncio.to_thread(_latest_candidate)
        state["result"] = candidate and await asyncio.to_thread(comparison_for, candidate)
    return web.json_response({k: v for k, v in state.items() if k in
                              ("running", "candidate", "live", "error", "result")})


async def confusion(request: web.Request) -> web.Response:
    candidate = request.query.get("candidate") or await asyncio.to_thread(_latest_candidate)
    result = candidate and await asyncio.to_thread(comparison_for, candidate)
    if not result or not Path(result["confusion_png"]).exists():
        return _error(404, "no comparison yet")
    return web.Response(body=Path(result["confusion_png"]).read_bytes(), content_type="image/png")


async def _swap(request: web.Request, model: str) -> None:
    await request.app["rasa"].load_model(model)


async def activate(request: web.Request) -> web.Response:
    body = await json_body(request)
    model, reason = body.get("model"), body.get("reason")
    if not isinstance(model, str) or (reason is not None and not isinstance(reason, str)):
        return _error(400, "model (string) is required; reason: a string")
    known = {r["model"] for r in await asyncio.to_thread(recent_runs, 200)}
    if model not in known:
        return _error(404, "no such trained model")

    def decide(live):
        check = check_activation(model, live, reason)
        return model, check["scores"], check["reason"]
    return await _switch(request, "activate", decide)


async def rollback(request: web.Request) -> web.Response:
    body = await json_body(request)
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        return _error(400, "reason: a string")

    def decide(live):
        target = rollback_target(live)
        return target, (comparison_for(target) or {}).get("scores"), reason
    return await _switch(request, "rollback", decide)


async def _switch(request: web.Request, action: str, decide) -> web.Response:
    """One model switch: under the swap lock, ``decide(live)`` picks the model (or refuses
    with AdminError → 409), Rasa loads it (turns held meanwhile), the audit log records it."""
    async with request.app["admin_swap_lock"]:
        live = await _live(request)
        try:
            target, scores, reason = await asyncio.to_thread(decide, live)
        except AdminError as exc:
            return _error(409, str(exc))
        try:
            await _swap(request, target)
        except Exception as exc:
            return _error(502, f"Rasa did not load the model: {exc}")
        row = await asyncio.to_thread(record_activation, target, live, request["agent"].name,
                                      action, scores, reason)
    return web.json_response({"activation": row})


async def models(request: web.Request) -> web.Response:
    live = await _live(request)
    log = await asyncio.to_thread(activations, 50)
    runs = await asyncio.to_thread(recent_runs, 20)
    candidates = [r["model"] for r in runs if r["status"] == "succeeded" and r["model"]
                  and Path(r["model"]).exists()]
    return web.json_response({"live": live, "candidates": list(dict.fromkeys(candidates)),
                              "activations": log, "keep": keep_models()})


def setup(app: web.Application) -> None:
    app.middlewares.append(admin_middleware)
    app["admin_trainer"] = Trainer()
    app["admin_compare"] = {"running": False}
    app["admin_tasks"] = set()
    app["admin_swap_lock"] = asyncio.Lock()
    r = app.router
    r.add_get("/console/admin", page)
    r.add_get("/console/admin.js", script)
    r.add_get(f"{PREFIX}/inbox", inbox)
    r.add_get(f"{PREFIX}/intents", intents)
    r.add_post(f"{PREFIX}/annotate", annotate)
    r.add_post(f"{PREFIX}/train", train)
    r.add_get(f"{PREFIX}/train", train_status)
    r.add_post(f"{PREFIX}/compare", compare_start)
    r.add_get(f"{PREFIX}/compare", compare_status)
    r.add_get(f"{PREFIX}/compare/confusion.png", confusion)
    r.add_post(f"{PREFIX}/activate", activate)
    r.add_post(f"{PREFIX}/rollback", rollback)
    r.add_get(f"{PREFIX}/models", models)

    async def startup(_app: web.Application) -> None:
        await asyncio.to_thread(mark_interrupted)

    async def cleanup(_app: web.Application) -> None:
        for task in _app["admin_tasks"]:
            task.cancel()
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
