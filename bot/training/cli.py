"""Retrain the assistant from real conversations (issue 6): the admin's loop, headless,
in a process of its own (the same functions as the console's 训练 page).

    .venv/bin/python -m bot.training inbox [--filter low|fallback|handoff|rephrased]
    .venv/bin/python -m bot.training annotate <message id> <intent|faq/topic> [--text ...]
                                  [--entity value=type ...] [--answer "new FAQ answer"]
    .venv/bin/python -m bot.training train [--finetune <live model.tar.gz>]
    .venv/bin/python -m bot.training compare <candidate.tar.gz> [--live <model>]
    .venv/bin/python -m bot.training --user <admin> activate <model> [--reason "override reason"]
    .venv/bin/python -m bot.training --user <admin> rollback
    .venv/bin/python -m bot.training log

activate/rollback with ``--user`` go through the running gateway (``--gateway``, default
http://127.0.0.1:8000; password from ``KEFU_ADMIN_PASSWORD`` or prompted), so the swap is
held and audited exactly as from the page; without ``--user`` they call Rasa's HTTP API
directly (``--rasa-url``, token from ``KEFU_RASA_TOKEN``).

The console's 训练 page (``/console/admin``, bot/training/admin_api.py) calls the same
functions. The inbox (bot/training/inbox.py) joins the gateway's transcripts (what customers
wrote) with Rasa's trackers (what Rasa understood: intent, confidence, the actions that
followed). Annotations (bot/training/annotations.py) go to ``data/nlu/annotated.yml``
(sorted, deduplicated, stable, so a git diff shows exactly what an admin taught the bot);
new FAQ answers to the business pack's FAQ answers (``businesses/<name>/faq_answers.yml``). Training (bot/training/trainer.py) runs
``rasa data validate`` and then ``rasa train``, one at a time (``var/admin-train.lock``
across processes). A comparison (bot/training/compare.py) evaluates candidate and live
model on the same test split plus the annotated items. Activation
(bot/training/activation.py) loads a model into the running Rasa (``PUT /model``) and is
recorded in ``model_activations`` (who, when, which model, scores, override reason);
``rollback`` re-activates the previous model.

``KEFU_ADMIN_PROJECT`` points all of this at another copy of the project's data (the tests
train in a temporary copy); ``KEFU_KEEP_MODELS`` (5) is how many activated models are kept.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List

from bot.brain.rasa_client import RasaUnavailable
from bot.profile.business import PROJECT_ROOT
from bot.training.activation import (activations, check_activation, live_model_from, put_model,
                                     record_activation, rollback_target)
from bot.training.annotations import annotate
from bot.training.compare import compare, comparison_for
from bot.training.inbox import FILTERS, inbox, sql_tracker_events
from bot.training.project import AdminError
from bot.training.trainer import create_run, expected_seconds, run_training
from bot.settings import setting


def _print(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=1, default=str))


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who (audit log)")
    parser.add_argument("--trackers", default=str(PROJECT_ROOT / "var" / "trackers.db"),
                        help="Rasa's SQLite tracker store")
    parser.add_argument("--rasa-url", default=setting("KEFU_RASA_URL"))
    parser.add_argument("--gateway", default=f"http://127.0.0.1:{setting('KEFU_PORT')}")
    parser.add_argument("--user", help="admin account: activate/rollback through the gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inbox")
    p.add_argument("--filter", choices=FILTERS)
    p = sub.add_parser("annotate")
    p.add_argument("message_id", type=int)
    p.add_argument("intent")
    p.add_argument("--text")
    p.add_argument("--entity", action="append", default=[], help="value=type")
    p.add_argument("--answer", help="answer of a new FAQ topic (intent faq/<new topic>)")
    p = sub.add_parser("train")
    p.add_argument("--finetune", metavar="BASE_MODEL")
    p = sub.add_parser("compare")
    p.add_argument("candidate")
    p.add_argument("--live")
    for name in ("activate", "rollback"):
        p = sub.add_parser(name)
        if name == "activate":
            p.add_argument("model")
        p.add_argument("--reason", default=None)
    sub.add_parser("log")
    args = parser.parse_args(argv)
    token = setting("KEFU_RASA_TOKEN")
    try:
        if args.command == "inbox":
            items = inbox(sql_tracker_events(args.trackers), args.filter)
            for item in items:
                flags = ",".join(k for k in ("low_confidence", "fallback", "handoff", "rephrased") if item[k])
                print(f"{item['id']}\t{item['intent']}\t{item['confidence']}\t{flags}\t{item['text']}")
            return 0
        if args.command == "annotate":
            entities = [dict(zip(("value", "entity"), e.rsplit("=", 1))) for e in args.entity]
            _print(annotate(args.message_id, args.intent, actor=args.actor, text=args.text,
                            entities=entities, answer=args.answer))
            return 0
        if args.command == "train":
            mode = "finetune" if args.finetune else "full"
            run_id = create_run(args.actor, mode, args.finetune)
            print(f"training run {run_id} ({mode}); expected ~{expected_seconds(mode):.0f} s", flush=True)
            result = run_training(run_id)
            _print(result)
            return 0 if result["status"] == "succeeded" else 1
        if args.command == "compare":
            live = args.live or live_model_from(args.rasa_url, token)
            result = compare(Path(args.candidate), Path(live))
            _print({k: v for k, v in result.items() if k != "per_intent"})
            return 0
        if args.command == "log":
            _print(activations())
            return 0
        if args.user:
            return _via_gateway(args)
        live = live_model_from(args.rasa_url, token)
        if args.command == "activate":
            check = check_activation(args.model, live, args.reason)
            model, kind = str(Path(args.model).resolve()), "activate"
        else:
            model, kind = rollback_target(live), "rollback"
            check = {"scores": (comparison_for(model) or {}).get("scores"), "reason": args.reason}
        put_model(args.rasa_url, token, model)
        _print(record_activation(model, live, args.actor, kind, check["scores"], check["reason"]))
        return 0
    except AdminError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except (OSError, RasaUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _via_gateway(args) -> int:
    """activate / rollback through the running gateway's admin API (held, checked, audited)."""
    import getpass
    import http.cookiejar
    import urllib.error
    import urllib.request

    password = setting("KEFU_ADMIN_PASSWORD") or getpass.getpass(f"password for {args.user}: ")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def post(path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        request = urllib.request.Request(args.gateway.rstrip("/") + path, method="POST",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with opener.open(request, timeout=900) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise AdminError(json.loads(err.read() or b"{}").get("error", str(err.code)))
    try:
        post("/api/agent/login", {"name": args.user, "password": password})
        body: Dict[str, Any] = {"reason": args.reason} if args.reason else {}
        if args.command == "activate":
            body["model"] = str(Path(args.model).resolve())
        _print(post(f"/api/admin/{args.command}", body))
        return 0
    except AdminError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
