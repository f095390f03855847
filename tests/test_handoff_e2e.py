"""Human handoff through the running stack: queue, relay, claim, reply, close, rating;
the agents' Telegram group against a fake Bot API; access control; a gateway restart.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from bot.store.agents import AgentStore
from bot.store.handoffs import HandoffStore
from bot.gateway.launch import Stack
from bot.profile.business import PROJECT_ROOT
from bot.store.tickets import TicketStore
from bot.store.transcripts import TranscriptStore
from tests.conftest import Customer, free_port
from tests.handoff_helpers import (AgentClient, make_agent, wait_for_update, wait_until)

pytestmark = pytest.mark.e2e


def ask_for_human(customer: Customer) -> None:
    reply = customer.say("转人工")
    assert "人工" in reply


def test_handoff_relay_close_and_rating(assistant, customer):
    ask_for_human(customer)
    queued = wait_for_update(assistant.url, customer.sender, lambda m: "排在第" in m["text"])
    assert queued["author"] == "notice"
    # earlier tests in the shared stack may have left customers waiting: the place is theirs
    place = re.search(r"排在第 (\d+) 位", queued["text"]).group(0)
    agent = AgentClient(assistant.url).login(*make_agent("amy"))
    handoff = agent.handoff_for(customer.conversation_id)
    # only queued: no ticket yet (a customer who gives up waiting leaves none behind)
    assert handoff["status"] == "queued" and handoff["ticket_number"] is None

    # while a person has it, the bot is out of the conversation: the customer's line is only
    # acknowledged with the queue position (never silence, never a bot answer)
    ack = customer.say("我的冰箱门关不上，能帮我看看吗")
    assert place in ack and all(m["author"] != "bot" for m in customer.last)
    status, body = agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/claim", {})
    assert status == 200 and body["handoff"]["status"] == "claimed"
    handoff = body["handoff"]           # taken by a person: its record is opened, assigned to amy
    assert handoff["ticket_number"] and TicketStore().find(handoff["ticket_number"]).kind == "callback"
    status, detail = agent.call("GET", f"/api/agent/handoffs/{handoff['id']}")
    authors = [line["author"] for line in detail["transcript"]]
    assert "bot" in authors and "customer" in authors           # the bot's turns are there too
    assert any("冰箱门" in line["text"] for line in detail["transcript"])
    assert detail["ticket"]["number"] == handoff["ticket_number"]

    status, _ = agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/reply",
                           {"text": "您好，我是客服小艾，马上帮您处理。"})
    assert status == 200
    reply = wait_for_update(assistant.url, customer.sender, lambda m: m["author"] == "agent")
    assert "客服小艾" in reply["text"]

    status, _ = agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/note", {"text": "门封条变形"})
    assert status == 200
    status, _ = agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/close", {})
    assert status == 200
    wait_for_update(assistant.url, customer.sender, lambda m: "打分" in m["text"])
    answer = customer.say("5分")
    ticket = TicketStore().find(handoff["ticket_number"])
    assert ticket.rating == 5, answer
    assert any(e["kind"] == "note" and e["note"] == "门封条变形" for e in ticket.events)
    assert HandoffStore().active(customer.conversation_id) is None
    # the bot answers again
    assert customer.say("运费怎么算") != ""


def test_an_agent_cannot_read_another_agents_or_an_admins_data(assistant, customer):
    ask_for_human(customer)
    admin = AgentClient(assistant.url).login(*make_agent("boss", "admin"))
    amy = AgentClient(assistant.url).login(*make_agent("amy"))
    bob = AgentClient(assistant.url).login(*make_agent("bob"))
    handoff = amy.handoff_for(customer.conversation_id)
    customer.say("我的电话是13812345678")
    assert amy.call("POST", f"/api/agent/handoffs/{handoff['id']}/claim", {})[0] == 200

    # queued → visible to all (masked); claimed by Amy → Bob is refused, Amy sees it in clear
    assert bob.call("GET", f"/api/agent/handoffs/{handoff['id']}")[0] == 403
    assert bob.call("POST", f"/api/agent/handoffs/{handoff['id']}/reply", {"text": "x"})[0] == 403
    assert bob.call("POST", f"/api/agent/handoffs/{handoff['id']}/close", {})[0] == 403
    assert bob.call("POST", f"/api/agent/handoffs/{handoff['id']}/claim", {})[0] == 403
    assert all(h["id"] != handoff["id"] for h in bob.call("GET", "/api/agent/handoffs")[1]["handoffs"])
    _, mine = amy.call("GET", f"/api/agent/handoffs/{handoff['id']}")
    assert any("13812345678" in line["text"] for line in mine["transcript"])
    _, admins = admin.call("GET", f"/api/agent/handoffs/{handoff['id']}")
    assert not any("13812345678" in line["text"] for line in admins["transcript"])
    assert any("138****5678" in line["text"] for line in admins["transcript"])

    # accounts and reports: one's own only; the admin's data is the admin's
    assert bob.call("GET", f"/api/agent/agents/{amy.me['id']}")[0] == 403
    assert bob.call("GET", f"/api/agent/agents/{admin.me['id']}")[0] == 403
    assert bob.call("GET", f"/api/agent/agents/{bob.me['id']}")[0] == 200
    assert bob.call("GET", "/api/agent/reports")[0] == 403
    assert bob.call("POST", "/api/agent/agents", {"name": "mallory", "password": "x" * 12,
                                                  "role": "admin"})[0] == 403
    assert admin.call("GET", "/api/agent/reports")[0] == 200
    # an admin's own conversation is not an agent's either
    customer2 = Customer(assistant.url, customer.sender + "-2")
    ask_for_human(customer2)
    other = admin.handoff_for(customer2.conversation_id)
    assert admin.call("POST", f"/api/agent/handoffs/{other['id']}/claim", {})[0] == 200
    assert bob.call("GET", f"/api/agent/handoffs/{other['id']}")[0] == 403
    # signed out: nothing
    assert bob.call("POST", "/api/agent/logout", {})[0] == 200
    assert bob.call("GET", "/api/agent/handoffs")[0] == 401
    # JSON only (a cross-site form cannot post)
    assert AgentClient(assistant.url).call("GET", "/api/agent/me")[0] == 401
    for client in (amy, admin):
        for h in (handoff, other):
            client.call("POST", f"/api/agent/handoffs/{h['id']}/close", {})


def test_telegram_agents_group(assistant, customer, telegram_agents_api):
    api = telegram_agents_api
    ask_for_human(customer)
    handoff = HandoffStore().active(customer.conversation_id)
    card = api.wait_for(lambda m: f"#{handoff.id}" in m["text"] and m.get("reply_markup"))
    assert "claim" in str(card["reply_markup"])

    # only a Telegram user an admin linked to an active agent may claim (issue 18, item 8)
    stranger = api.user(7002, "路人")
    answers = len(api.answers)
    api.press(stranger, card, f"claim:{handoff.id}")
    wait_until(lambda: len(api.answers) > answers, what="the stranger's answer")
    assert "未关联" in api.answers[-1]["text"]
    assert HandoffStore().get(handoff.id).status == "queued"
    name, _ = make_agent("wang")
    AgentStore().link_telegram(AgentStore().by_name(name).id, "7001")
    agent = api.user(7001, "王客服")
    api.press(agent, card, f"claim:{handoff.id}")
    wait_until(lambda: HandoffStore().get(handoff.id).status == "claimed", what="claim")
    # claimed in Telegram → claimed everywhere: the console cannot take it
    console = AgentClient(assistant.url).login(*make_agent("carl"))
    assert console.call("POST", f"/api/agent/handoffs/{handoff.id}/claim", {})[0] == 403

    customer.say("订单DD202611200088还没到")
    relayed = api.wait_for(lambda m: "还没到" in m["text"])
    assert "DD202611200088" not in relayed["text"]        # the group is shared: order numbers masked
    assert relayed["reply_to"] == card["message"]["message_id"]

    api.reply(agent, relayed, "您好，我帮您催一下快递")
    wait_for_update(assistant.url, customer.sender, lambda m: "催一下快递" in m["text"])
    lines = TranscriptStore().transcript(customer.conversation_id)
    assert any(l["author"] == "agent" and "催一下快递" in l["text"] for l in lines)

    # Telegram unreachable: the customer's messages wait in the outbox, then arrive in order
    api.stop()
    try:
        customer.say("还有一个问题：发票怎么开")
        customer.say("麻烦开公司抬头")
    finally:
        api.start()
    first = api.wait_for(lambda m: "发票怎么开" in m["text"])
    second = api.wait_for(lambda m: "公司抬头" in m["text"])
    assert first["message"]["message_id"] < second["message"]["message_id"]

    api.reply(agent, card, "/close")
    wait_for_update(assistant.url, customer.sender, lambda m: "打分" in m["text"])
    assert HandoffStore().get(handoff.id).status == "closed"
    log = (assistant.log_dir / "gateway.log").read_text(encoding="utf-8")
    assert os.environ["KEFU_TELEGRAM_AGENT_TOKEN"] not in log


def test_an_agent_takes_over_from_the_bot_and_transfers(assistant, customer):
    customer.say("你好")
    amy = AgentClient(assistant.url).login(*make_agent("amy"))
    bob = AgentClient(assistant.url).login(*make_agent("bob"))
    status, body = amy.call("POST", "/api/agent/takeover",
                            {"conversation_id": customer.conversation_id})
    assert status == 200 and body["handoff"]["status"] == "claimed"
    handoff = body["handoff"]
    wait_for_update(assistant.url, customer.sender, lambda m: "已接入" in m["text"])
    assert customer.say("运费怎么算") == ""                     # the bot stays out now
    assert amy.call("POST", "/api/agent/takeover",
                    {"conversation_id": customer.conversation_id})[0] == 409
    status, _ = amy.call("POST", f"/api/agent/handoffs/{handoff['id']}/transfer",
                         {"agent_id": bob.me["id"]})
    assert status == 200
    assert amy.call("GET", f"/api/agent/handoffs/{handoff['id']}")[0] == 403
    assert bob.call("POST", f"/api/agent/handoffs/{handoff['id']}/reply", {"text": "我来跟进"})[0] == 200
    wait_for_update(assistant.url, customer.sender, lambda m: m["text"] == "我来跟进")
    assert bob.call("POST", f"/api/agent/handoffs/{handoff['id']}/close", {})[0] == 200


def _gateway(stack: Stack, port: int, log) -> subprocess.Popen:
    token = stack.token            # Rasa takes it from its environment, never its command line
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), KEFU_PORT=str(port),
               KEFU_RASA_TOKEN=token, KEFU_RASA_URL=f"http://127.0.0.1:{stack.rasa_port}",
               KEFU_ACTION_URL=f"http://127.0.0.1:{stack.action_port}")
    env.pop("KEFU_TELEGRAM_AGENT_TOKEN", None)    # the main gateway owns the Telegram group
    return subprocess.Popen([sys.executable, "-m", "bot.gateway.app"], cwd=PROJECT_ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _healthy(url: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_gateway_restart_in_the_middle_of_a_handoff(assistant, tmp_path):
    """A second gateway process is stopped mid-handoff and a new one takes over."""
    log = open(tmp_path / "gateway-restart.log", "ab")
    port = free_port()
    first = _gateway(assistant, port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(url), 120, "the extra gateway")
        customer = Customer(url, "t-restart")
        ask_for_human(customer)
        agent = AgentClient(url).login(*make_agent("rita"))
        handoff = agent.handoff_for(customer.conversation_id)
        assert agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/claim", {})[0] == 200
        customer.say("重启前的消息")
    finally:
        os.killpg(first.pid, signal.SIGKILL)              # no graceful shutdown
        first.wait(30)

    second = _gateway(assistant, port, log)
    try:
        wait_until(lambda: _healthy(url), 120, "the restarted gateway")
        customer.say("重启后的消息")
        # the same cookie still works: sessions live in SQL, not in the process
        _, detail = agent.call("GET", f"/api/agent/handoffs/{handoff['id']}")
        assert detail["handoff"]["status"] == "claimed" and detail["own"]
        texts = [line["text"] for line in detail["transcript"]]
        assert "重启前的消息" in texts and "重启后的消息" in texts
        assert agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/reply",
                          {"text": "重启后仍由我为您服务"})[0] == 200
        wait_for_update(url, customer.sender, lambda m: "重启后仍由我" in m["text"])
        agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/close", {})
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(30)
