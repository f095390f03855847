"""A closed-loop load generator (aiohttp): N simulated customers, each sending its next
message as soon as the previous one is answered, for a fixed duration.

Two targets speak the same scripts: the gateway's web chat endpoint (``/api/chat``, the
project path) and Rasa's REST channel (``/webhooks/rest/webhook``, direct).
"""
from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import aiohttp

from bench.conversations import SCRIPTS

SYSTEM_BUSY = "系统有点忙"


@dataclass
class Result:
    latencies_ms: List[float] = field(default_factory=list)
    errors: int = 0
    error_samples: List[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        k = max(0, min(len(data) - 1, int(round(q / 100 * len(data) + 0.5)) - 1))
        return data[k]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


class Target:
    """Where a message goes and how an answer is judged."""

    def __init__(self, urls: Sequence[str], kind: str) -> None:
        self.urls, self.kind = list(urls), kind    # kind: gateway | rasa

    def request(self, index: int, sender: str, text: str):
        base = self.urls[index % len(self.urls)]
        if self.kind == "gateway":
            return f"{base}/api/chat", {"sender": sender, "message": text}
        return f"{base}/webhooks/rest/webhook", {"sender": sender, "message": text}

    def check(self, body) -> str | None:
        """None when the answer is a real bot answer, else why not."""
        if self.kind == "gateway":
            messages = body.get("messages") if isinstance(body, dict) else None
            if not messages:
                return "no reply"
            if any(m.get("author") == "system" and SYSTEM_BUSY in m.get("text", "") for m in messages):
                return "gateway: rasa unavailable"
            return None
        if not isinstance(body, list) or not any(m.get("text") for m in body):
            return "no reply"
        return None


async def _customer(session: aiohttp.ClientSession, target: Target, worker: int, tag: str,
                    stop_at: float, result: Result, spread: int) -> None:
    round_no = 0
    offset = worker % len(SCRIPTS)
    while time.monotonic() < stop_at:
        name, turns = SCRIPTS[(offset + round_no) % len(SCRIPTS)]
        sender = f"{tag}-{worker}-{round_no}-{name}"
        for turn_no, text in enumerate(turns):
            if time.monotonic() >= stop_at:
                return
            url, payload = target.request(worker + turn_no * spread, sender, text)
            started = time.perf_counter()
            try:
                async with session.post(url, json=payload) as resp:
                    body = await resp.json(content_type=None)
                    status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                result.error(f"{type(exc).__name__}: {exc}"[:120])
                continue
            took = (time.perf_counter() - started) * 1000
            if status != 200:
                result.error(f"HTTP {status}")
                continue
            problem = target.check(body)
            if problem:
                result.error(problem)
                continue
            result.latencies_ms.append(took)
        round_no += 1


async def run_load(target: Target, concurrency: int, duration_s: float, tag: str, *,
                   warmup_s: float = 0.0, spread: int = 0) -> Result:
    """``spread`` > 0 alternates a conversation's turns across ``target.urls``."""
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        if warmup_s:
            await asyncio.gather(*(_customer(session, target, w, f"{tag}-warm", time.monotonic() + warmup_s,
                                             Result(), spread) for w in range(concurrency)))
        result = Result()
        started = time.monotonic()
        stop_at = started + duration_s
        await asyncio.gather(*(_customer(session, target, w, tag, stop_at, result, spread)
                               for w in range(concurrency)))
        result.elapsed_s = time.monotonic() - started
    return result


def proc_tree_peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process plus its children, in MB."""
    total = 0
    for p in [pid] + _children(pid):
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> List[int]:
    out: List[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids = [int(x) for x in fh.read().split()]
            for kid in kids:
                out += [kid] + _children(kid)
    except OSError:
        pass
    return out


def summary(result: Result) -> Dict[str, float]:
    return {"n": len(result.latencies_ms), "p50_ms": round(result.p50, 1),
            "p95_ms": round(result.pct(95), 1), "p99_ms": round(result.pct(99), 1),
            "throughput_rps": round(result.throughput, 1), "errors": result.errors}
