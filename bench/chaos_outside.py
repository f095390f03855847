"""``make chaos`` rows where the fault is outside kefu's own processes: a console tab that
stops reading its live events, WeCom's group robot refusing every message, Telegram down
while an agent answers a customer. Each counts lost and duplicated messages (both must be
0) the way :mod:`bench.chaos` does for customer lines, plus the messages of that row's own
path (alerts, agents' replies). The platforms are the test suite's fakes (tests/fakes/),
which speak the real wire formats.
"""
from __future__ import annotations

import asyncio
import re
import secrets
import socket
import threading
import time
from typing import Dict, List

import aiohttp
from aiohttp import web

from bot.store.agents import AgentStore
from bot.store.handoffs import HandoffStore
from tests.fakes import ThreadedServer
from tests.fakes.telegram import TELEGRAM_SECRET, FakeBotAPI, TelegramCustomer, agents_bot_api

WECOM_REFUSAL = {"errcode": 93000, "errmsg": "invalid webhook url"}     # refused for good
HANDOFF_ID = re.compile(r"会话 #(\d+)")                                  # in a handoff's alert


class FakeRobot:
    """WeCom's group robot (``/cgi-bin/webhook/send``): ``{"errcode": 0}``, or a refusal."""

    def __init__(self) -> None:
        self.refusing = False
        self.received: List[str] = []
        self.lock = threading.Lock()
        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self.send)
        self.server = ThreadedServer(app, _port())

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            self.received.append(body["text"]["content"])
        return web.json_response(WECOM_REFUSAL if self.refusing else {"errcode": 0, "errmsg": "ok"})

    def alerts_for(self, handoff_id: int) -> int:
        """How many of the robot's messages were about handoff ``handoff_id``."""
        with self.lock:
            return sum(1 for text in self.received
                       if (m := HANDOFF_ID.search(text)) and int(m.group(1)) == handoff_id)


def _port() -> int:
    from bot.gateway.ports import free_port
    return free_port()


class Outside:
    """The fakes a chaos stack talks to, started before it (their URLs are its settings):
    the customers' Telegram bot, the agents' Telegram group and WeCom's robot. The same
    ones under ``make chaos`` and under pytest (whose session settings the stack inherits)."""

    def __init__(self) -> None:
        self.telegram = FakeBotAPI().start()
        self.agents = agents_bot_api().start()
        self.robot = FakeRobot()
        self.robot.server.start()

    def env(self) -> Dict[str, str]:
        return {**self.telegram.customer_bot_env(), **self.agents.agents_bot_env(),
                "KEFU_TELEGRAM_AGENT_POLL_TIMEOUT": "1",
                "KEFU_WECOM_WEBHOOK": f"{self.robot.server.url}/cgi-bin/webhook/send?key=chaos",
                "KEFU_RATE_PER_ADDRESS_MINUTE": "0"}      # every chaos customer is 127.0.0.1

    def stop(self) -> None:
        self.telegram.stop()
        self.agents.stop()
        self.robot.server.stop()


# --- helpers ---------------------------------------------------------------------------------


async def signed_in(h, role: str = "agent") -> aiohttp.ClientSession:
    """A console session (cookie) of a fresh account in the stack's database."""
    name, password = f"chaos-{role}-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    await asyncio.to_thread(AgentStore(h.engine).create, name, password, role=role,
                            display_name=name)
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                    timeout=aiohttp.ClientTimeout(total=30))
    async with session.post(f"{h.stack.url}/api/agent/login",
                            json={"name": name, "password": password}) as resp:
        if resp.status != 200:
            await session.close()
            raise RuntimeError(f"sign-in failed: HTTP {resp.status}")
    return session


async def wait_until(probe, timeout: float, every: float = 0.5):
    """``probe()`` (a value or a coroutine) until it is truthy, or ``timeout`` s."""
    async def value():
        found = probe()
        return await found if asyncio.iscoroutine(found) else found
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await value()
        if found:
            return found
        await asyncio.sleep(every)
    return await value()


# --- a console tab that stops reading ------------------------------------------------------


