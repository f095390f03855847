"""Whole conversations through the gateway, against a really trained model.

Each test is a customer in the web chat; assertions read the replies and the ticket
rows the actions wrote to the database.
"""
import datetime as dt

import pytest
from sqlalchemy import select

from bot.profile import business as profile
from bot.store.engine import get_engine
from bot.store.schema import Ticket
from bot.store.tickets import TicketStore

pytestmark = pytest.mark.e2e


def tickets_of(customer):
    return TicketStore().for_customer(customer.conversation_id, open_only=False)


def test_healthz_reports_ready(assistant):
    import urllib.request
    import json
    with urllib.request.urlopen(assistant.url + "/healthz") as resp:
        body = json.load(resp)
    assert resp.status == 200 and body == {"rasa_model_loaded": True, "action_server": True}


def test_faq_answer_states_the_profile_fact(customer):
    facts = profile.load_profile()
    reply = customer.say("买的东西几天之内可以退货啊？")
    assert f"{facts['returns']['no_reason_days']}天" in reply
    reply = customer.say("运费怎么算的")
    assert f"{facts['shipping']['free_over_yuan']}元" in reply


def test_complaint_becomes_a_ticket(customer):
    reply = customer.say("快递员态度太差了，还把我的冰箱磕坏了，我要投诉")
    assert "订单号" in reply                       # category and description taken from the message
    assert "手机号" in customer.say("DD202611200088")
    assert "不对" in customer.say("12345")          # a wrong phone is asked again, not stored
    reply = customer.say("138 1234 5678")
    [ticket] = tickets_of(customer)
    assert ticket.number in reply and "24 小时" in reply
    assert ticket.kind == "complaint" and ticket.category == "物流配送"
    assert ticket.order_id == "DD202611200088" and ticket.phone == "138****5678"
    assert ticket.channel == "web" and ticket.priority == "normal"
    assert ticket.sla_due_at - ticket.created_at == dt.timedelta(hours=24)
    with get_engine().connect() as conn:
        raw = conn.execute(select(Ticket.phone_encrypted).where(Ticket.number == ticket.number)).scalar_one()
    assert "13812345678" not in raw

    reply = customer.say("我的投诉处理到哪一步了")
    assert ticket.number in reply and "已受理" in reply
    reply = customer.say(f"帮我查下工单{ticket.number}")
    assert ticket.number in reply


def test_urgent_repair_gets_two_hour_promise(customer):
    customer.say("我要报修")
    customer.say("热水器")
    assert "地址" in customer.say("燃气热水器一直有漏气的味道")
    assert "地址" in customer.say("在家")            # too vague: asked again
    assert "手机号" in customer.say("上海市浦东新区世纪大道100号3栋502")
    reply = customer.say("13900112233")
    [ticket] = tickets_of(customer)
    assert ticket.kind == "repair" and ticket.priority == "urgent" and ticket.product == "热水器"
    assert ticket.sla_due_at - ticket.created_at == dt.timedelta(hours=2)
    assert ticket.number in reply and "2 小时" in reply
    assert ticket.address.endswith("****") and "世纪大道100号" not in ticket.address


def test_normal_repair_gets_contact_promise(customer):
    customer.say("洗衣机不脱水了，麻烦派个师傅上门修一下")
    customer.say("北京市朝阳区建国路88号1单元302")
    reply = customer.say("18612345678")
    [ticket] = tickets_of(customer)
    assert ticket.priority == "normal" and ticket.product == "洗衣机"
    assert ticket.sla_due_at - ticket.created_at == dt.timedelta(hours=24) and "24 小时" in reply


def test_return_outside_window_is_told_so(customer):
    facts = profile.load_profile()["returns"]
    customer.say("我要退货")
    customer.say("DD202610010001")
    customer.say("尺寸不合适")
    reply = customer.say("20天前")
    assert "超过" in reply and f"{facts['no_reason_days']} 天" in reply
    assert tickets_of(customer) == []


def test_return_inside_window_is_filed(customer):
    customer.say("申请退货，订单号202611250001234，电话13912345678")   # a return needs a contact
    customer.say("尺寸不合适")
    reply = customer.say("3天前")
    [ticket] = tickets_of(customer)
    assert ticket.kind == "return" and ticket.order_id == "202611250001234"
    assert ticket.number in reply


def test_stop_abandons_the_form(customer):
    assert "哪方面" in customer.say("我要投诉")
    assert "取消" in customer.say("算了不投诉了")
    assert tickets_of(customer) == []
    assert "哪方面" in customer.say("我要投诉")       # starts over: nothing kept from before


def test_faq_inside_a_form_is_answered_and_the_form_resumes(customer):
    customer.say("我要报修")
    reply = customer.say("保修期是多久？")
    assert f"{profile.load_profile()['warranty']['years']}年" in reply
    assert "哪件商品" in reply


def test_unknown_ticket_number(customer):
    # another conversation's number (or none at all) gets the same answer: the check a real
    # service asks for, the phone's last 4 digits, never whether the number exists
    reply = customer.say("查一下KF0000000000的进度")
    assert "后4位" in reply and "没有找到" not in reply


def test_human_request_in_hours_queues_without_a_ticket(customer):
    from bot.store.handoffs import HandoffStore

    reply = customer.say("转人工")
    assert "人工" in reply and "KF" not in reply
    assert tickets_of(customer) == []          # the record is opened when an agent takes it
    assert HandoffStore().active(customer.conversation_id).status == "queued"


def test_a_call_back_asked_for_in_hours_is_booked_not_queued(customer):
    from bot.store.handoffs import HandoffStore

    reply = customer.say("不用排队了，请客服回电给我，电话 139 1234 5678")
    [ticket] = tickets_of(customer)
    assert ticket.kind == "callback" and ticket.number in reply and "回电" in reply
    assert ticket.phone.endswith("5678")
    assert HandoffStore().active(customer.conversation_id) is None
