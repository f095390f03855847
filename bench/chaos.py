"""``make chaos``: faults injected into the real processes, and what customers lost.

Each scenario starts from a running stack (action server, Rasa, gateway on SQLite),
drives web-chat customers through it while one fault happens, lets the system recover,
and counts: messages sent, answered (a reply in the turn or pushed later), lost (sent
but not in the transcript, or never processed), duplicated (answered twice), out of order
and duplicated tickets (more than one ticket for one form run). Faults outside kefu's own
processes (a stalled console tab, WeCom refusing, Telegram down while an agent replies)
are in bench/chaos_outside.py. The same scenarios run as tests (tests/test_chaos.py).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

import aiohttp
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot.store.engine import engine_for
from bot.gateway.launch import Stack
from bot.store.schema import Message, Ticket
from bot.settings import setting
from bot.gateway.ports import free_port as _free_port
from bench.chaos_outside import SCENARIOS as OUTSIDE_SCENARIOS, Outside

COMPLAINT = ["我要投诉，快递员把我买的冰箱摔坏了还不承认", "没有", "13812345678"]
FAQ = ["退货要几天", "保修多久", "运费多少钱"]
RASA_TIMEOUT = 30           # the gateway's KEFU_RASA_TIMEOUT: its default ("Rasa slower than 30 s")


@dataclass
class Outcome:
    scenario: str
    sent: int = 0
    answered: int = 0
    lost: int = 0
    duplicated: int = 0             # customer lines answered more than once
    out_of_order: int = 0           # answers that came before the answer to an earlier line
    duplicated_tickets: int = 0
    notes: List[str] = field(default_factory=list)


class Harness:
    """A stack of its own plus the customers' view of it."""

    def __init__(self, model: Path, workdir: Path, db_url: str | None = None) -> None:
        self.db_url = db_url or f"sqlite:///{workdir}/kefu.db"
        # the platforms outside (Telegram's Bot API, WeCom's robot): bench/chaos_outside.py
        self.outside = Outside()
        self.stack = Stack(model=model, gateway_port=_free_port(), rasa_port=_free_port(),
                           action_port=_free_port(), log_dir=workdir / "logs",
                           tracker_db=str(workdir / "trackers.db"),
                           env={"KEFU_DATABASE_URL": self.db_url,
                                "KEFU_DATA_KEY": setting("KEFU_DATA_KEY") or Fernet.generate_key().decode(),
                                "KEFU_FAKE_NOW": "2026-11-27T10:00:00",
                                "KEFU_REPLY_TIMEOUT": "3", "KEFU_REQUEUE_AFTER": "10",
                                "KEFU_RASA_TIMEOUT": str(RASA_TIMEOUT), **self.outside.env()})
        self.engine = engine_for(self.db_url)
    
    async def say(self, session: aiohttp.ClientSession, sender: str, text: str) -> bool:
        """One message; True when the gateway acknowledged it (HTTP 200)."""
        try:
            async with session.post(f"{self.stack.url}/api/chat", json={"sender": sender, "message": text},
                                    timeout=aiohttp.ClientTimeout(total=30)) as resp:
                return resp.status == 200 and bool((await resp.json())["messages"])
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        return False

    def transcript_counts(self, senders: List[str]) -> Dict[str, Dict[str, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Message.conversation_id, Message.author, Message.state, func.count())
                                .where(Message.conversation_id.in_([f"web:{s}" for s in senders]))
                                .group_by(Message.conversation_id, Message.author, Message.state)).all()
        counts: Dict[str, Dict[str, int]] = {s: {} for s in senders}
        for conversation, author, state, n in rows:
            key = f"{author}:{state}" if author == "customer" else author
            counts[conversation[4:]][key] = counts[conversation[4:]].get(key, 0) + n
        return counts

    def tickets(self, senders: List[str]) -> Dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Ticket.customer_id, func.count()).where(
                Ticket.customer_id.in_([f"web:{s}" for s in senders])).group_by(Ticket.customer_id)).all()
        return {customer[4:]: n for customer, n in rows}

    async def settle(self, senders: List[str], timeout: float = 90) -> None:
        """Wait until no customer line of these senders is waiting for the bot."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.transcript_counts(senders)
            if not any(k.startswith("customer:") and not k.endswith(":done") and n
                       for c in counts.values() for k, n in c.items()):
                return
            await asyncio.sleep(1)

    def answers(self, senders: List[str]) -> Dict[str, Dict[str, int]]:
        """Per sender: customer lines processed *and* replied to (a reply line naming the line
        in ``reply_to``: in the turn, or pushed later), lines answered more than once (two
        separate groups of replies), and answers that came before an earlier line's."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(Message.conversation_id, Message.id, Message.author,
                                       Message.state, Message.data)
                                .where(Message.conversation_id.in_([f"web:{s}" for s in senders]))
                                .order_by(Message.id)).all()
        found = {s: {"answered": 0, "duplicated": 0, "out_of_order": 0} for s in senders}
        lines: Dict[str, Dict[int, str]] = {s: {} for s in senders}
        groups: Dict[str, List[int]] = {s: [] for s in senders}   # reply_to of each reply group
        previous: Dict[str, int | None] = {}          # reply_to of the conversation's last row
        for conversation, row_id, author, state, data in rows:
            sender = conversation[4:]
            if isinstance(data, str):
                data = json.loads(data)
            reply_to = None if author == "customer" else (data or {}).get("reply_to")
            if author == "customer":
                lines[sender][row_id] = state
            elif reply_to is not None and previous.get(sender) != reply_to:
                groups[sender].append(reply_to)       # a new group of replies to that line
            previous[sender] = reply_to
        for sender in senders:
            answered = [line for line in groups[sender] if lines[sender].get(line) == "done"]
            found[sender]["answered"] = len(set(answered))
            found[sender]["duplicated"] = len(answered) - len(set(answered))
            found[sender]["out_of_order"] = sum(1 for a, b in zip(answered, answered[1:]) if b < a)
        return found

    def outcome(self, name: str, sent: Dict[str, int], forms: Dict[str, int]) -> Outcome:
        """answered = customer lines the bot processed and replied to (in the turn or pushed
        later: a reply exists for the line, not only its state "done"); lost = sent but
        never stored, or stored and never answered."""
        answers = self.answers(list(sent))
        tickets = self.tickets(list(sent))
        result = Outcome(name, sent=sum(sent.values()))
        for sender, n in sent.items():
            done = answers[sender]["answered"]
            result.answered += done
            result.lost += max(0, n - done)
            result.duplicated += answers[sender]["duplicated"]
            result.out_of_order += answers[sender]["out_of_order"]
            result.duplicated_tickets += max(0, tickets.get(sender, 0) - forms.get(sender, 0))
            if tickets.get(sender, 0) < forms.get(sender, 0):
                result.notes.append(f"{sender}: {tickets.get(sender, 0)}/{forms[sender]} tickets")
        return result


