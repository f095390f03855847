"""``make bench``: the project against plain Rasa, on the same conversations, in one run.

Measured, each at concurrency 1, 10 and 50 for a fixed duration (closed loop: every
simulated customer sends its next message when the previous one is answered):

  project  customers → gateway (/api/chat) → Rasa → action server → database
  direct   the same Rasa's REST channel, no gateway (the gateway's overhead)
  stock    Rasa's default `rasa init` pipeline and policies trained on the project's
           data (bench/stock_config.yml), REST channel, Rasa's default in-memory trackers

Prints a table and, as the last line, one JSON object. ``--scale 2`` runs the scaled-out
topology (deploy/scaled.py: two gateways, two Rasa replicas, PostgreSQL, Redis) for the
project and direct rows. ``--retrain-mid-run`` measures live latency idle and during a full
retrain instead (bench/retrain_load.py).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from cryptography.fernet import Fernet

from bench.loadgen import Target, proc_tree_peak_rss_mb, run_load, summary
from bot.gateway.launch import Stack
from bot.gateway.ports import free_port

FAKE_NOW = "2026-11-27T10:00:00"   # inside service hours, as the e2e tests


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(target: Target, levels: List[int], duration: float, warmup: float, tag: str,
            spread: int = 0) -> Dict[int, dict]:
    rows = {}
    for conc in levels:
        res = asyncio.run(run_load(target, conc, duration, f"{tag}c{conc}", warmup_s=warmup,
                                   spread=spread))
        rows[conc] = summary(res)
        rows[conc]["error_samples"] = res.error_samples
        print(f"  {tag:8s} c={conc:<3d} {rows[conc]}  load {load_average()}", flush=True)
    return rows


# the load comes from one address (127.0.0.1): the per-address limit would measure itself
NO_ADDRESS_LIMIT = {"KEFU_RATE_PER_ADDRESS_MINUTE": "0"}


def stack_env(work: Path) -> Dict[str, str]:
    return {"KEFU_DATABASE_URL": f"sqlite:///{work}/kefu.db",
            "KEFU_DATA_KEY": Fernet.generate_key().decode(), "KEFU_FAKE_NOW": FAKE_NOW,
            **NO_ADDRESS_LIMIT}


def rss(pids: Dict[str, int]) -> Dict[str, float]:
    return {name: round(proc_tree_peak_rss_mb(pid), 0) for name, pid in pids.items()}


def run_project(model: Path, args, work: Path) -> tuple[dict, dict, dict]:
    tracker = None if args.tracker == "memory" else str(work / "trackers.db")
    stack = Stack(model=model, gateway_port=free_port(), rasa_port=free_port(),
                  action_port=free_port(), log_dir=work / "logs-project", env=stack_env(work),
                  tracker_db=tracker)
    stack.start(timeout=300)
    try:
        names = ["actions", "rasa", "gateway"]
        pids = dict(zip(names, (p.pid for p in stack.processes)))
        rasa_url = f"http://127.0.0.1:{stack.rasa_port}"
        project = measure(Target([stack.url], "gateway"), args.levels, args.duration, args.warmup, "project")
        direct = measure(Target([rasa_url], "rasa"), args.levels, args.duration, args.warmup, "direct")
        return project, direct, rss(pids)
    finally:
        stack.stop()


def run_scaled(model: Path, args, work: Path) -> tuple[dict, dict, dict]:
    from deploy.scaled import ScaledStack

    stack = ScaledStack(model=model, replicas=args.scale, log_dir=work / "logs-scaled",
                        env={"KEFU_DATA_KEY": Fernet.generate_key().decode(), "KEFU_FAKE_NOW": FAKE_NOW,
                             **NO_ADDRESS_LIMIT})
    stack.start(timeout=400)
    try:
        # a load balancer in front of the gateways: each turn to the next gateway
        project = measure(Target(stack.gateway_urls, "gateway"), args.levels, args.duration,
                          args.warmup, "project", spread=1)
        # direct: each conversation stays on one Rasa replica (see README: ordering)
        direct = measure(Target(stack.rasa_urls, "rasa"), args.levels, args.duration, args.warmup, "direct")
        return project, direct, rss(stack.pids())
    finally:
        stack.stop()


def run_stock(args, work: Path) -> tuple[dict, dict]:
    from bench.baseline import ensure_stock_model

    model = Path(args.stock_model) if args.stock_model else ensure_stock_model()
    print(f"stock baseline model {model.name}", flush=True)
    stack = Stack(model=model, gateway_port=free_port(), rasa_port=free_port(),
                  action_port=free_port(), log_dir=work / "logs-stock", env=stack_env(work / "stock"),
                  plain_rasa=True)
    (work / "stock").mkdir(exist_ok=True)
    stack.start(timeout=300)
    try:
        pids = {"stock_rasa": stack.processes[1].pid}
        rasa_url = f"http://127.0.0.1:{stack.rasa_port}"
        return measure(Target([rasa_url], "rasa"), args.levels, args.duration, args.warmup, "stock"), rss(pids)
    finally:
        stack.stop()


def table(rows: Dict[str, Dict[int, dict]], mem: Dict[str, float]) -> str:
    lines = ["| path | conc | p50 ms | p95 ms | p99 ms | msg/s | errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, levels in rows.items():
        for conc, r in levels.items():
            lines.append(f"| {name} | {conc} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} "
                         f"| {r['throughput_rps']:.1f} | {r['errors']} |")
    lines.append("")
    lines.append("peak RSS (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in mem.items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1, help="1: one machine (SQLite); 2+: replicas on PostgreSQL + Redis")
    parser.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", 20)))
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 50])
    parser.add_argument("--tracker", choices=["sqlite", "memory"], default="sqlite",
                        help="Rasa tracker store of the project stack (scale 1)")
    parser.add_argument("--skip-stock", action="store_true", help="project and direct rows only")
    parser.add_argument("--stock-model", help="an already trained stock baseline archive (default: "
                        "train bench/stock_config.yml on the current data, cached by hash)")
    parser.add_argument("--retrain-mid-run", action="store_true",
                        help="live latency idle, then during a full retrain started through the "
                             "admin API (bench/retrain_load.py); default levels 1,10")
    parser.add_argument("--train-nice", type=int, help="with --retrain-mid-run: KEFU_TRAIN_NICE "
                        "of the stack (default 19; 0 shows the retrain at normal priority)")
    parser.add_argument("--retrain-limit", type=float, default=900.0,
                        help="with --retrain-mid-run: stop measuring after this many seconds")
    args = parser.parse_args(argv)
    if args.retrain_mid_run:
        return retrain_mid_run(args, argv)

    from bot.training.model_cache import ensure_model

    model = ensure_model()
    work = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
    started = time.time()
    print(f"kefu bench: {os.cpu_count()} cores, load {load_average()}, {args.duration:g} s per level, "
          f"model {model.name}, scale {args.scale}, work dir {work}", flush=True)
    if args.scale > 1:
        project, direct, mem = run_scaled(model, args, work)
    else:
        project, direct, mem = run_project(model, args, work)
    rows = {"project": project, "direct": direct}
    if not args.skip_stock:
        stock, stock_mem = run_stock(args, work)
        rows["stock"] = stock
        mem.update(stock_mem)
    print()
    print(table(rows, mem))
    c1 = min(args.levels)
    ten = 10 if 10 in project else max(args.levels)
    sat = max(r["throughput_rps"] for r in project.values())
    result = {
        "scale": args.scale,
        "p50_ms": project[c1]["p50_ms"], "p95_ms": project[c1]["p95_ms"],
        "p95_ms_c10": project[ten]["p95_ms"],
        "throughput_rps": sat,
        "direct_p50_ms": direct[c1]["p50_ms"],
        "gateway_overhead_ratio": round(project[c1]["p50_ms"] / direct[c1]["p50_ms"], 3),
        "errors": sum(r["errors"] for levels in rows.values() for r in levels.values()),
        "rasa_rss_mb": max(v for k, v in mem.items() if k.startswith("rasa")),
    }
    if "stock" in rows:
        stock_sat = max(r["throughput_rps"] for r in rows["stock"].values())
        result.update(stock_throughput_rps=stock_sat,
                      baseline_throughput_ratio=round(sat / stock_sat, 2),
                      stock_p95_ms=rows["stock"][c1]["p95_ms"], stock_rasa_rss_mb=mem.get("stock_rasa"))
    result.update(tracker_store="postgresql" if args.scale > 1 else args.tracker,
                  load_after=load_average(), wall_s=round(time.time() - started))
    print(json.dumps(result, ensure_ascii=False))
    return 0


def retrain_mid_run(args, argv) -> int:
    from bench.retrain_load import report, run_retrain
    from bot.training.model_cache import ensure_model

    if "--levels" not in " ".join(argv or sys.argv[1:]):
        args.levels = [1, 10]
    model = ensure_model()
    work = Path(tempfile.mkdtemp(prefix="kefu-bench-retrain-"))
    print(f"kefu bench --retrain-mid-run: {os.cpu_count()} cores, load {load_average()}, "
          f"{args.duration:g} s windows, levels {args.levels}, model {model.name}, work dir {work}",
          flush=True)
    report(run_retrain(model, args, work, stack_env, measure), load_average)
    return 0


if __name__ == "__main__":
    sys.exit(main())
