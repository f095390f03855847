"""``make bench BENCH_ARGS=--retrain-mid-run``: live latency while the bot retrains itself.

One project stack (gateway, Rasa, action server on SQLite) whose retraining loop works in a
temporary copy of the project (``KEFU_ADMIN_PROJECT``). Simulated customers talk to it in a
closed loop (bench/loadgen.py, the same conversations as ``make bench``): first idle, then an
admin starts a **full** retrain through the admin API (``POST /api/admin/train``, the path
the 训练 page takes: bot/training/trainer.py runs ``rasa data validate`` and ``rasa train`` as
children of the gateway, at ``KEFU_TRAIN_NICE``) and the customers go on until it finished.
Prints idle vs during-retrain latency per concurrency and, last, one JSON line with
``retrain_p95_ratio`` (during ÷ idle at the first level; target ≤ 2).
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from pathlib import Path
from typing import Dict, List

import aiohttp

from bench.loadgen import Result, Target, run_load, summary
from bot.gateway.launch import Stack
from bot.gateway.ports import free_port

POLL = 2.0


def _merge(results: List[Result]) -> Result:
    merged = Result()
    for r in results:
        merged.latencies_ms += r.latencies_ms
        merged.errors += r.errors
        merged.error_samples += r.error_samples[: max(0, 5 - len(merged.error_samples))]
        merged.elapsed_s += r.elapsed_s
    return merged


class AdminSession:
    """An admin signed in to the stack's console (cookie), to start and follow a training."""

    def __init__(self, base: str, name: str, password: str) -> None:
        self.base, self.name, self.password = base, name, password

    async def __aenter__(self) -> "AdminSession":
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                          cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1
        async with self.http.post(f"{self.base}/api/agent/login",
                                  json={"name": self.name, "password": self.password}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"admin sign-in failed: HTTP {resp.status}")
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.close()

    async def start_training(self) -> int:
        async with self.http.post(f"{self.base}/api/admin/train", json={"mode": "full"}) as resp:
            body = await resp.json()
            if resp.status != 202:
                raise RuntimeError(f"training refused: HTTP {resp.status} {body}")
            return body["run"]

    async def run(self, run_id: int) -> dict:
        async with self.http.get(f"{self.base}/api/admin/train") as resp:
            runs = (await resp.json())["runs"]
        return next((r for r in runs if r["id"] == run_id), {})


def _admin_account(env: Dict[str, str]) -> tuple[str, str]:
    """An admin in the stack's database (this process points at the same file)."""
    os.environ.update({k: env[k] for k in ("KEFU_DATABASE_URL", "KEFU_DATA_KEY")})
    from bot.store.agents import AgentStore

    name, password = f"bench-admin-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    AgentStore().create(name, password, role="admin", display_name=name)
    return name, password


async def _measure_during(target: Target, levels: List[int], window: float, session: AdminSession,
                          run_id: int, limit: float) -> tuple[Dict[int, List[Result]], dict, float]:
    """Windows of load, level after level, until the run has finished (or ``limit`` s)."""
    during: Dict[int, List[Result]] = {c: [] for c in levels}
    started = time.monotonic()
    run: dict = {}
    while time.monotonic() - started < limit:
        for conc in levels:
            during[conc].append(await run_load(target, conc, window, f"retrain-c{conc}-{len(during[conc])}"))
            run = await session.run(run_id)
            print(f"  during   c={conc:<3d} {summary(during[conc][-1])}  run {run.get('status')}",
                  flush=True)
            if run.get("status") in ("succeeded", "failed"):
                return during, run, time.monotonic() - started
    return during, run, time.monotonic() - started


def run_retrain(model: Path, args, work: Path, stack_env: Dict[str, str], measure) -> dict:
    from bot.training.project import copy_project

    project = copy_project(work / "project")
    env = {**stack_env(work), "KEFU_ADMIN_PROJECT": str(project)}
    if args.train_nice is not None:
        env["KEFU_TRAIN_NICE"] = str(args.train_nice)
    stack = Stack(model=model, gateway_port=free_port(), rasa_port=free_port(),
                  action_port=free_port(), log_dir=work / "logs-retrain", env=env,
                  tracker_db=str(work / "trackers.db"))
    stack.start(timeout=300)
    try:
        name, password = _admin_account(env)
        target = Target([stack.url], "gateway")
        idle = measure(target, args.levels, args.duration, args.warmup, "idle")

        async def retrain():
            async with AdminSession(stack.url, name, password) as admin:
                run_id = await admin.start_training()
                print(f"full retrain started (run {run_id}); customers go on", flush=True)
                return await _measure_during(target, args.levels, args.duration, admin, run_id,
                                             args.retrain_limit)
        during, run, seconds = asyncio.run(retrain())
    finally:
        stack.stop()
    rows = {"idle": idle, "during retrain": {c: summary(_merge(rs)) for c, rs in during.items() if rs}}
    first = min(args.levels)
    ratio = rows["during retrain"][first]["p95_ms"] / idle[first]["p95_ms"]
    return {"rows": rows, "run": run, "seconds": seconds, "first": first, "ratio": ratio,
            "nice": "19 (default)" if args.train_nice is None else str(args.train_nice)}


def report(result: dict, load_average) -> dict:
    rows, first = result["rows"], result["first"]
    print()
    print("| phase | conc | p50 ms | p95 ms | p99 ms | msg/s | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for phase, levels in rows.items():
        for conc, r in levels.items():
            print(f"| {phase} | {conc} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} "
                  f"| {r['throughput_rps']:.1f} | {r['errors']} |")
    print()
    out = {"mode": "retrain_mid_run", "train_nice": result["nice"],
           "train_status": result["run"].get("status"), "train_seconds": result["run"].get("seconds"),
           "load_window_s": round(result["seconds"]),
           "idle_p95_ms": rows["idle"][first]["p95_ms"],
           "retrain_p95_ms": rows["during retrain"][first]["p95_ms"],
           "retrain_p95_ratio": round(result["ratio"], 2),
           **{f"retrain_p95_ratio_c{c}": round(rows["during retrain"][c]["p95_ms"] / rows["idle"][c]["p95_ms"], 2)
              for c in rows["during retrain"] if c != first},
           "errors": sum(r["errors"] for levels in rows.values() for r in levels.values()),
           "load_after": load_average()}
    print(json.dumps(out, ensure_ascii=False))
    return out