async def _conversation(h: Harness, session, sender: str, lines: List[str], sent: Dict[str, int],
                        pause: float = 0.0) -> None:
    for text in lines:
        await h.say(session, sender, text)
        sent[sender] = sent.get(sender, 0) + 1
        if pause:
            await asyncio.sleep(pause)


async def action_server_killed(h: Harness) -> Outcome:
    senders = [f"act{i}" for i in range(4)]
    sent: Dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(_conversation(h, session, s, COMPLAINT[:1], sent) for s in senders))
        h.stack.kill("actions")                       # mid-form: category+description kept
        await asyncio.gather(*(_conversation(h, session, s, COMPLAINT[1:], sent) for s in senders))
        h.stack.restart("actions")
        await h.settle(senders)
    return h.outcome("action server killed mid complaint form", sent, {s: 1 for s in senders})


async def action_server_hung(h: Harness) -> Outcome:
    """The action server stops answering (SIGSTOP, a hung process) in the middle of the
    complaint form, and resumes: the held lines are answered in order, the form completes."""
    senders = [f"hung{i}" for i in range(3)]
    sent: Dict[str, int] = {}
    pid = h.stack.named["actions"].pid
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(_conversation(h, session, s, COMPLAINT[:1], sent) for s in senders))
        os.killpg(pid, signal.SIGSTOP)
        try:
            await asyncio.gather(*(_conversation(h, session, s, COMPLAINT[1:], sent) for s in senders))
            await asyncio.sleep(2)
        finally:
            os.killpg(pid, signal.SIGCONT)
        await h.settle(senders)
    return h.outcome("action server hung (SIGSTOP) mid-form", sent, {s: 1 for s in senders})


