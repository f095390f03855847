"""The listening forms' validators (actions/listening.py), run as Rasa's action server runs them."""
import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import ValidateReturnForm


@pytest.fixture(autouse=True)
def shop_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/forms.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")


def validate(form, slots, text, intent="inform", entities=()):
    tracker = Tracker("web:x", slots, {"text": text, "intent": {"name": intent}, "entities": list(entities)},
                      [], False, None, {"name": form.form}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(form.run(dispatcher, tracker, {}))
    return {e["name"]: e["value"] for e in events}, [m.get("text") for m in dispatcher.messages]


RETURN = dict(order_id="DD889102736455", return_type="return", return_reason=None,
              days_since_receipt=None, phone=None, requested_slot="return_reason", form_tries={})


@pytest.mark.parametrize("text, order", [("错了 DD889102736456", "DD889102736456"),
                                         ("不对，应该是 390184726615", "390184726615")])
def test_a_correction_alone_is_no_answer_to_the_question_asked(text, order):
    slots, said = validate(ValidateReturnForm(), RETURN, text)
    assert slots["order_id"].upper() == order
    assert "return_reason" not in slots                 # the reason is asked again
    assert slots["form_tries"] == {}                    # and the correction is no failed try
    assert said == []


def test_a_correction_with_a_reason_gives_both():
    slots, _ = validate(ValidateReturnForm(), RETURN, "订单号错了 DD889102736456，尺寸不合适")
    assert slots["order_id"].upper() == "DD889102736456"
    assert "尺寸不合适" in slots["return_reason"]


COMPLAINT = dict(complaint_category="服务态度", complaint_description="客服态度太差了", order_id=None,
                 phone=None, requested_slot="phone", form_tries={})


def test_a_complaint_takes_an_order_number_given_instead_of_the_phone_and_asks_again():
    from actions.forms import ValidateComplaintForm
    slots, said = validate(ValidateComplaintForm(), COMPLAINT, "DD202611200088")
    assert slots["order_id"] == "DD202611200088" and "phone" not in slots
    assert slots["form_tries"] == {}                    # other details given: no failed try
    assert said and "订单号" in said[0]


def test_a_complaint_accepts_a_refusal_to_leave_a_phone():
    from actions.forms import ValidateComplaintForm
    slots, said = validate(ValidateComplaintForm(), COMPLAINT, "不给！就是不给！", intent="deny")
    assert slots["phone"] == "无" and "客服" in said[0]


def test_why_a_phone_is_answered_not_counted_as_a_try():
    from actions.forms import ValidateComplaintForm
    slots, said = validate(ValidateComplaintForm(), COMPLAINT, "凭什么给你电话？", intent="out_of_scope")
    assert "phone" not in slots and slots["form_tries"] == {}
    assert "加密" in said[0]


def test_a_return_started_with_its_details_takes_them_all():
    start = dict(RETURN, order_id=None, return_type=None, requested_slot=None)
    slots, _ = validate(ValidateReturnForm(), start, "你们发的冰箱门是歪的！给我换一台！订单号找不到了，三天前到的")
    assert slots["return_type"] == "exchange" and "歪" in slots["return_reason"]
    assert slots["order_id"] == "无" and slots["days_since_receipt"] == 3.0


def test_a_return_reason_keeps_no_phone():
    slots, _ = validate(ValidateReturnForm(), RETURN, "电话15200001212，昨天收到的，不想要了")
    assert slots["phone"] == "15200001212"
    assert "15200001212" not in slots["return_reason"] and "不想要" in slots["return_reason"]


def test_a_repair_takes_an_english_product_and_a_short_fault():
    from actions.forms import ValidateRepairForm
    start = dict(product=None, fault_description=None, address=None, phone=None, requested_slot=None, form_tries={})
    slots, _ = validate(ValidateRepairForm(), start, "my fridge 黑屏 浦东新区世纪大道100号2201 13800004321")
    assert slots["product"] == "冰箱" and "黑屏" in slots["fault_description"]
    assert slots["phone"] == "13800004321" and "世纪大道100号" in slots["address"]


def test_an_address_alone_is_no_fault_description():
    from actions.forms import ValidateRepairForm
    asked = dict(product="热水器", fault_description=None, address=None, phone=None,
                 requested_slot="fault_description", form_tries={})
    slots, _ = validate(ValidateRepairForm(), asked, "东城区东直门外大街42号5号楼601")
    assert "fault_description" not in slots and "东直门外大街" in slots["address"]
    assert slots["form_tries"] == {}


@pytest.mark.parametrize("text,wants", [
    ("你们晚上有人吗我要人工服务", True), ("几点有人工？帮我转人工", True), ("我不要机器人，我要人工", True),
    ("人工客服回消息一般要多久呀 问问而已 不用转", False), ("人工客服几点上班", False),
    ("不用转人工，我就问下运费", False),
])
def test_a_policy_question_that_also_asks_for_a_person(text, wants):
    from actions.service import wants_person
    assert wants_person(text) is wants


def test_more_about_the_problem_while_the_phone_is_asked_is_added_to_the_description():
    from actions.forms import ValidateComplaintForm
    slots, said = validate(ValidateComplaintForm(), COMPLAINT, "师傅态度很差还骂人，东西也没装好")
    assert slots["complaint_description"].startswith("客服态度太差了；") and "骂人" in slots["complaint_description"]
    assert "phone" not in slots and slots["form_tries"] == {} and "问题描述" in said[0]


def _after_ticket(ticket_store, monkeypatch, owner, text):
    import actions.dialogue as dialogue
    monkeypatch.setattr(dialogue, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="repair", category="空调", description="不制冷", customer_id=owner,
                                         channel="web", idempotency_key=f"{owner}:1")
    events = [{"event": "user", "text": "空调不制冷"}, {"event": "bot", "text": f"报修已登记，工单号 {ticket.number}。"},
              {"event": "user", "text": text}]
    tracker = Tracker("web:x", {}, {"text": text, "intent": {"name": "inform"}, "entities": []},
                      events, False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    dialogue.RouteDetail().run(dispatcher, tracker, {})
    return ticket, dispatcher.messages[0].get("text") or dispatcher.messages[0].get("response")


def test_a_line_after_the_customers_own_ticket_is_kept_on_it(ticket_store, monkeypatch):
    from bot.store.schema import TicketEvent
    from sqlalchemy import select
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", "师傅下午来就行，电话13800001111也能打")
    assert ticket.number in said and "补充" in said
    with ticket_store.engine.connect() as conn:
        notes = conn.execute(select(TicketEvent.note).where(TicketEvent.kind == "note")).scalars().all()
    assert any("下午" in n and "13800001111" not in n for n in notes)


def test_a_ticket_only_looked_up_takes_no_note(ticket_store, monkeypatch):
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:someone-else", "师傅下午来就行")
    assert ticket.number not in (said or "")


@pytest.mark.parametrize("text,last4", [("我电话是 158 0076 2243 你们明天打给我", "2243"),
                                        ("my number is 139-8765-4321", "4321"), ("13912345678", "5678")])
def test_a_phone_given_after_the_ticket_was_filed_is_the_number_to_call(ticket_store, monkeypatch, text, last4):
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", text)
    found = ticket_store.find(ticket.number)
    assert found.phone.endswith(last4) and found.phone != ticket.phone
    assert f"****{last4}" in said and "联系您" in said
    notes = [e["note"] for e in found.events if e["kind"] == "note"]
    assert notes and all("****" in n for n in notes)                    # never in clear
    assert len(notes) == (2 if "明天" in text else 1)         # more than a phone: also a note


def test_a_returned_item_is_kept_on_the_return_ticket():
    from actions.forms import ValidateReturnForm
    slots, _ = validate(ValidateReturnForm(), {**RETURN, "order_id": None}, "我要退货，电视买来屏幕有坏点",
                        entities=[{"entity": "product", "value": "电视", "start": 5, "end": 7}])
    assert slots.get("product") == "电视"
    from actions.tickets import RETURN_SLOTS
    assert "product" in RETURN_SLOTS                    # reset after filing: never a stale item
