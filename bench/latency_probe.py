"""End-to-end latency of one or more trained models through the real stack.

``python -m bench.latency_probe MODEL [MODEL ...] [--rounds N]`` starts the stack
(bot/gateway/launch.py: action server, Rasa, gateway) on each model in turn, on free ports and a
throw-away database, and times ``POST /api/chat`` one message at a time (no concurrency)
for every test message in tests/nlu, each from a fresh sender so that no form is left
open. Prints median and 95th percentile per model. Used to check that new NLU features
do not add more than 20 ms at the median (README, "NLU benchmark").
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import List

from bot.gateway.ports import free_port as _free_port


def _texts(limit: int) -> List[str]:
    from bot.training.data_check import TEST, load

    examples, _ = load(TEST)
    return [e.text for e in examples][:limit]


def probe(model: Path, texts: List[str], rounds: int) -> List[float]:
    from cryptography.fernet import Fernet

    from bot.gateway.launch import Stack

    work = Path(tempfile.mkdtemp(prefix="kefu-latency-"))
    env = {"KEFU_DATABASE_URL": f"sqlite:///{work}/kefu.db",
           "KEFU_DATA_KEY": Fernet.generate_key().decode()}
    stack = Stack(model=model, gateway_port=_free_port(), rasa_port=_free_port(),
                  action_port=_free_port(), log_dir=work / "logs",
                  tracker_db=str(work / "trackers.db"), env=env)
    stack.start(timeout=300)
    try:
        def say(sender: str, text: str) -> float:
            body = json.dumps({"sender": sender, "message": text}).encode()
            request = urllib.request.Request(f"{stack.url}/api/chat", data=body,
                                             headers={"Content-Type": "application/json"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as resp:
                json.load(resp)
            return (time.perf_counter() - started) * 1000

        for i in range(5):
            say(f"warm-{i}", "你好")
        times = []
        for r in range(rounds):
            for i, text in enumerate(texts):
                times.append(say(f"probe-{r}-{i}", text))
        return times
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--limit", type=int, default=200, help="test messages per round")
    args = parser.parse_args()
    texts = _texts(args.limit)
    for model in args.models:
        times = probe(Path(model).resolve(), texts, args.rounds)
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(f"{Path(model).name}: n={len(times)} median {statistics.median(times):.1f} ms, "
              f"p95 {p95:.1f} ms, mean {statistics.mean(times):.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
