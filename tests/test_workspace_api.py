"""The workspace routes against the real gateway app (no Rasa needed): roles, masking, the
ticket lifecycle through its return call, the dashboard's charts and CSV (issue 15)."""
from __future__ import annotations

import urllib.request

import pytest
from cryptography.fernet import Fernet

from bot.gateway.ports import free_port
from bot.store.tickets import TicketStore
from tests.fakes import ThreadedServer
from tests.handoff_helpers import AgentClient, make_agent

NEW_ROUTES = [("GET", "/api/agent/tickets"), ("GET", "/api/agent/tickets/KF2611270001"),
              ("POST", "/api/agent/tickets/KF2611270001/status"),
              ("POST", "/api/agent/tickets/KF2611270001/assign"),
              ("POST", "/api/agent/tickets/KF2611270001/note"),
              ("GET", "/api/agent/return-calls"), ("POST", "/api/agent/return-calls/1"),
              ("GET", "/api/agent/reports/summary"), ("GET", "/api/agent/reports/chart.svg"),
              ("GET", "/api/agent/reports/export.csv")]


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/ws.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")
    monkeypatch.setenv("KEFU_DATA_KEY", Fernet.generate_key().decode())
    # the session's e2e stack puts its channel settings in os.environ: this app runs without them
    for name in ("KEFU_TELEGRAM_AGENT_TOKEN", "KEFU_WECOM_WEBHOOK", "KEFU_WECHAT_TOKEN",
                 "KEFU_TELEGRAM_TOKEN", "KEFU_WECOM_KF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    from bot.profile import privacy
    privacy._fernet.cache_clear()
    from bot.gateway.app import create_app
    from bot.settings import Settings

    server = ThreadedServer(create_app(Settings()), free_port()).start()
    yield server.url
    server.stop()
    privacy._fernet.cache_clear()


def client(url, role="agent", prefix="ag"):
    name, password = make_agent(prefix, role=role)
    return AgentClient(url).login(name, password)


def repair(phone="13812345678", key="r1"):
    ticket, _ = TicketStore().open_ticket(
        kind="repair", category="空调", description=f"空调不制冷，电话{phone}", customer_id="web:cust",
        channel="web", idempotency_key=key, phone=phone, address="上海市浦东新区世纪大道100号")
    return ticket.number


def test_every_new_route_refuses_anonymous_requests(gateway):
    anonymous = AgentClient(gateway)
    for method, path in NEW_ROUTES:
        status, _ = anonymous.call(method, path, {} if method == "POST" else None)
        assert status == 401, (method, path, status)


def test_agents_cannot_see_the_dashboard_leads_and_admins_can(gateway):
    agent, lead, admin = client(gateway), client(gateway, "lead", "lead"), client(gateway, "admin", "adm")
    for path in ("/api/agent/reports/summary", "/api/agent/reports/chart.svg?chart=csat",
                 "/api/agent/reports/export.csv?rows=tickets"):
        assert agent.call("GET", path)[0] == 403
    for who in (lead, admin):
        status, body = who.call("GET", "/api/agent/reports/summary?from=2026-11-21&to=2026-11-27")
        assert status == 200
        for key in ("conversations", "bot_resolved_rate", "handoff_rate", "first_response_p50_s",
                    "first_response_p90_s", "resolution_p50_s", "sla_attainment", "csat_counts",
                    "csat_response_rate", "return_calls", "definitions"):
            assert key in body
        assert set(body["csat_counts"]) == {"1", "2", "3", "4", "5"}
        assert set(body["return_calls"]) == {"due", "done", "unreachable"}
    assert lead.call("GET", "/api/agent/reports/summary?from=2026-11-28&to=2026-11-01")[0] == 400
    assert lead.call("GET", "/api/agent/reports/summary?from=yesterday")[0] == 400


def test_masked_for_everyone_but_the_assignee(gateway):
    number = repair()
    amy, bob = client(gateway, prefix="amy"), client(gateway, prefix="bob")
    status, found = bob.call("GET", "/api/agent/tickets?q=5678")
    assert status == 200 and [t["number"] for t in found["tickets"]] == [number]
    assert found["tickets"][0]["phone"] == "138****5678"
    assert amy.call("POST", f"/api/agent/tickets/{number}/assign", {"agent_id": amy.me["id"]})[0] == 200
    # bob: another agent's ticket stays masked (phone, address, transcript, description)
    _, seen = bob.call("GET", f"/api/agent/tickets/{number}")
    t = seen["ticket"]
    assert t["phone"] == "138****5678" and "世纪大道100号" not in (t["address"] or "")
    assert "13812345678" not in str(t)
    assert bob.call("POST", f"/api/agent/tickets/{number}/assign", {"agent_id": bob.me["id"]})[0] == 403
    assert bob.call("POST", f"/api/agent/tickets/{number}/status", {"status": "in_progress"})[0] == 403
    _, mine = amy.call("GET", f"/api/agent/tickets/{number}")
    assert mine["ticket"]["phone"] == "13812345678" and mine["ticket"]["own"]
    _, listed = amy.call("GET", "/api/agent/tickets?assignee=me")
    assert listed["tickets"][0]["phone"] == "13812345678"
    assert amy.call("GET", "/api/agent/tickets?q=13812345678")[1]["total"] == 1
    assert amy.call("GET", "/api/agent/tickets?q=0000")[1]["total"] == 0
    for bad in ("status=nope", "sla=late", "page=x", "from=2026-13-01", "assignee=someone"):
        assert amy.call("GET", f"/api/agent/tickets?{bad}")[0] == 400, bad


def test_a_repair_closes_through_its_return_call(gateway):
    number = repair(key="r2")
    amy, lead = client(gateway, prefix="amy"), client(gateway, "lead", "lead")
    amy.call("POST", f"/api/agent/tickets/{number}/assign", {"agent_id": amy.me["id"]})
    for status in ("acknowledged", "in_progress", "waiting", "in_progress", "resolved"):
        code, body = amy.call("POST", f"/api/agent/tickets/{number}/status", {"status": status})
        assert code == 200 and body["ticket"]["status"] == status
    _, page = amy.call("GET", f"/api/agent/tickets/{number}")
    assert page["ticket"]["clocks"]["first_response"]["state"] == "hit"
    assert page["ticket"]["clocks"]["resolution"]["state"] == "hit"
    # closing asks for the 回访 first: still resolved, the call is due
    code, body = amy.call("POST", f"/api/agent/tickets/{number}/status", {"status": "closed"})
    assert code == 200 and body["ticket"]["status"] == "resolved"
    _, queue = amy.call("GET", "/api/agent/return-calls")
    [call] = [c for c in queue["return_calls"] if c["ticket"] == number]
    assert call["phone"] == "13812345678"                   # the assignee calls the customer
    _, others = client(gateway, prefix="cat").call("GET", "/api/agent/return-calls")
    assert all(c["ticket"] != number for c in others["return_calls"])
    assert amy.call("POST", f"/api/agent/return-calls/{call['id']}", {"outcome": "reached"})[0] == 400
    code, done = amy.call("POST", f"/api/agent/return-calls/{call['id']}",
                          {"outcome": "reached", "score": 5, "comment": "已修好"})
    assert code == 200 and done["return_call"]["status"] == "done"
    assert TicketStore().find(number).status == "closed"
    assert amy.call("POST", f"/api/agent/return-calls/{call['id']}",
                    {"outcome": "reached", "score": 4})[0] == 409
    # the bot asked the web customer too (a pushed line in the transcript)
    _, page = amy.call("GET", f"/api/agent/tickets/{number}")
    assert any("请为本次服务打分" in line["text"] for line in page["ticket"]["transcript"])
    _, s = lead.call("GET", "/api/agent/reports/summary?from=2026-11-27&to=2026-11-27")
    assert s["return_calls"]["done"] == 1 and s["csat_counts"]["5"] == 1
    assert s["csat_by_source"]["return_call"]["5"] == 1
    with urllib.request.build_opener(urllib.request.HTTPCookieProcessor(lead.jar)).open(
            f"{gateway}/api/agent/reports/chart.svg?chart=return_calls&from=2026-11-27&to=2026-11-27") as resp:
        svg = resp.read().decode()
        assert resp.headers["Content-Type"].startswith("image/svg+xml")
    assert svg.startswith("<svg") and "已完成 回访数: 1" in svg
    with urllib.request.build_opener(urllib.request.HTTPCookieProcessor(lead.jar)).open(
            f"{gateway}/api/agent/reports/export.csv?rows=tickets&from=2026-11-27&to=2026-11-27") as resp:
        csv = resp.read().decode("utf-8-sig")
    assert number in csv and "13812345678" not in csv and csv.startswith("number,kind")
