"""The scaled-out topology keeps every conversation consistent (issue 7).

Two gateway replicas and two Rasa replicas on the machine's real PostgreSQL and Redis
(deploy/scaled.py; a scratch database and Redis key prefix per run, removed after). Many
customers at once each send bursts of messages, alternately to both gateways, without
waiting for answers; each message carries the web chat's sequence number ``seq``, the
order the customer sent it in (two network paths to two replicas can't tell it otherwise,
see bot/gateway/scaleout.py). Afterwards every conversation's Rasa tracker holds each customer
message exactly once and in the order sent, and the number of complaint tickets equals
the number of complaint forms that completed.

``KEFU_SCALED_ORDERING=rasa-lock-store`` runs the same test with gateway i talking only to
Rasa i and ordering left to Rasa's RedisLockStore (how README's finding was made).
"""
from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, select

from bot.store.schema import Ticket
from tests.conftest import FAKE_NOW

pytestmark = pytest.mark.e2e

CUSTOMERS = 16
STAGGER_S = 0.04      # between two messages of one burst ("sent" order = this order)


def bursts_for(n: int) -> tuple[list[list[str]], bool]:
    """Two bursts; even customers complete a complaint form, odd ones abandon one."""
    if n % 2 == 0:
        return [["快递员态度太差了，还把我的冰箱磕坏了，我要投诉", f"DD20261120{n:04d}", f"138 1234 {n:04d}"],
                ["运费怎么算的", "我的投诉处理到哪一步了", "保修期是多久？"]], True
    return [["你好", "七天无理由退货吗", "运费怎么算"],
            ["我要投诉", "算了不投诉了", "谢谢"]], False


@pytest.fixture(scope="module")
def scaled(trained_model, tmp_path_factory):
    from deploy.scaled import ScaledStack

    stack = ScaledStack(model=trained_model, replicas=2, log_dir=tmp_path_factory.mktemp("scaled"),
                        ordering=os.environ.get("KEFU_SCALED_ORDERING", "gateway"),
                        env={"KEFU_DATA_KEY": Fernet.generate_key().decode(),
                             "KEFU_FAKE_NOW": FAKE_NOW, "KEFU_REPLY_TIMEOUT": "60"})
    stack.start(timeout=300)
    yield stack
    stack.stop()


async def _customer(session, gateways, n, sent):
    sender = f"burst-{n}"
    bursts, _ = bursts_for(n)
    index = n   # customers start on different gateways
    for burst in bursts:
        tasks = []
        for text in burst:
            url = f"{gateways[index % len(gateways)]}/api/chat"
            index += 1
            sent.append(text)
            payload = {"sender": sender, "message": text, "seq": len(sent)}
            tasks.append(asyncio.ensure_future(session.post(url, json=payload)))
            await asyncio.sleep(STAGGER_S)
        for response in await asyncio.gather(*tasks):
            assert response.status == 200, await response.text()
            response.release()


async def _run(gateways):
    sent = {n: [] for n in range(CUSTOMERS)}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(_customer(session, gateways, n, sent[n]) for n in range(CUSTOMERS)))
    return sent


def test_bursts_across_replicas_stay_ordered_and_tickets_match_forms(scaled):
    sent = asyncio.run(_run(scaled.gateway_urls))
    completed = 0
    problems = []
    for n, texts in sent.items():
        events = scaled.tracker(f"web:burst-{n}")["events"]
        said = [e["text"] for e in events if e["event"] == "user"]
        if said != texts:
            problems.append(f"customer {n}: sent {texts}, tracker has {said}")
        completed += sum(1 for e in events if e["event"] == "action" and e["name"] == "action_submit_complaint")
    assert not problems, "\n".join(problems)
    engine = create_engine(scaled.database_url, future=True)
    try:
        with engine.connect() as conn:
            tickets = conn.execute(select(func.count()).select_from(Ticket)
                                   .where(Ticket.kind == "complaint")).scalar_one()
    finally:
        engine.dispose()
    expected = sum(1 for n in range(CUSTOMERS) if bursts_for(n)[1])
    assert completed == expected, f"{completed} complaint forms completed, {expected} expected"
    assert tickets == completed
