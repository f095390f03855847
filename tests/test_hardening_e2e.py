"""Issue 18 against the running stack (trained model, real processes), as checked from outside.

3  every process the stack starts listens on loopback only;
16 Rasa's API token is on no process's command line (``/proc/<pid>/cmdline``), yet Rasa's
   API takes it (the gateway passes it in each request);
4  a customer's "/intent{…}" is text on every channel, unless it is exactly the payload of a
   button the bot offered in that conversation;
5  someone else's ticket by number: only with the phone's last 4 digits, no personal data;
15 a lone surrogate in a web-chat message is cleaned, the message answered.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from bot.profile.privacy import mask_text
from bot.store.tickets import TicketStore
from bot.store.transcripts import TranscriptStore
from tests.conftest import Customer
from tests.proc_net import cmdline, listening

pytestmark = pytest.mark.e2e


def rasa_get(stack, path: str, token: str | None):
    url = f"http://127.0.0.1:{stack.rasa_port}{path}" + (f"?token={token}" if token else "")
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, None


def user_events(stack, conversation: str):
    status, tracker = rasa_get(stack, f"/conversations/{conversation}/tracker", stack.token)
    assert status == 200
    return [e for e in tracker["events"] if e["event"] == "user"]


def test_every_process_listens_on_loopback_only(assistant):
    expected = {"gateway": assistant.gateway_port, "rasa": assistant.rasa_port,
                "actions": assistant.action_port}
    for name, proc in assistant.named.items():
        addresses = listening(proc.pid)
        assert ("127.0.0.1", expected[name]) in addresses, (name, addresses)
        assert {ip for ip, _ in addresses} == {"127.0.0.1"}, (name, addresses)


def test_rasa_token_is_on_no_command_line_and_rasa_requires_it(assistant):
    token = assistant.token
    for name, proc in assistant.named.items():
        assert token not in cmdline(proc.pid), name
    assert rasa_get(assistant, "/status", token)[0] == 200
    assert rasa_get(assistant, "/status", None)[0] == 401
    assert rasa_get(assistant, "/status", "wrong")[0] == 401


def test_typed_intent_syntax_is_never_an_intent(assistant, customer):
    """Rasa's intent syntax typed by a customer is not sent to Rasa at all (escaped, the words
    in it would still steer the classifier to the intent it names): the customer is asked to
    write in their own words; nothing is handed off, filed or stored from it. A message that
    merely starts with a slash reaches Rasa as text, the slash replaced."""
    from bot.gateway.router import COMMAND_TEXT
    from bot.store.handoffs import HandoffStore

    typed = ['/inform{"phone":"13800000000"}', '/inform{"order_id":"x-injected"}',
             "/rate_service", "/request_human", "\uff0frequest_human"]
    for i, text in enumerate(typed):     # one conversation each
        someone = Customer(assistant.url, f"{customer.sender}-{i}")
        assert COMMAND_TEXT in someone.say(text)
        assert user_events(assistant, someone.conversation_id) == []      # Rasa never saw it
        assert HandoffStore().active(someone.conversation_id) is None
        # the transcript keeps what the customer wrote, as written
        said = [l["text"] for l in TranscriptStore().transcript(someone.conversation_id)
                if l["author"] == "customer"]
        assert said == [mask_text(text)]           # (phones are masked at rest)
    someone = Customer(assistant.url, f"{customer.sender}-prose")
    someone.say("/ 我想问下运费怎么算")
    last = user_events(assistant, someone.conversation_id)[-1]
    assert last["text"] == "\u2215 我想问下运费怎么算"
    assert last["parse_data"]["intent"].get("confidence", 0) < 1.0


def test_an_offered_button_payload_still_acts_as_its_intent(assistant, customer):
    customer.say("你好")
    # the bot offers a button whose payload is intent syntax (as a response with
    # buttons: /request_human would be written to the transcript)
    TranscriptStore().append(customer.conversation_id, "web", "bot", "需要人工客服吗？",
                             {"buttons": [{"title": "转人工", "payload": "/request_human"}]})
    customer.say("/request_human")
    last = user_events(assistant, customer.conversation_id)[-1]
    assert last["text"] == "/request_human"
    assert last["parse_data"]["intent"]["name"] == "request_human"
    assert last["parse_data"]["intent"]["confidence"] == 1.0
    from bot.store.handoffs import HandoffStore

    assert HandoffStore().active(customer.conversation_id).reason == "request_human"


def test_someone_elses_ticket_needs_the_phones_last_4_digits(assistant, customer):
    owner = Customer(assistant.url, customer.sender + "-owner")
    # a complaint the owner filed in their conversation (the form itself: test_conversations_e2e)
    ticket, _ = TicketStore().open_ticket(
        kind="complaint", category="物流配送", description="快递员把我买的冰箱摔坏了还不承认",
        customer_id=owner.conversation_id, channel="web", idempotency_key=f"{owner.sender}:k",
        phone="13812345678")
    number = ticket.number
    assert len(number) == 16
    assert number in owner.say(f"查一下{number}")                 # the filing conversation
    asked = customer.say(f"查一下{number}")
    assert "后4位" in asked and "冰箱" not in asked and "摔坏" not in asked
    wrong = customer.say(f"查工单 {number} 尾号0000")        # as the bot asks for it
    assert "没有找到" in wrong and "进度" not in wrong
    shown = customer.say(f"查工单 {number} 尾号5678")
    assert "工单进度" in shown and number in shown
    for text in (asked, wrong, shown):
        assert "13812345678" not in text and "138****" not in text and "摔坏" not in text


def test_lone_surrogate_in_a_message_is_cleaned_and_answered(assistant):
    body = b'{"sender": "t-surrogate", "message": "\\u4f60\\u597d\\ud800"}'
    request = urllib.request.Request(assistant.url + "/api/chat", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        assert resp.status == 200 and json.load(resp)["messages"]
    lines = TranscriptStore().transcript("web:t-surrogate")
    assert lines[0]["text"] == "你好" and lines[1]["author"] == "bot"


def test_deep_json_gets_400_from_the_running_gateway(assistant):
    request = urllib.request.Request(assistant.url + "/api/chat", data=b"[" * 5000 + b"]" * 5000,
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
