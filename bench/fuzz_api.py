"""``make fuzz-api``: schemathesis against a running gateway's ``/openapi.json``, every operation,
as an anonymous client, a signed-in agent and a signed-in admin.

Schemathesis cannot install beside Rasa 3.6's pins (werkzeug, jsonschema, hypothesis), so it
lives in a virtualenv of its own, ``.venv-fuzz`` (``make fuzz-tools``, pinned in
bench/requirements-fuzz.txt); this driver runs in the project's virtualenv. It starts a stack
with the trained model (action server, Rasa, gateway; SQLite in a temporary folder, the
retraining loop in a temporary copy of the project), creates the accounts, and runs
``schemathesis run`` once per role with the checks ``not_a_server_error`` and
``response_schema_conformance`` (bench/fuzz_api_hooks.py signs in and sends the session
cookie). It prints one summary row per role and the failures, and exits 1 on any.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from cryptography.fernet import Fernet

from bot.gateway.launch import Stack
from bot.gateway.ports import free_port
from bot.profile.business import PROJECT_ROOT

FUZZ_VENV = PROJECT_ROOT / ".venv-fuzz"
CHECKS = "not_a_server_error,response_schema_conformance"
ROLES = ("agent", "admin", "anonymous")        # anonymous last: it fuzzes sign-in itself
DECOYS = 20     # accounts created first, so a fuzzed /agents/{id} rarely hits the fuzzer's own


def stack_env(work: Path, project: Path) -> Dict[str, str]:
    return {"KEFU_DATABASE_URL": f"sqlite:///{work}/kefu.db",
            "KEFU_DATA_KEY": Fernet.generate_key().decode(),
            "KEFU_FAKE_NOW": "2026-11-27T10:00:00", "KEFU_ADMIN_PROJECT": str(project),
            # one client address sends everything; the hooks sign in as another client
            # (X-Forwarded-For from the trusted loopback proxy), so the fuzzer's own failed
            # sign-ins never make the real ones wait
            "KEFU_RATE_PER_ADDRESS_MINUTE": "0", "KEFU_TRUSTED_PROXIES": "127.0.0.1"}


def accounts(env: Dict[str, str]) -> Dict[str, tuple]:
    os.environ.update({k: env[k] for k in ("KEFU_DATABASE_URL", "KEFU_DATA_KEY")})
    from bot.store.agents import AgentStore

    store = AgentStore()
    for i in range(DECOYS):
        store.create(f"decoy-{i}-{secrets.token_hex(2)}", secrets.token_urlsafe(16),
                     role="agent", display_name=f"decoy {i}")
    found = {}
    for role in ("agent", "admin"):
        name, password = f"fuzz-{role}-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
        store.create(name, password, role=role, display_name=name)
        found[role] = (name, password)
    return found


def schemathesis(base: str, role: str, creds: tuple | None, report: Path, args) -> dict:
    env = dict(os.environ, SCHEMATHESIS_HOOKS="bench.fuzz_api_hooks", FUZZ_ROLE=role,
               FUZZ_BASE=base, PYTHONPATH=str(PROJECT_ROOT))
    if creds:
        env.update(FUZZ_NAME=creds[0], FUZZ_PASSWORD=creds[1])
    cmd = [str(FUZZ_VENV / "bin" / "schemathesis"), "run", f"{base}/openapi.json",
           "--checks", CHECKS, "--max-examples", str(args.max_examples), "--workers", "1",
           "--phases", args.phases, "--seed", str(args.seed), "--request-timeout", "60",
           "--no-color", "--suppress-health-check", "all", "--generation-database", "none",
           "--report", "ndjson", "--report-ndjson-path", str(report)]
    started = time.monotonic()
    log = report.with_suffix(".log")
    with open(log, "w") as out:
        code = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              cwd=report.parent).returncode   # its .schemathesis/ there
    return {"role": role, "exit": code, "seconds": round(time.monotonic() - started),
            **summarise(report), "log": str(log)}


def summarise(report: Path) -> dict:
    """Operations, test cases and failures (check, operation, request, status) from the NDJSON
    events schemathesis writes (``ScenarioFinished.recorder``: cases, checks, interactions)."""
    operations, cases, failures, errors = set(), 0, [], []
    if not report.exists():
        return {"operations": 0, "cases": 0, "failures": [], "errors": ["no report"]}
    for line in report.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind, body = next(iter(event.items())) if isinstance(event, dict) and event else (None, None)
        if kind == "ScenarioFinished" and body.get("status") != "skip":
            recorder = body.get("recorder") or {}
            label = recorder.get("label")
            operations.add(label)
            cases += len(recorder.get("cases") or {})
            for case_id, checks in (recorder.get("checks") or {}).items():
                for check in checks:
                    if check.get("status") != "failure":
                        continue
                    interaction = (recorder.get("interactions") or {}).get(case_id) or {}
                    request = interaction.get("request") or {}
                    response = interaction.get("response") or {}
                    content = response.get("content") or {}
                    if isinstance(content, dict) and "$base64" in content:
                        content = base64.b64decode(content["$base64"]).decode("utf-8", "replace")
                    failures.append({"operation": label, "check": check.get("name"),
                                     "request": f"{request.get('method')} {request.get('uri')}"[:300],
                                     "status": response.get("status_code"),
                                     "body": str(content)[:200]})
        elif kind == "NonFatalError":
            errors.append(f"{body.get('label')}: {str(body.get('info') or body)[:200]}")
    unique = {(f["operation"], f["check"], f["status"]): f for f in failures}
    return {"operations": len(operations - {None}), "cases": cases,
            "failures": list(unique.values()), "errors": errors}


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_API_EXAMPLES", 25)),
                        help="test cases per operation and phase (default 25)")
    parser.add_argument("--phases", default="examples,coverage,fuzzing")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED") or secrets.randbelow(2**31)))
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--model", help="a trained model archive (default: the current data's)")
    args = parser.parse_args(argv)
    if not (FUZZ_VENV / "bin" / "schemathesis").exists():
        print("schemathesis missing: run `make fuzz-tools`", file=sys.stderr)
        return 2
    from bot.training.model_cache import ensure_model
    from bot.training.project import copy_project

    model = Path(args.model) if args.model else ensure_model()
    work = Path(tempfile.mkdtemp(prefix="kefu-fuzz-api-"))
    env = stack_env(work, copy_project(work / "project"))
    stack = Stack(model=model, gateway_port=free_port(), rasa_port=free_port(),
                  action_port=free_port(), log_dir=work / "logs", env=env,
                  tracker_db=str(work / "trackers.db"))
    print(f"fuzz-api: seed {args.seed} (SEED={args.seed} make fuzz-api replays it), "
          f"{args.max_examples} examples per operation and phase, work dir {work}", flush=True)
    stack.start(timeout=300)
    try:
        creds = accounts(env)
        results = []
        for role in args.roles.split(","):
            result = schemathesis(stack.url, role, creds.get(role), work / f"{role}.ndjson", args)
            results.append(result)
            print(f"  {role:9s} {result['operations']} operations, {result['cases']} cases, "
                  f"{len(result['failures'])} failures, {result['seconds']} s (log {result['log']})",
                  flush=True)
    finally:
        stack.stop()
    print("\n| role | operations | test cases | failures | exit |\n|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['role']} | {r['operations']} | {r['cases']} | {len(r['failures'])} | {r['exit']} |")
    for r in results:
        for f in r["failures"]:
            print(f"FAIL {r['role']}: {f['check']} {f['operation']} -> {f['status']}: {f['request']} "
                  f"{f['body']}")
        for e in r["errors"][:10]:
            print(f"ERROR {r['role']}: {e}")
    print(json.dumps({"seed": args.seed, "checks": CHECKS.split(","), "results": [
        {k: v for k, v in r.items() if k != "log"} for r in results]}, ensure_ascii=False))
    return 0 if all(r["exit"] == 0 and not r["failures"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