def stalled_tab(url: str, cookie: str) -> socket.socket:
    """``GET /api/agent/events`` on a socket that is never read (a frozen browser tab): the
    gateway's writes to it block once the socket buffers are full, and its queue fills."""
    host, port = url.split("//", 1)[1].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect((host, int(port)))
    sock.sendall(f"GET /api/agent/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                 f"Cookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n".encode())
    return sock


async def healthy_tab(session: aiohttp.ClientSession, url: str, seen: List[int]) -> None:
    async with session.get(f"{url}/api/agent/events", timeout=aiohttp.ClientTimeout(total=None)) as resp:
        async for line in resp.content:
            if line.startswith(b"event: change"):
                seen[0] += 1


async def sse_subscriber_full(h):
    """A console tab stops reading while 3,000 events are published (its queue holds 1,000):
    every handed-off customer's message is still stored once and acknowledged, and another
    tab still gets every change."""
    senders = [f"sse{i}" for i in range(150)]
    per_sender = 20                                # within a conversation's burst (KEFU_RATE_BURST)
    store = HandoffStore(h.engine)
    for s in senders:                              # people have these conversations
        await asyncio.to_thread(store.open, conversation_id=f"web:{s}", channel="web",
                                user_id=s, ticket_number=None, reason="request_human")
    agent = await signed_in(h)
    cookie = "; ".join(f"{c.key}={c.value}" for c in agent.cookie_jar)
    stalled = await asyncio.to_thread(stalled_tab, h.stack.url, cookie)
    seen = [0]
    watcher = asyncio.create_task(healthy_tab(agent, h.stack.url, seen))
    await asyncio.sleep(1)
    sent: Dict[str, int] = {}
    acknowledged: Dict[str, int] = {}
    gate = asyncio.Semaphore(16)

    async def customer(session, sender: str) -> None:
        for i in range(per_sender):
            async with gate:
                ok = await h.say(session, sender, f"补充说明第{i}条（{sender}）")
            sent[sender] = sent.get(sender, 0) + 1
            acknowledged[sender] = acknowledged.get(sender, 0) + ok

    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(customer(session, s) for s in senders))
        await h.settle(senders)
        total = sum(sent.values())
        await wait_until(lambda: seen[0] >= total, 20)
    finally:
        watcher.cancel()
        stalled.close()
        await agent.close()
    # answered: each line got the waiting notice (reply_to names it), as bench.chaos counts
    result = h.outcome("a console tab stops reading its live events", sent, {})
    stored = h.transcript_counts(senders)
    lines = {s: sum(n for k, n in stored[s].items() if k.startswith("customer:")) for s in senders}
    result.lost += sum(sent.values()) - sum(acknowledged.values())     # a turn that failed
    result.duplicated += sum(max(0, lines[s] - sent[s]) for s in senders)
    missed = max(0, sum(sent.values()) - seen[0])      # live updates the reading tab missed
    result.lost += missed
    result.notes.append(f"{sum(sent.values())} events while one tab read nothing; "
                        f"the reading tab missed {missed}")
    return result


# --- WeCom's robot refuses everything --------------------------------------------------------