async def rasa_past_timeout(h: Harness) -> Outcome:
    """Rasa frozen longer than the gateway's Rasa timeout: the slow turn fails after the
    customer was told to wait; it is replayed before the customer's next line."""
    senders = [f"late{i}" for i in range(3)]
    sent: Dict[str, int] = {}
    pid = h.stack.named["rasa"].pid
    async with aiohttp.ClientSession() as session:
        os.killpg(pid, signal.SIGSTOP)
        try:
            await asyncio.gather(*(_conversation(h, session, s, FAQ[:1], sent) for s in senders))
            await asyncio.gather(*(_conversation(h, session, s, FAQ[1:2], sent) for s in senders))
            await asyncio.sleep(RASA_TIMEOUT + 2)
        finally:
            os.killpg(pid, signal.SIGCONT)
        await h.settle(senders)
    return h.outcome(f"Rasa frozen past its {RASA_TIMEOUT} s timeout", sent, {})


async def rasa_down(h: Harness) -> Outcome:
    senders = [f"down{i}" for i in range(4)]
    sent: Dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        h.stack.kill("rasa")
        await asyncio.gather(*(_conversation(h, session, s, COMPLAINT, sent) for s in senders))
        h.stack.restart("rasa")
        await h.settle(senders)
    return h.outcome("Rasa down, then back", sent, {s: 1 for s in senders})


async def rasa_slow(h: Harness) -> Outcome:
    senders = [f"slow{i}" for i in range(4)]
    sent: Dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        os.killpg(h.stack.named["rasa"].pid, signal.SIGSTOP)   # frozen: answers take > 3 s
        loop = asyncio.get_running_loop()
        loop.call_later(6, os.killpg, h.stack.named["rasa"].pid, signal.SIGCONT)
        await asyncio.gather(*(_conversation(h, session, s, FAQ[:1], sent) for s in senders))
        await asyncio.sleep(4)
        await asyncio.gather(*(_conversation(h, session, s, FAQ[1:], sent) for s in senders))
        await h.settle(senders)
        await asyncio.sleep(3)                        # late answers are pushed as notices
    return h.outcome("Rasa slow (frozen 6 s)", sent, {})


async def database_locked(h: Harness) -> Outcome:
    senders = [f"lock{i}" for i in range(4)]
    sent: Dict[str, int] = {}
    path = h.db_url.split("///", 1)[1]
    release = threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(path, timeout=30)
        conn.execute("BEGIN EXCLUSIVE")
        release.wait(4)
        conn.rollback()
        conn.close()

    async with aiohttp.ClientSession() as session:
        holder = threading.Thread(target=hold_lock)
        holder.start()
        await asyncio.gather(*(_conversation(h, session, s, COMPLAINT, sent) for s in senders))
        holder.join()
        await h.settle(senders)
    return h.outcome("SQLite locked 4 s", sent, {s: 1 for s in senders})


