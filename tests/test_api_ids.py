"""Ids no row can have get a 4xx, never a 5xx (found by ``make fuzz-api``: schemathesis sent
``POST /api/agent/handoffs/394577244927598920549115086503936/note`` and got 500, SQLite's
OverflowError for an integer past 64 bits). Path ids go through ``bot.web.path_id``, ids in
JSON bodies through ``bot.web.is_id``."""
from __future__ import annotations

from bot.store.handoffs import HandoffStore
from bot.web import MAX_ID, is_id
from tests.test_workspace_api import client, gateway  # noqa: F401  (the gateway fixture)

HUGE = 394577244927598920549115086503936


def test_ids_past_64_bits_in_the_path_are_not_found(gateway):  # noqa: F811
    agent, admin = client(gateway, prefix="amy"), client(gateway, "admin", "adm")
    for who, method, path, body in (
            (agent, "POST", f"/api/agent/handoffs/{HUGE}/note", {"text": "x"}),
            (agent, "GET", f"/api/agent/handoffs/{HUGE}", None),
            (agent, "POST", f"/api/agent/handoffs/{MAX_ID + 1}/claim", {}),
            (agent, "GET", f"/api/agent/agents/{HUGE}", None),
            (admin, "POST", f"/api/agent/agents/{HUGE}/deactivate", {}),
            (admin, "POST", f"/api/agent/outbox/{HUGE}/retry", {}),
            (agent, "POST", f"/api/agent/return-calls/{HUGE}", {"outcome": "reached", "score": 5}),
            (agent, "GET", "/api/agent/handoffs/-1", None),
            (agent, "GET", "/api/agent/handoffs/0", None)):
        status, answer = who.call(method, path, body)
        assert status == 404 and "error" in answer, (method, path, status, answer)
    # the largest id a row can have is looked up, not refused
    assert agent.call("GET", f"/api/agent/handoffs/{MAX_ID}")[0] == 404


def test_ids_past_64_bits_in_a_body_are_bad_requests(gateway):  # noqa: F811
    agent, admin = client(gateway, prefix="amy"), client(gateway, "admin", "adm")
    handoff, _ = HandoffStore().open(conversation_id="web:ids", channel="web", user_id="ids",
                                     ticket_number=None, reason="request_human",
                                     agent_id=agent.me["id"])
    for who, path, body in (
            (agent, f"/api/agent/handoffs/{handoff.id}/transfer", {"agent_id": HUGE}),
            (agent, "/api/agent/tickets/KF2611270001/assign", {"agent_id": HUGE}),
            (agent, "/api/agent/sessions/revoke", {"session_id": HUGE}),
            (admin, "/api/admin/annotate", {"message_id": HUGE, "intent": "greet"})):
        status, answer = who.call("POST", path, body)
        assert status == 400, (path, status, answer)


def test_is_id():
    assert is_id(1) and is_id(MAX_ID)
    assert not any(is_id(v) for v in (0, -1, MAX_ID + 1, True, 1.0, "1", None))