async def wecom_refusing(h):
    """WeCom's group robot refuses every alert for good (errcode 93000) while customers ask for
    a person: each refused alert is dead-lettered once (shown to agents), never retried or
    stuck; once the robot takes messages again the next alerts arrive, each once."""
    robot = h.outside.robot
    first, then = [f"wr{i}" for i in range(3)], [f"wa{i}" for i in range(2)]
    sent: Dict[str, int] = {}
    robot.refusing = True
    async with aiohttp.ClientSession() as session:
        for s in first:
            await h.say(session, s, "转人工")
            sent[s] = 1
        await asyncio.sleep(3)
        robot.refusing = False
        for s in then:
            await h.say(session, s, "转人工")
            sent[s] = 1
        await h.settle(first + then)
    ids = {}
    for s in first + then:
        handoff = await asyncio.to_thread(HandoffStore(h.engine).active, f"web:{s}")
        ids[s] = handoff.id if handoff else None
    # in service hours a customer only waiting for a person has no ticket yet (the record is
    # opened when an agent takes the conversation): any ticket here counts as a duplicate
    result = h.outcome("WeCom's robot refuses every alert, then takes them", sent, {})
    admin = await signed_in(h, "admin")
    try:
        async def settled():
            async with admin.get(f"{h.stack.url}/api/agent/outbox") as resp:
                body = await resp.json()
            waiting = (body.get("targets") or {}).get("wecom", {})
            dead = [d for d in body["dead"] if d["target"] == "wecom"]
            delivered = all(robot.alerts_for(ids[s]) for s in then if ids[s])
            return (dead, waiting) if len(dead) >= len(first) and delivered else None
        found = await wait_until(settled, 30)
    finally:
        await admin.close()
    dead = found[0] if found else []
    missing = [s for s in first + then if ids[s] is None]
    result.lost += len(missing)                                  # no handoff, no alert
    dead_ids = {int(m.group(1)) for d in dead if (m := HANDOFF_ID.search(d["text"]))}
    result.lost += sum(1 for s in first if ids[s] and ids[s] not in dead_ids)   # neither sent nor dead
    result.lost += sum(1 for s in then if ids[s] and robot.alerts_for(ids[s]) == 0)
    # a refusal for good is never tried again; an accepted alert arrives once
    result.duplicated += sum(max(0, robot.alerts_for(ids[s]) - 1) for s in first + then if ids[s])
    result.notes.append(f"{len(dead_ids)} dead letters shown to agents; robot got "
                        f"{len(robot.received)} messages")
    if missing:
        result.notes.append(f"no handoff for {missing}")
    return result


# --- Telegram down while an agent replies ---------------------------------------------------


async def telegram_down_agent_replies(h):
    """A Telegram customer is handed to an agent; the Bot API goes away while the agent sends
    three replies, and comes back: each reply reaches the customer once, in order."""
    api: FakeBotAPI = h.outside.telegram
    chat_id = 7_000_000 + secrets.randbelow(1_000_000)
    conversation = f"telegram:{chat_id}"
    customer = TelegramCustomer(f"{h.stack.url}/webhooks/telegram", TELEGRAM_SECRET, api, chat_id)
    status = await asyncio.to_thread(customer.post, customer.message_update("转人工"))
    from bench.chaos import Outcome

    result = Outcome("Telegram down while an agent replies", sent=1)
    handoff = await wait_until(lambda: asyncio.to_thread(HandoffStore(h.engine).active, conversation), 60)
    if status != 200 or handoff is None:
        result.lost = 1
        result.notes.append(f"no handoff (webhook HTTP {status})")
        return result
    result.answered = 1
    agent = await signed_in(h)
    replies = [f"您好，我是客服，第{i}条回复（{secrets.token_hex(2)}）" for i in range(3)]
    try:
        async with agent.post(f"{h.stack.url}/api/agent/handoffs/{handoff.id}/claim", json={}) as resp:
            claimed = resp.status == 200
        api.stop()                                  # Telegram unreachable
        codes = []
        for text in replies:
            async with agent.post(f"{h.stack.url}/api/agent/handoffs/{handoff.id}/reply",
                                  json={"text": text}) as resp:
                codes.append(resp.status)
        await asyncio.sleep(5)
        api.start()                                 # back, on the same port

        def got() -> List[str]:
            return [m["text"] for m in api.sent(chat_id) if m.get("text") in replies]
        await wait_until(lambda: len(set(got())) == len(replies), 90)
    finally:
        await agent.close()
    delivered = got()
    result.sent += len(replies)
    result.answered += len(set(delivered))
    result.lost += len(replies) - len(set(delivered)) + (0 if claimed else 1)
    result.duplicated += len(delivered) - len(set(delivered))
    order = [replies.index(t) for t in dict.fromkeys(delivered)]
    result.out_of_order += sum(1 for a, b in zip(order, order[1:]) if b < a)
    result.notes.append(f"agent's replies answered HTTP {codes} while Telegram was down")
    return result


SCENARIOS = {"sse_full": sse_subscriber_full, "wecom_refusing": wecom_refusing,
             "telegram_down": telegram_down_agent_replies}