async def gateway_restarted(h: Harness) -> Outcome:
    senders = [f"gw{i}" for i in range(6)]
    sent: Dict[str, int] = {}
    acknowledged: Dict[str, int] = {}
    retried = [0]

    async def customer(session, sender: str) -> None:
        for text in COMPLAINT + FAQ:
            ok = await h.say(session, sender, text)
            sent[sender] = sent.get(sender, 0) + 1
            acknowledged[sender] = acknowledged.get(sender, 0) + ok
            if not ok:                                # not acknowledged: the client retries
                retried[0] += 1
                await asyncio.sleep(1)
                while not await h.say(session, sender, text):
                    await asyncio.sleep(1)
                acknowledged[sender] += 1
            await asyncio.sleep(0.3)

    async def restart_midway() -> None:
        await asyncio.sleep(1.5)
        h.stack.kill("gateway")
        await asyncio.to_thread(h.stack.restart, "gateway")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(restart_midway(), *(customer(session, s) for s in senders))
        await h.settle(senders)
    # Only acknowledged messages count as sent: an unacknowledged one was retried.
    result = h.outcome("gateway restarted under load", acknowledged, {s: 1 for s in senders})
    # A message cut off mid-request may have been stored before the crash; its retry is a
    # second line (at-least-once, as platforms without message ids get), never a loss.
    result.notes.append(f"{retried[0]} unacknowledged and retried")
    return result


async def postgres_restarted(h: Harness) -> Outcome:
    """The machine's PostgreSQL restarts while complaint forms are being filled in."""
    senders = [f"pg{i}" for i in range(4)]
    sent: Dict[str, int] = {}

    async def restart_midway() -> None:
        await asyncio.sleep(0.5)
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        await asyncio.to_thread(subprocess.run, ["pg_ctlcluster", "--skip-systemctl-redirect",
                                                 version, "main", "restart"], check=True)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(restart_midway(), *(
            _conversation(h, session, s, COMPLAINT, sent, pause=0.7) for s in senders))
        await h.settle(senders)
    return h.outcome("PostgreSQL restarted mid-form", sent, {s: 1 for s in senders})


SCENARIOS: Dict[str, Callable[[Harness], "asyncio.Future[Outcome]"]] = {
    "actions": action_server_killed, "actions_hung": action_server_hung,
    "rasa_down": rasa_down, "rasa_slow": rasa_slow, "rasa_timeout": rasa_past_timeout,
    "db_locked": database_locked, "gateway": gateway_restarted,
    "postgres": postgres_restarted,
    **OUTSIDE_SCENARIOS,        # a console tab that stops reading, WeCom refusing, Telegram down
}
POSTGRES_SCENARIOS = {"postgres"}     # run on a stack whose ticket store is PostgreSQL


def _run_on(harness: Harness, names: List[str]) -> List[Outcome]:
    try:
        harness.stack.start(timeout=240)
        return [asyncio.run(SCENARIOS[name](harness)) for name in names]
    finally:
        harness.stack.stop()
        harness.outside.stop()


def run(model: Path, names: List[str]) -> List[Outcome]:
    sqlite_names = [n for n in names if n not in POSTGRES_SCENARIOS]
    pg_names = [n for n in names if n in POSTGRES_SCENARIOS]
    outcomes: List[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="kefu-chaos-") as tmp:
        if sqlite_names:
            outcomes += _run_on(Harness(model, Path(tmp) / "sqlite"), sqlite_names)
        if pg_names:
            from deploy.scaled import PG_HOST, PG_PORT, PG_USER, pg_admin

            database = f"kefu_chaos_{os.getpid()}_{int(time.time())}"
            pg_admin(f'CREATE DATABASE "{database}"')
            url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"
            harness = Harness(model, Path(tmp) / "pg", db_url=url)
            try:
                outcomes += _run_on(harness, pg_names)
            finally:
                harness.engine.dispose()
                pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return outcomes


def main() -> int:
    from bot.training.model_cache import ensure_model

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args()
    outcomes = run(ensure_model(), args.scenarios or list(SCENARIOS))
    print(f"{'scenario':52} {'sent':>5} {'answered':>9} {'lost':>5} {'dup':>4} {'order':>6} {'dup tickets':>12}")
    for o in outcomes:
        print(f"{o.scenario:52} {o.sent:5d} {o.answered:9d} {o.lost:5d} {o.duplicated:4d} "
              f"{o.out_of_order:6d} {o.duplicated_tickets:12d}"
              + (f"  ({'; '.join(o.notes)})" if o.notes else ""))
    print(json.dumps([asdict(o) for o in outcomes], ensure_ascii=False))
    return 0 if all(o.lost == 0 and o.duplicated == 0 and o.out_of_order == 0
                    and o.duplicated_tickets == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
