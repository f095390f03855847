"""Waiting for a person (issue 14): every line acknowledged with the queue position, and
"算了不等了" cancels the handoff (no rating asked) and hands the conversation back to the bot."""
import asyncio

import pytest

from bot.messages import InboundMessage
from bot.support.handoffs import HandoffService


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/wait.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")
    return HandoffService()


def test_queued_customer_is_acknowledged_then_can_cancel(service):
    async def scenario():
        await service.open("web:a", "web", "a", ticket_number=None, reason="request_human")
        await service.open("web:b", "web", "b", ticket_number=None, reason="request_human")
        ack = await service.gate(InboundMessage(channel="web", user_id="b", text="人呢？"))
        assert ack and "第 2 位" in ack[0].text
        gone = await service.gate(InboundMessage(channel="web", user_id="a", text="算了不等了"))
        assert gone and "取消" in gone[0].text
        assert await service.gate(InboundMessage(channel="web", user_id="a", text="运费多少")) is None
        assert service.store.rating_ticket("web:a") is None       # cancelled: no rating asked
        moved = await service.gate(InboundMessage(channel="web", user_id="b", text="还要多久"))
        assert "第 1 位" in moved[0].text
    asyncio.run(scenario())
