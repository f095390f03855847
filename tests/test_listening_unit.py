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
    ("好的，那麻烦安排人工明天回电给我，号码是 133 2190 5586", True), ("让客服给我回个电话", True),
    ("不用让客服打给我", False),
    # where is the person? said on its own
    ("人呢？？", True), ("客服呢", True), ("你们人都去哪了！", True), ("人呢是什么意思", False),
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


# --- after filing: a line that vents or adds to the ticket is kept on it, no new complaint -----
def _complaint_started(ticket_store, monkeypatch, text, kind="complaint", category="服务态度", order_id=None):
    import actions.dialogue as dialogue
    from actions.forms import ValidateComplaintForm
    monkeypatch.setattr(dialogue, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind=kind, category=category, description="送货师傅把门框撞坏了",
                                         customer_id="web:x", channel="web", idempotency_key="web:x:c",
                                         order_id=order_id)
    events = [_user("送货师傅把门框撞坏了 还骂人", "complain"), _bot(f"您的投诉已登记，工单号 {ticket.number}。")]
    found, said = start(ValidateComplaintForm(), events, text, intent="complain")
    return ticket_store.find(ticket.number), found, said


@pytest.mark.parametrize("text", ["什么破服务 给你们打一星！", "真是服了你们了，太差劲了", "垃圾服务 差评差评"])
def test_venting_right_after_a_complaint_is_a_note_with_an_apology(ticket_store, monkeypatch, text):
    ticket, found, said = _complaint_started(ticket_store, monkeypatch, text)
    assert found == {"switch_to": "noted", "requested_slot": None}          # no new complaint
    assert ticket.number in said[0] and "抱歉" in said[0]
    assert any(e["kind"] == "note" for e in ticket.events)


def test_a_threat_after_filing_raises_the_complaint_and_queues_it(ticket_store, monkeypatch):
    ticket, found, said = _complaint_started(ticket_store, monkeypatch, "订单DD120034005600 三天内不解决我就找媒体曝光")
    assert found["switch_to"] == "noted"
    assert ticket.priority == "high" and ticket.order_id == "DD120034005600"
    from bot.profile import sla
    from bot.store.schema import SlaClock
    from sqlalchemy import select
    assert ticket.sla_due_at == sla.due_time("complaint", "high", ticket.created_at)   # its promise follows
    with ticket_store.engine.connect() as conn:
        budgets = conn.execute(select(SlaClock.budget_s)).scalars().all()
    assert budgets and min(budgets) == sla.clock_budget("first_response", "complaint", "high")


def test_a_new_matter_after_filing_is_a_new_complaint(ticket_store, monkeypatch):
    ticket, found, _ = _complaint_started(ticket_store, monkeypatch, "另外还要投诉一下 快递把箱子摔烂了 里面的碗都碎了")
    assert found.get("switch_to") is None and found["complaint_description"]
    ticket, found, _ = _complaint_started(ticket_store, monkeypatch, "还有退款十多天了还没到账 你们太慢了", category="物流配送")
    assert found.get("switch_to") is None


def test_a_phone_and_a_wish_after_a_callback_ticket_go_on_it(ticket_store, monkeypatch):
    ticket, found, said = _complaint_started(ticket_store, monkeypatch, "我手机13706601234 叫他们后天下午再打来",
                                             kind="callback", category="人工服务")
    assert found["switch_to"] == "noted" and ticket.phone.endswith("1234")
    assert "抱歉" not in said[0] and ticket.number in said[0]


def test_a_threat_said_in_a_later_turn_makes_the_complaint_high_priority(ticket_store, monkeypatch):
    import actions.common as common
    import actions.tickets as tickets
    monkeypatch.setattr(tickets, "store", lambda: ticket_store)
    monkeypatch.setattr(common, "store", lambda: ticket_store)
    events = [_user("我要投诉 热水器装好第二天就漏水", "complain"), _bot("请留一个方便联系您的手机号"),
              _user("13511112222 你们再拖着我就去工商局投诉", "inform")]
    slots = {"complaint_category": "商品质量", "complaint_description": "我要投诉 热水器装好第二天就漏水",
             "phone": "13511112222", "order_id": None, "switch_to": None}
    tracker = Tracker("web:x", slots, {"text": events[-1]["text"], "intent": {"name": "inform"}, "entities": []},
                      events, False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    tickets.SubmitComplaint().run(dispatcher, tracker, {})
    payload = next(m["custom"]["kefu"] for m in dispatcher.messages if m.get("custom"))
    assert payload["priority"] == "high" and payload["handoff"] is True
    filed = ticket_store.find(payload["ticket"])
    assert "工商" in filed.description and "13511112222" not in filed.description


# --- changing course: any clear return request is a switch, with what was told --------------
@pytest.mark.parametrize("text,form", [
    ("唉修来修去的烦死了 算了 给我退了吧", "repair_form"), ("投诉也没用 干脆直接退钱", "complaint_form"),
    ("no wait, forget the exchange, refund me", "return_form"),
])
def test_any_clear_return_request_mid_form_is_a_switch(text, form):
    from bot.profile import details
    assert details.switch_target(text, form) == (None if form == "return_form" else "return_form")


def test_exchange_changed_to_a_return_mid_form_and_an_aside_keeps_the_date():
    slots, _ = validate(ValidateReturnForm(), {**RETURN, "return_type": "exchange", "days_since_receipt": 4.0,
                                               "requested_slot": "order_id"}, "actually 还是退货吧 不换了")
    assert slots["return_type"] == "return"
    slots, _ = validate(ValidateReturnForm(), {**RETURN, "days_since_receipt": 4.0, "requested_slot": "order_id"},
                        "your app is so laggy today haha", intent="out_of_scope")
    assert "days_since_receipt" not in slots


def test_a_return_switched_to_takes_the_item_and_fault_told_before():
    events = [_user("烤箱买回来加热不均匀 一边糊一边生", "request_repair", entities=[
        {"entity": "product", "value": "烤箱", "start": 0, "end": 2}]), _bot("请提供上门服务的详细地址")]
    slots, _ = start(ValidateReturnForm(), events, "还是直接退了吧")
    assert slots["product"] == "烤箱" and "加热不均匀" in slots["return_reason"]


def test_a_return_reason_told_as_a_defect_that_cannot_reach_its_result():
    from bot.profile import mentions
    assert mentions.reason_in("衣柜门关不严 想退") and mentions.reason_in("水龙头拧不紧")


# --- corrections -------------------------------------------------------------------------------
def test_a_product_put_right_replaces_the_product_and_its_fault():
    from actions.forms import ValidateRepairForm
    text = "不好意思说错了 洗衣机没事 是烘干机不加热"
    entities = [{"entity": "product", "value": "洗衣机", "start": 7, "end": 10},
                {"entity": "product", "value": "烘干机", "start": 13, "end": 16}]
    slots, _ = validate(ValidateRepairForm(), {"product": "洗衣机", "fault_description": "洗衣机不转",
                                               "address": None, "phone": None, "requested_slot": "address",
                                               "form_tries": {}}, text, entities=entities)
    assert slots["product"] == "烘干机" and "不加热" in slots["fault_description"]


def test_a_date_read_as_a_progress_query_while_the_reason_is_asked_is_the_date():
    slots, _ = validate(ValidateReturnForm(), {**RETURN, "phone": "13800001111"}, "前天收到的", intent="check_ticket")
    assert slots["days_since_receipt"] == 2.0


def test_the_fault_question_names_only_the_hazards_the_product_can_have():
    from actions.forms import hazard_hint
    assert "燃气" not in hazard_hint("空调") and "冒烟" in hazard_hint("空调")
    assert "燃气" in hazard_hint("燃气热水器") and "燃气" not in hazard_hint("电热水器")
    assert hazard_hint("沙发") == "" and "燃气" in hazard_hint(None)


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


# --- corrections said with the field's name and an "oops" are no answer --------------------
@pytest.mark.parametrize("text,phone", [
    ("不好意思手机号打错了，是13912345678", "13912345678"),
    ("哎呀我的电话不对 应该是 139 1234 5679", "13912345679"),
    ("号码写错了 不是5678 是13912345670", "13912345670"),
])
def test_a_phone_correction_is_no_complaint_description(text, phone):
    from actions.forms import ValidateComplaintForm
    slots, _ = validate(ValidateComplaintForm(), {**COMPLAINT, "complaint_description": None, "phone": "13912345000",
                                                  "requested_slot": "complaint_description"}, text)
    assert slots["phone"] == phone
    assert "complaint_description" not in slots and slots["form_tries"] == {}


@pytest.mark.parametrize("text", ["我的手机号码是13912345678", "电话 139-1234-5678"])
def test_a_phone_is_no_complaint_category_either(text):
    from actions.forms import ValidateComplaintForm
    slots, said = validate(ValidateComplaintForm(), {**COMPLAINT, "complaint_category": None, "complaint_description": None,
                                                     "requested_slot": "complaint_category"}, text)
    assert slots["phone"] == "13912345678" and "complaint_category" not in slots
    assert slots["form_tries"] == {} and "电话" in said[0]        # taken, and the category asked again


# --- the answer to "which kind?" that tells the whole problem ---------------------------------
@pytest.mark.parametrize("text,category", [
    ("电视用了一周就花屏了 订单DD202611150021 不给解决我就去消协", "商品质量"),
    ("快递员把箱子扔在门口就走了，东西都压扁了，电话13612345678", "物流配送"),
])
def test_the_category_answer_that_tells_the_problem_is_its_description_too(text, category):
    from actions.forms import ValidateComplaintForm
    slots, _ = validate(ValidateComplaintForm(), {**COMPLAINT, "complaint_category": None, "complaint_description": None,
                                                  "requested_slot": "complaint_category"}, text, intent="complain")
    assert slots["complaint_category"] == category
    assert slots["complaint_description"] and "13612345678" not in slots["complaint_description"]
    assert "DD202611150021" not in slots["complaint_description"]


@pytest.mark.parametrize("text,category", [
    ("说错了，不是东西质量差，是快递员送来的时候摔的", "物流配送"),
    ("不对 质量倒没问题 主要是客服一直推来推去不理人", "服务态度"),
])
def test_a_complaint_put_right_mid_form_changes_its_category(text, category):
    from actions.forms import ValidateComplaintForm
    slots, _ = validate(ValidateComplaintForm(), {**COMPLAINT, "complaint_category": "商品质量",
                                                  "complaint_description": "冰箱质量有问题"}, text, intent="complain")
    assert slots["complaint_category"] == category
    assert slots["complaint_description"].startswith("冰箱质量有问题；")


# --- what was said before the form started ---------------------------------------------------
def _user(text, intent, confidence=0.9, entities=()):
    return {"event": "user", "text": text, "parse_data": {"text": text, "entities": list(entities),
                                                           "intent": {"name": intent, "confidence": confidence}}}


def _bot(text, action=None):
    return {"event": "bot", "text": text, "metadata": {"utter_action": action} if action else {}}


def start(form, events, text, intent="request_return", slots=None):
    tracker = Tracker("web:x", {"requested_slot": None, "form_tries": {}, **(slots or {})},
                      {"text": text, "intent": {"name": intent}, "entities": []},
                      events + [_user(text, intent)], False, None, {"name": form.form}, "action_listen")
    dispatcher = CollectingDispatcher()
    found = asyncio.run(form.run(dispatcher, tracker, {}))
    return {e["name"]: e["value"] for e in found}, [m.get("text") for m in dispatcher.messages]


def test_a_form_takes_the_details_given_just_before_it_started():
    events = [_user("想换个货", "faq", 0.3), _bot("15天内质量问题可换货", "utter_faq/exchange_policy"),
              _user("单号 DD556677889900", "inform"), _bot("请问还有什么可以帮您？", "utter_how_can_help"),
              _user("微波炉才到两天就不加热了", "nlu_fallback", 0.2,
                    [{"entity": "product", "value": "微波炉", "start": 0, "end": 3}])]
    slots, _ = start(ValidateReturnForm(), events, "那还是退掉吧")
    assert slots["order_id"] == "DD556677889900"
    assert slots["product"] == "微波炉" and slots["days_since_receipt"] == 2.0
    assert "不加热" in slots["return_reason"] and slots["return_type"] == "return"


@pytest.mark.parametrize("events", [
    # a ticket filed since: its details are done with
    [_user("单号 DD556677889900", "inform"), _bot("退货申请已提交，工单号 KF26112700001234。")],
    # said inside another form (that form read it)
    [_user("我要投诉", "complain"), {"event": "active_loop", "name": "complaint_form"},
     _user("单号 DD556677889900", "inform"), {"event": "active_loop", "name": None}],
    # a question answered with confidence
    [_user("DD556677889900这单能开发票吗", "faq", 0.95), _bot("可以开具电子发票", "utter_faq/invoice")],
    # a form the customer cancelled
    [_user("单号 DD556677889900", "inform"), _bot("已取消", "utter_stopped")],
])
def test_details_from_before_are_not_taken_when_they_belong_elsewhere(events):
    slots, _ = start(ValidateReturnForm(), events, "我要退货")
    assert "order_id" not in slots


# --- no order number, and a vague date near a window -----------------------------------------
def test_no_order_number_is_acknowledged_with_how_it_is_checked_and_not_asked_again():
    slots, said = validate(ValidateReturnForm(), {**RETURN, "order_id": None, "requested_slot": "order_id"},
                           "单号我真记不得了 也不会查")
    assert slots["order_id"] == "无" and "手机号" in said[-1]
    slots, said = validate(ValidateReturnForm(), {**RETURN, "order_id": "无"}, "都说了没有订单号啊", intent="deny")
    assert "return_reason" not in slots and slots["form_tries"] == {}   # no failed try at the reason
    assert "手机号" in said[-1]


def test_a_vague_date_either_side_of_the_window_is_asked_once_more():
    exchange = {**RETURN, "return_type": "exchange", "return_reason": "质量问题 门关不严"}
    slots, said = validate(ValidateReturnForm(), {**exchange, "requested_slot": "phone"},
                           "十多天前收到的 电话13712345678")
    assert slots["days_since_receipt"] is None and "15" in said[-1]      # not refused, asked
    assert slots["phone"] == "13712345678"
    slots, said = validate(ValidateReturnForm(), {**exchange, "requested_slot": "days_since_receipt"}, "十几天吧")
    assert "days_since_receipt" not in slots and slots["form_tries"] == {"days_since_receipt": 1}
    slots, _ = validate(ValidateReturnForm(), {**exchange, "requested_slot": "days_since_receipt",
                                               "form_tries": {"days_since_receipt": 1}}, "记不清了 十几天")
    assert slots["days_since_receipt"] == 15.0                           # the second time, the estimate


def test_a_vague_date_that_decides_nothing_is_taken():
    slots, said = validate(ValidateReturnForm(), {**RETURN, "requested_slot": "phone"}, "前几天到的 13712345678")
    assert slots["days_since_receipt"] == 3.0 and not any("期限" in (s or "") for s in said)


# --- changing one's mind: a complaint about the item is why it goes back ---------------------
def test_a_complaint_about_the_item_is_the_reason_of_the_return_switched_to():
    from actions.dialogue import carried_over
    tracker = Tracker("web:x", {"complaint_description": "沙发坐了两天就塌了一块"}, {}, [], False, None, {}, "action_listen")
    assert carried_over(tracker, "complaint_form", "return_form")["return_reason"]
    tracker = Tracker("web:x", {"complaint_description": "客服电话一直打不通"}, {}, [], False, None, {}, "action_listen")
    assert carried_over(tracker, "complaint_form", "return_form") == {}


# --- follow-ups, misses, and the promise of the ticket just filed ----------------------------
def _asked(events, text, intent, ranking):
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.3}, "entities": [],
              "response_selector": {"faq": {"ranking": [{"intent_response_key": k, "confidence": c} for k, c in ranking],
                                            "response": {"intent_response_key": ranking[0][0],
                                                         "confidence": ranking[0][1]}}}}
    return Tracker("web:x", {}, latest, events + [{"event": "user", "text": text, "parse_data": latest}],
                   False, None, {}, "action_listen")


def test_a_short_follow_up_leans_on_the_topic_just_answered():
    from actions.common import follow_up_topic
    events = [_user("能开专票吗", "faq"), _bot("可以开具电子发票…", "utter_faq/invoice")]
    assert follow_up_topic(_asked(events, "开出来要几天", "faq",
                                  [("faq/shipping_time", 0.3), ("faq/invoice", 0.2)])) == "faq/invoice"
    # a clear new question is not a follow-up
    assert follow_up_topic(_asked(events, "那保修几年", "faq", [("faq/warranty", 0.9), ("faq/invoice", 0.05)])) is None
    # leaning on the answer in words (那…): only a topic the classifier is very sure of is a new one
    assert follow_up_topic(_asked(events, "那收货以后大概多久能开出来", "faq",
                                  [("faq/shipping_time", 0.58), ("faq/invoice", 0.2)])) == "faq/invoice"
    assert follow_up_topic(_asked(events, "那运费呢", "faq", [("faq/shipping_fee", 0.92), ("faq/invoice", 0.02)])) is None
    # nothing answered just before: no topic to lean on
    assert follow_up_topic(_asked([_user("你好", "greet"), _bot("您好")], "开出来要几天", "faq",
                                  [("faq/shipping_time", 0.3), ("faq/invoice", 0.2)])) is None


def test_a_misread_question_answered_from_the_leaning_is_no_miss():
    from actions.common import answered_misses
    events = [_user("邮废咋算", "out_of_scope", 0.3), _bot("满99包邮", "utter_faq/shipping_fee"),
              _user("今天天气不错", "out_of_scope", 0.8), _bot("抱歉，超出范围", "utter_out_of_scope")]
    assert answered_misses(_asked(events, "讲个笑话", "out_of_scope", [("faq/privacy", 0.1)]),
                           ("out_of_scope", "nlu_fallback")) == 2
    assert answered_misses(_asked(events[:2], "讲个笑话", "out_of_scope", [("faq/privacy", 0.1)]),
                           ("out_of_scope", "nlu_fallback")) == 1


def test_a_message_surely_off_topic_gets_no_faq_answer_from_the_selectors_leaning():
    from actions.dialogue import OutOfScope
    tracker = _asked([_user("帮我订个酒店", "out_of_scope", 0.95), _bot("抱歉，超出范围", "utter_out_of_scope")],
                     "那这期双色球开奖了吗", "out_of_scope", [("faq/privacy", 0.6)])
    tracker.latest_message["intent"]["confidence"] = 0.93
    dispatcher = CollectingDispatcher()
    OutOfScope().run(dispatcher, tracker, {})
    assert not any(m.get("response") == "utter_faq/privacy" for m in dispatcher.messages)
    tracker.latest_message["intent"]["confidence"] = 0.3          # unsure: a misread question leans
    dispatcher = CollectingDispatcher()
    OutOfScope().run(dispatcher, tracker, {})
    assert dispatcher.messages[0].get("response") == "utter_faq/privacy"


@pytest.mark.parametrize("text,promise", [("那大概多久给我回复", "24 小时"), ("好的谢谢", None)])
def test_when_asked_right_after_filing_the_ticket_tells_its_own_promise(ticket_store, monkeypatch, text, promise):
    import actions.tickets as tickets
    monkeypatch.setattr(tickets, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="complaint", category="物流配送", description="一周没更新物流",
                                         customer_id="web:x", channel="web", idempotency_key="web:x:c")
    events = [_user("快递一周没动了 我要投诉", "complain"), _bot(f"您的投诉已登记，工单号 {ticket.number}。")]
    said = tickets.promise_answer(_asked(events, text, "faq", [("faq/response_time", 0.3)]))
    assert (said is None) if promise is None else (promise in said and ticket.number in said)


@pytest.mark.parametrize("text", ["那平时在网上留言一般多久会有人回复？", "以后留言通常多久有人回"])
def test_when_asked_of_the_service_in_general_after_filing_the_general_answer(ticket_store, monkeypatch, text):
    import actions.tickets as tickets
    monkeypatch.setattr(tickets, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="complaint", category="服务态度", description="前台态度差",
                                         customer_id="web:x", channel="web", idempotency_key="web:x:g")
    events = [_user("前台态度差 我要投诉", "complain"), _bot(f"您的投诉已登记，工单号 {ticket.number}。")]
    assert tickets.promise_answer(_asked(events, text, "faq", [("faq/response_time", 0.97)])) is None


@pytest.mark.parametrize("text,confidence,said", [
    ("你是机器人吗", 0.95, "utter_iamabot"),
    # read as "are you a bot": an elliptical follow-up to the fee just answered, with no word about the bot
    ("那是每个月交吗？", 0.24, "utter_faq/property_fee"), ("那是要我自己垫付吗？", 0.9, "utter_faq/property_fee"),
    # a question about the bot, however elliptical, is answered as one
    ("那你是真人吗", 0.9, "utter_iamabot"),
])
def test_a_question_read_as_about_the_bot(text, confidence, said):
    from actions.service import BotIdentity
    events = [_user("物业费怎么收", "faq"), _bot("物业费按季度缴纳…", "utter_faq/property_fee")]
    tracker = _asked(events, text, "bot_challenge", [("faq/parking", 0.21), ("faq/property_fee", 0.12)])
    tracker.latest_message["intent"]["confidence"] = confidence
    dispatcher = CollectingDispatcher()
    BotIdentity().run(dispatcher, tracker, {})
    assert dispatcher.messages[0].get("response") == said


def test_where_is_the_person_read_as_about_the_bot_hands_over(monkeypatch):
    import actions.service as service
    handed = []
    monkeypatch.setattr(service, "hand_off", lambda dispatcher, tracker, reason: handed.append(reason))
    tracker = _asked([], "人呢？？", "bot_challenge", [("faq/contact_channels", 0.38)])
    service.BotIdentity().run(CollectingDispatcher(), tracker, {})
    assert handed == ["request_human"]


def test_a_worry_that_data_was_sold_gets_the_privacy_answer_whatever_trade_it_names(monkeypatch):
    from actions.service import AnswerFaq
    import actions.tickets as tickets
    monkeypatch.setattr(tickets, "promise_answer", lambda tracker: None)
    tracker = _asked([], "你们是不是把我电话卖给装修公司了？！天天有人打电话问我家要不要装修！！", "faq",
                     [("faq/renovation", 0.81), ("faq/privacy", 0.02)])
    dispatcher = CollectingDispatcher()
    AnswerFaq().run(dispatcher, tracker, {"responses": {"utter_faq/privacy": [], "utter_faq/renovation": []}})
    assert dispatcher.messages[0].get("response") == "utter_faq/privacy"
    dispatcher = CollectingDispatcher()                 # a pack without the topic: the classifier's answer
    AnswerFaq().run(dispatcher, tracker, {"responses": {"utter_faq/renovation": []}})
    assert dispatcher.messages[0].get("response") == "utter_faq/renovation"


@pytest.mark.parametrize("text,aside", [
    ("单号找不到了🥲 你们前台现在还有人吗", "faq/service_hours"), ("我的工单怎么样了 你们几点下班", "faq/service_hours"),
    ("在吗 我前天报的修到现在都没人联系我 能帮我查查吗", None), ("我的工单到哪一步了", None),
])
def test_a_question_of_its_own_beside_a_progress_one(text, aside):
    from actions.tickets import question_beside
    assert question_beside(_asked([], text, "check_ticket", [("faq/service_hours", 0.41), ("faq/contact_channels", 0.3)])) \
        == aside


def test_details_on_their_own_after_a_request_start_its_form():
    from rasa_sdk.events import FollowupAction
    from actions.dialogue import route_by_context
    events = [_user("换货", "faq", 0.64), _bot("15天内质量问题可换货", "utter_faq/exchange_policy")]
    tracker = _asked(events, "DD440395882611", "inform", [("faq/order_change", 0.1)])
    routed = route_by_context(tracker, {"forms": {"return_form": {}}})
    assert routed and routed[-1] == FollowupAction("return_form")
    assert route_by_context(_asked(events, "那好久能到哦", "inform", [("faq/shipping_time", 0.3)]),
                            {"forms": {"return_form": {}}}) is None     # asks when: no detail


def test_a_policy_question_after_a_ticket_gets_the_policy_not_the_ticket(ticket_store, monkeypatch):
    import actions.tickets as tickets
    monkeypatch.setattr(tickets, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="callback", category="人工服务", description="转人工",
                                         customer_id="web:x", channel="web", idempotency_key="web:x:h")
    events = [_user("转人工", "request_human"), _bot(f"正在为您转接人工客服，记录编号 {ticket.number}。")]
    assert tickets.promise_answer(_asked(events, "退款一般多久到账", "faq", [("faq/refund_time", 0.9)])) is None


def _said(form, slots, text, intent, confidence):
    tracker = Tracker("web:x", slots, {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": []},
                      [], False, None, {"name": form.form}, "action_listen")
    dispatcher = CollectingDispatcher()
    return asyncio.run(form.run(dispatcher, tracker, {}))


@pytest.mark.parametrize("text", ["门把手掉了一个", "柜门合不上 缝很大"])
def test_an_unsure_stop_that_tells_the_problem_is_the_answer(text):
    from actions.forms import ValidateComplaintForm
    events = _said(ValidateComplaintForm(), {**COMPLAINT, "complaint_category": None, "complaint_description": None,
                                             "requested_slot": "complaint_category"}, text, "stop", 0.25)
    slots = {e["name"]: e["value"] for e in events}
    assert slots["complaint_category"] and slots["complaint_description"]


@pytest.mark.parametrize("text,confidence", [("算了不弄了", 0.3), ("不用了", 0.9)])
def test_a_stop_said_or_sure_still_stops(text, confidence):
    from actions.forms import ValidateComplaintForm
    assert _said(ValidateComplaintForm(), COMPLAINT, text, "stop", confidence) == []


@pytest.mark.parametrize("text,kind", [("还是退款吧", "return"), ("换个新的就行", "exchange")])
def test_a_closed_question_answered_in_faq_words_is_answered(text, kind):
    events = _said(ValidateReturnForm(), {**RETURN, "return_type": None, "requested_slot": "return_type"},
                   text, "faq", 0.7)
    assert {e["name"]: e["value"] for e in events}["return_type"] == kind


def test_a_real_question_mid_form_is_still_answered_as_a_faq():
    assert _said(ValidateReturnForm(), {**RETURN, "return_type": None, "requested_slot": "return_type"},
                 "退款多久能到账？", "faq", 0.9) == []


def test_an_unsure_progress_query_that_answers_the_description_is_the_description():
    from actions.forms import ValidateComplaintForm
    events = _said(ValidateComplaintForm(), {**COMPLAINT, "complaint_category": "物流配送", "complaint_description": None,
                                             "requested_slot": "complaint_description"},
                   "下单十天了一直没发货 订单DD667788990011", "check_ticket", 0.3)
    slots = {e["name"]: e["value"] for e in events}
    assert "没发货" in slots["complaint_description"] and slots["order_id"] == "DD667788990011"
    # sure of it, it is a progress question: answered by the rules, the form waits
    assert _said(ValidateComplaintForm(), {**COMPLAINT, "complaint_description": None,
                                           "requested_slot": "complaint_description"},
                 "我上次那个工单处理到哪了", "check_ticket", 0.9) == []


def test_a_refused_return_ends_what_later_forms_may_take():
    events = [_user("洗衣机一直响 要换货", "request_return", 0.9),
              {"event": "slot", "name": "return_dispute", "value": {"why": "window"}},
              _bot("抱歉，超过了换货期限")]
    slots, _ = start(ValidateReturnForm(), events, "订单 DD202611080012 电话15900001111")
    assert "return_type" not in slots and "product" not in slots


def test_a_return_inside_the_no_reason_window_needs_no_reason():
    slots, _ = validate(ValidateReturnForm(), RETURN, "前天到的 13822223333")
    assert slots["days_since_receipt"] == 2.0 and slots["phone"] == "13822223333"
    assert "无理由" in slots["return_reason"]
    # past the window, or an exchange: the reason is still asked
    slots, _ = validate(ValidateReturnForm(), RETURN, "十天前到的 13822223333")
    assert "return_reason" not in slots
    slots, _ = validate(ValidateReturnForm(), {**RETURN, "return_type": "exchange"}, "前天到的 13822223333")
    assert "return_reason" not in slots


def test_when_asked_about_the_ticket_just_filed_a_progress_query_tells_its_promise(ticket_store, monkeypatch):
    import actions.tickets as tickets
    monkeypatch.setattr(tickets, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="repair", category="冰箱", description="不制冷",
                                         customer_id="web:x", channel="web", idempotency_key="web:x:r")
    events = [_user("冰箱不制冷 报修", "request_repair"), _bot(f"报修已登记，工单号 {ticket.number}。")]
    dispatcher = CollectingDispatcher()
    tickets.CheckTicket().run(dispatcher, _asked(events, "师傅什么时候联系我", "check_ticket",
                                                 [("faq/response_time", 0.2)]), {})
    said = dispatcher.messages[0]["text"]
    assert ticket.number in said and "24 小时" in said


def test_a_phone_given_right_after_a_refused_return_is_recorded_for_an_agent(ticket_store, monkeypatch):
    import actions.dialogue as dialogue
    monkeypatch.setattr(dialogue, "store", lambda: ticket_store)
    refused = {"why": "window", "days": 24, "order_id": None}
    events = [_user("上个月买的吹风机想退", "request_return"), {"event": "slot", "name": "return_dispute", "value": refused},
              _bot("抱歉，超过了退货期限")]
    tracker = _asked(events, "单号找不到了 你们打我电话 13926600000", "inform", [("faq/return_policy", 0.1)])
    tracker.slots["return_dispute"] = refused
    dispatcher = CollectingDispatcher()
    dialogue.RouteDetail().run(dispatcher, tracker, {})
    [ticket] = ticket_store.for_customer("web:x")
    assert ticket.category == "退货复核" and ticket.phone.endswith("0000") and "13926600000" not in ticket.description
    assert ticket.number in dispatcher.messages[0]["text"]


def test_off_topic_then_not_understood_is_offered_a_person():
    from actions.service import HandleFallback
    events = [_user("推荐个火锅店", "out_of_scope", 0.8), _bot("抱歉，超出范围", "utter_out_of_scope")]
    dispatcher = CollectingDispatcher()
    HandleFallback().run(dispatcher, _asked(events, "帮我写作业", "nlu_fallback", [("faq/privacy", 0.05)]), {})
    assert "人工" in dispatcher.messages[0]["text"] and dispatcher.messages[0]["buttons"]


@pytest.mark.parametrize("text,fault", [("洗碗机不出水了 修要花钱吗", "不出水"), ("烤箱不加热 你们上门收费不", "不加热")])
def test_a_side_question_is_answered_and_the_fault_it_came_with_is_kept(text, fault):
    from actions.forms import ValidateRepairForm
    latest = {"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.2}, "entities": [],
              "response_selector": {"faq": {"response": {"intent_response_key": "faq/repair_fee", "confidence": 0.6}}}}
    tracker = Tracker("web:x", {"product": "洗碗机", "fault_description": None, "address": None, "phone": None,
                                "requested_slot": "fault_description", "form_tries": {}},
                      latest, [], False, None, {"name": "repair_form"}, "action_listen")
    dispatcher = CollectingDispatcher()
    slots = {e["name"]: e["value"] for e in asyncio.run(ValidateRepairForm().run(dispatcher, tracker, {}))}
    assert dispatcher.messages[0].get("response") == "utter_faq/repair_fee"
    assert fault in slots["fault_description"] and "钱" not in slots["fault_description"]


def test_a_policy_question_with_the_fault_in_it_answers_both():
    from actions.forms import ValidateRepairForm
    latest = {"text": "冰箱冷藏不制冷了，保修期内修免费吗？", "intent": {"name": "faq", "confidence": 0.9}, "entities": [],
              "response_selector": {"faq": {"response": {"intent_response_key": "faq/repair_fee", "confidence": 0.9}}}}
    tracker = Tracker("web:x", {"product": "冰箱", "fault_description": None, "address": None, "phone": None,
                                "requested_slot": "fault_description", "form_tries": {}},
                      latest, [], False, None, {"name": "repair_form"}, "action_listen")
    dispatcher = CollectingDispatcher()
    slots = {e["name"]: e["value"] for e in asyncio.run(ValidateRepairForm().run(dispatcher, tracker, {}))}
    assert dispatcher.messages[0].get("response") == "utter_faq/repair_fee"
    assert "不制冷" in slots["fault_description"]


def test_a_follow_up_that_names_its_own_topic_gets_that_topic():
    from actions.common import follow_up_topic
    events = [_user("保修几年", "faq"), _bot("整机保修2年…", "utter_faq/warranty")]
    ranking = [("faq/repair_fee", 0.7), ("faq/warranty", 0.2)]
    assert follow_up_topic(_asked(events, "那要是过了保修期再坏了 修要多少钱", "faq", ranking)) is None


def test_a_general_reply_time_question_right_after_filing_gets_the_tickets_promise(ticket_store, monkeypatch):
    import actions.tickets as tickets
    monkeypatch.setattr(tickets, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="complaint", category="服务态度", description="安装师傅弄坏地板",
                                         customer_id="web:x", channel="web", idempotency_key="web:x:c2")
    events = [_user("投诉安装师傅", "complain"), _bot(f"您的投诉已登记，工单号 {ticket.number}。")]
    said = tickets.promise_answer(_asked(events, "你们一般多久能回复我", "faq", [("faq/response_time", 0.98)]))
    assert said and ticket.number in said and "24 小时" in said


@pytest.mark.parametrize("text", ["那得多长时间能来人啊", "大概啥时候有人处理"])
def test_how_soon_before_filing_is_told_the_promise_and_the_question_asked_again(text):
    from actions.forms import ValidateRepairForm
    tracker = Tracker("web:x", {"product": "洗衣机", "fault_description": "不转了", "address": None, "phone": None,
                                "urgency": "normal", "requested_slot": "address", "form_tries": {}},
                      {"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.2}, "entities": []},
                      [], False, None, {"name": "repair_form"}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ValidateRepairForm().run(dispatcher, tracker, {}))
    assert "24 小时" in dispatcher.messages[0]["text"]
    assert {e["name"]: e["value"] for e in events} == {"form_tries": {}}        # no failed try


# --- a request told in pieces outside any form; a greeting with a request in it ---------------
def _outside(events, text, intent="inform", entities=()):
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.5}, "entities": list(entities)}
    return Tracker("web:x", {}, latest, events + [{"event": "user", "text": text, "parse_data": latest}],
                   False, None, {}, "action_listen")


DOMAIN_FORMS = {"forms": {"repair_form": {}, "return_form": {}, "complaint_form": {}}}


@pytest.mark.parametrize("earlier,text", [
    ([_user("洗碗机", "inform", entities=[{"entity": "product", "value": "洗碗机"}])], "不出水了"),
    ([_user("床垫", "inform", entities=[{"entity": "product", "value": "床垫"}])], "中间陷下去一块"),
    ([_user("油烟机那个", "inform", entities=[{"entity": "product", "value": "油烟机"}])], "声音特别大 吸不动烟"),
])
def test_a_product_then_its_fault_in_the_next_message_starts_a_repair(earlier, text):
    from actions.dialogue import RouteDetail
    events = RouteDetail().run(CollectingDispatcher(), _outside(earlier, text), DOMAIN_FORMS)
    assert any(e.get("event") == "followup" and e.get("name") == "repair_form" for e in events)


@pytest.mark.parametrize("earlier,text", [
    # a policy question answered with confidence is no piece of a request
    ([_user("保修期多久", "faq", 0.95)], "冰箱呢"),
    # a question of its own, not a fault
    ([_user("冰箱", "inform", entities=[{"entity": "product", "value": "冰箱"}])], "不制冷的话能修吗"),
    # nothing before it
    ([], "不出水了"),
])
def test_no_repair_from_pieces_that_are_not_one(earlier, text):
    from actions.dialogue import form_of_fragments
    assert form_of_fragments(_outside(earlier, text)) is None


def test_a_greeting_that_tells_a_request_starts_its_form():
    from actions.dialogue import Greet
    dispatcher = CollectingDispatcher()
    events = Greet().run(dispatcher, _outside([], "你好呀 我家微波路不转了 麻烦派人看看", "greet"), DOMAIN_FORMS)
    assert any(e.get("event") == "followup" and e.get("name") == "repair_form" for e in events)
    dispatcher = CollectingDispatcher()
    assert Greet().run(dispatcher, _outside([], "你好", "greet"), DOMAIN_FORMS) == []
    assert dispatcher.messages[0]["response"] == "utter_greet"


def test_a_repair_started_with_a_product_only_has_no_fault_yet():
    from actions.forms import ValidateRepairForm
    slots, _ = start(ValidateRepairForm(), [], "燃气热水器", intent="inform")
    assert "fault_description" not in slots


def test_a_return_reason_of_too_much_or_not_used_to_it_is_kept_while_the_order_is_asked():
    asked = dict(RETURN, order_id=None, requested_slot="order_id")
    slots, said = validate(ValidateReturnForm(), asked, "太硬了 睡不惯", intent="nlu_fallback")
    assert slots["return_reason"] == "太硬了，睡不惯" and slots["form_tries"] == {}


def test_and_what_about_this_item_is_the_question_just_answered():
    from actions.common import follow_up_topic
    events = [_user("运费怎么算", "faq"), _bot("满99包邮…大件免费送货上楼", "utter_faq/shipping_fee")]
    tracker = _asked(events, "那衣柜这种大件呢", "faq", [("faq/shipping_time", 0.7), ("faq/shipping_fee", 0.1)])
    tracker.latest_message["entities"] = [{"entity": "product", "value": "衣柜"}]
    assert follow_up_topic(tracker) == "faq/shipping_fee"
    # a topic of its own ("退货呢") is the classifier's
    tracker = _asked(events, "退货呢", "faq", [("faq/return_policy", 0.8), ("faq/shipping_fee", 0.1)])
    assert follow_up_topic(tracker) is None


@pytest.mark.parametrize("intent", ["nlu_fallback", "stop"])
def test_a_phone_for_the_callback_just_filed_is_kept_whatever_the_intent(ticket_store, monkeypatch, intent):
    import actions.dialogue as dialogue
    from actions.service import HandleFallback
    monkeypatch.setattr(dialogue, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="callback", category="回电", description="非人工时间", customer_id="web:x",
                                         channel="web", idempotency_key="web:x:cb")
    text = "那算了…不对 还是留个电话吧 13700002222 明天打给我"
    events = [_user("现在有人工吗", "request_human"), _bot(f"已为您登记回电工单 {ticket.number}")]
    tracker = _outside(events, text, intent)
    dispatcher = CollectingDispatcher()
    action = HandleFallback() if intent == "nlu_fallback" else dialogue.StopForm()
    action.run(dispatcher, tracker, DOMAIN_FORMS)
    assert ticket_store.find(ticket.number, unmasked=True).phone.endswith("2222")
    assert ticket.number in dispatcher.messages[0]["text"]


REPAIR = dict(product="燃气灶", fault_description="打不着火", address=None, phone=None, urgency="normal",
              requested_slot="address", form_tries={})


def test_more_about_the_fault_while_the_address_is_asked_is_added_and_rated_again():
    from actions.forms import ValidateRepairForm
    slots, said = validate(ValidateRepairForm(), REPAIR, "好像还有点漏气", intent="nlu_fallback")
    assert slots["fault_description"] == "打不着火；好像还有点漏气" and slots["urgency"] == "urgent"
    assert slots["form_tries"] == {} and "address" not in slots


@pytest.mark.parametrize("text,intent", [("在家等着呢", "inform"), ("多久能来修？", "nlu_fallback"),
                                         ("运费怎么算", "faq")])
def test_no_fault_told_while_the_address_is_asked_adds_nothing(text, intent):
    from actions.forms import ValidateRepairForm
    slots, _ = validate(ValidateRepairForm(), REPAIR, text, intent=intent)
    assert "fault_description" not in slots


def test_a_line_misread_as_stop_right_after_a_ticket_is_kept_on_it(ticket_store, monkeypatch):
    import actions.dialogue as dialogue
    monkeypatch.setattr(dialogue, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="return", category="退货", description="未说明", customer_id="web:x",
                                         channel="web", idempotency_key="web:x:r")
    events = [_user("昨天到的", "inform"), _bot(f"退货申请已提交，工单号 {ticket.number}")]
    dispatcher = CollectingDispatcher()
    dialogue.StopForm().run(dispatcher, _outside(events, "尺寸太大了 家里放不下", "stop"), DOMAIN_FORMS)
    assert ticket.number in dispatcher.messages[0]["text"]
    dispatcher = CollectingDispatcher()            # "算了" says stop: nothing to stop
    dialogue.StopForm().run(dispatcher, _outside(events, "算了", "stop"), DOMAIN_FORMS)
    assert dispatcher.messages[0].get("response") == "utter_nothing_to_stop"


@pytest.mark.parametrize("text,entities,product", [
    ("冰箱", [{"entity": "product", "value": "冰箱"}], "冰箱"),
    ("我家那个洗衣几", [], "洗衣机"),
    ("电冰箱啊", [{"entity": "product", "value": "冰箱"}], "冰箱"),
    ("冰箱不制冷", [{"entity": "product", "value": "冰箱"}], None),      # a fault: a repair, not a bare product
    ("冰箱保修多久", [{"entity": "product", "value": "冰箱"}], None),    # a question
    ("冰箱昨天到的想退", [{"entity": "product", "value": "冰箱"}], None),
    ("你好", [], None),
])
def test_a_product_named_alone(text, entities, product):
    from actions.dialogue import bare_product
    assert bare_product({"text": text, "entities": entities}) == product


def test_a_product_named_alone_is_asked_what_about_it():
    from actions.dialogue import RouteDetail
    dispatcher = CollectingDispatcher()
    RouteDetail().run(dispatcher, _outside([], "冰相"), DOMAIN_FORMS)
    assert "冰箱" in dispatcher.messages[0]["text"] and "报修" in dispatcher.messages[0]["text"]


def test_a_switch_in_words_misread_as_a_side_question_is_the_switch():
    from actions.forms import ValidateRepairForm
    slots = dict(REPAIR, product="洗衣机", fault_description="不脱水")
    found, _ = validate(ValidateRepairForm(), slots, "才到手三天 修啥修 算了 还是直接退吧", intent="check_ticket")
    assert found["switch_to"] == "return_form" and found["requested_slot"] is None
    # a real progress query stays one
    found, _ = validate(ValidateRepairForm(), slots, "我之前那个单子到哪了", intent="check_ticket")
    assert "switch_to" not in found


def test_a_policy_question_just_before_a_return_tells_its_item_and_when_it_came_only():
    question = _user("我十天前收到的电饭煲 订单DD112233445566 用着不喜欢 能退吗", "faq", 0.8,
                     entities=[{"entity": "product", "value": "电饭煲"}])
    answer = _bot("收到商品后7天内支持无理由退货", "utter_faq/return_policy")
    slots, _ = start(ValidateReturnForm(), [question, answer], "那给我换个新的吧", intent="request_return")
    assert slots["product"] == "电饭煲" and slots["days_since_receipt"] == 10.0
    assert "order_id" not in slots


def test_a_phone_given_with_when_will_someone_come_is_the_answer_not_a_request_for_a_person():
    from actions.forms import ValidateRepairForm
    slots = dict(REPAIR, address="上海市闵行区七莘路1888弄22号1101", requested_slot="phone")
    found, _ = validate(ValidateRepairForm(), slots, "电话15021940000，今天到底能不能来人？", intent="request_human")
    assert found["phone"] == "15021940000"
    # asking for a person in words is that request: the form lets the rules hand over
    found, _ = validate(ValidateRepairForm(), slots, "电话15021940000 我要人工", intent="request_human")
    assert found == {}


def test_a_question_naming_a_catalogue_word_starts_no_repair():
    from actions.dialogue import form_for
    assert form_for({"text": "那要是买个大衣柜呢 那么大个东西是不是要等好久", "entities": []}) is None
    assert form_for({"text": "家里的壁挂炉坏了没暖气了", "entities": []}) == "repair_form"


def test_a_repair_after_a_refused_exchange_takes_the_item_and_its_fault():
    from actions.forms import ValidateRepairForm
    events = [_user("收到二十多天了 洗碗机不出水了 给我换新的", "request_return", 0.9),
              {"event": "slot", "name": "return_dispute", "value": {"why": "window"}},
              _bot("抱歉，超过了换货期限，可以申请保修维修")]
    slots, _ = start(ValidateRepairForm(), events, "那你们上门修吧", intent="request_repair")
    assert slots["product"] == "洗碗机" and "不出水" in slots["fault_description"]


def test_messages_of_no_words_are_no_misses():
    from actions.common import answered_misses, wordless
    assert wordless("👋") and wordless("？") and wordless("👌🙏!!") and not wordless("ok👌") and not wordless("嗯？")
    events = [_user("👋", "nlu_fallback", 0.2), _bot("没太明白", "utter_please_rephrase"), _user("？", "nlu_fallback", 0.2)]
    tracker = Tracker("web:x", {}, events[-1]["parse_data"], events, False, None, {}, "action_listen")
    assert answered_misses(tracker, ("nlu_fallback",)) == 0
    events += [_bot("没太明白", "utter_please_rephrase"), _user("帮我写作业", "nlu_fallback", 0.2)]
    tracker = Tracker("web:x", {}, events[-1]["parse_data"], events, False, None, {}, "action_listen")
    assert answered_misses(tracker, ("nlu_fallback",)) == 1


@pytest.mark.parametrize("text, kept", [
    ("电话13665802147，另外问下退款大概多久能到账？", "13665802147"),
    ("洗衣机不排水 修要花钱吗", "洗衣机不排水"),
    ("你好 请问保修几年", ""),
])
def test_what_a_message_tells_beside_its_question_keeps_a_phone(text, kept):
    from actions.listening import statement_part

    told = statement_part(text)
    assert (kept in told) if kept else told == ""


def test_a_plain_yes_after_filing_confirms_with_the_tickets_own_promise(ticket_store, monkeypatch):
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", "对")
    assert said.startswith("好的，已确认") and ticket.number in said
    assert "补充" not in said and not any(e["kind"] == "note" for e in ticket_store.find(ticket.number).events)


def test_exchange_turned_into_a_return_mid_form_is_told_by_name():
    slots, said = validate(ValidateReturnForm(), {**RETURN, "return_type": "exchange", "requested_slot": "order_id"},
                           "不换了，退货吧")
    assert slots["return_type"] == "return" and "按退货办理" in said[0]


@pytest.mark.parametrize("text, disputed", [
    ("我不同意，当时客服说可以退的，我要个说法", True), ("凭什么不能退", True), ("好吧 那算了", False),
    ("尺寸是你们做错的", True), ("颜色发错了 是你们的问题", True), ("我自己量错了", False),
])
def test_a_dispute_of_a_refusal_is_heard_in_words(text, disputed):
    from actions.dialogue import disputes
    assert disputes(text) is disputed


def test_an_order_number_put_right_after_filing_replaces_the_wrong_one(ticket_store, monkeypatch):
    _after_ticket(ticket_store, monkeypatch, "web:x", "订单DD558102937741")
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", "啊订单号发错了 应该是DD558102937714 🙏")
    filed = ticket_store.find(ticket.number)
    assert filed.order_id == "DD558102937714" and "DD558102937714" in said
    assert any("更正订单号" in (e["note"] or "") for e in filed.events), filed.events
    # a number that is not said to be a correction does not replace the one on the ticket
    _after_ticket(ticket_store, monkeypatch, "web:x", "还有个订单DD558102930000")
    assert ticket_store.find(ticket.number).order_id == "DD558102937714"


@pytest.mark.parametrize("text,person", [("冰箱坏了 帮我转人工", True), ("让客服明天给我打个电话 我的洗衣机漏水", True),
                                         ("家里燃气泄漏了 快给我转人工", False), ("冰箱坏了", False)])
def test_a_form_started_by_a_line_that_asks_for_a_person_hands_over_unless_it_is_an_emergency(text, person):
    from actions.forms import ValidateRepairForm
    from actions.listening import PERSON
    asked = dict(product=None, fault_description=None, address=None, phone=None, requested_slot=None, form_tries={})
    slots, _ = validate(ValidateRepairForm(), asked, text, intent="request_repair")
    assert (slots.get("switch_to") == PERSON) is person


def test_a_part_of_the_address_put_right_while_the_phone_is_asked():
    from actions.forms import ValidateRepairForm
    asked = dict(product="电视", fault_description="自己黑屏关机", address="赣州市章贡区红旗大道36号 阳明国际2栋1808",
                 phone=None, requested_slot="phone", form_tries={})
    slots, said = validate(ValidateRepairForm(), asked, "啊啊啊地址打错了 是2栋1806 不是1808🙈")
    assert slots["address"] == "赣州市章贡区红旗大道36号 阳明国际2栋1806"
    assert "phone" not in slots and not any("号码" in s for s in said)      # no "this number looks wrong"


def test_an_order_number_put_right_in_english_after_filing(ticket_store, monkeypatch):
    _after_ticket(ticket_store, monkeypatch, "web:x", "订单DD640183527904")
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", "sorry 订单号 is wrong, should be DD640183527940")
    assert ticket_store.find(ticket.number).order_id == "DD640183527940" and "DD640183527940" in said
    _, said = _after_ticket(ticket_store, monkeypatch, "web:x", "yes, correct now")
    assert said.startswith("好的，已确认")


@pytest.mark.parametrize("text", ["wait sorry, 不是冰箱, it's the 洗碗机 making the noise 🙈", "搞错了 是洗碗机"])
def test_the_product_put_right_after_filing(ticket_store, monkeypatch, text):
    import actions.dialogue as dialogue
    monkeypatch.setattr(dialogue, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="repair", category="冰箱", product="冰箱", description="噪音很大",
                                         customer_id="web:p", channel="web", idempotency_key="web:p:1")
    events = [{"event": "user", "text": "冰箱噪音很大"}, {"event": "bot", "text": f"报修已登记，工单号 {ticket.number}。"},
              {"event": "user", "text": text}]
    tracker = Tracker("web:p", {}, {"text": text, "intent": {"name": "request_repair"}, "entities": []},
                      events, False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    assert dialogue.product_corrected_on_ticket(dispatcher, tracker)
    fixed = ticket_store.find(ticket.number)
    assert (fixed.product, fixed.category) == ("洗碗机", "洗碗机") and "洗碗机" in dispatcher.messages[0]["text"]
    other = Tracker("web:p", {}, {"text": "洗碗机也坏了", "intent": {"name": "request_repair"}, "entities": []},
                    events[:2] + [{"event": "user", "text": "洗碗机也坏了"}], False, None, {}, "action_listen")
    assert not dialogue.product_corrected_on_ticket(CollectingDispatcher(), other)    # another repair, no correction


@pytest.mark.parametrize("text,said", [
    ("对了，半个多月前收到的那个电饭锅我不想要了，还能退吗？", "15天质量换货"),
    ("十天前收到的 还能退吗", "15天内还可以申请换货"), ("前天收到的 能退吗", None), ("能退吗", None),
])
def test_a_return_question_that_tells_when_gets_the_answer_for_those_days(text, said):
    from actions.service import window_told
    told = window_told(text, "faq/return_policy")
    assert (told is None) if said is None else (said in told and "7天" in told)


@pytest.mark.parametrize("text,topic", [
    ("过保呢", "faq/repair_fee"), ("保修期过了修要钱吗", "faq/repair_fee"),
    ("你们是不是把我电话卖给别人了", "faq/privacy"), ("保修几年", None),
    ("你好 我家电费是交给物业的吗 我老伴不会弄手机", None),     # the shop answers no utilities
])
def test_a_topic_named_in_words(text, topic):
    from actions.common import named_topic
    domain = {"responses": {"utter_faq/repair_fee": [], "utter_faq/privacy": [], "utter_faq/warranty": []}}
    assert named_topic(text, domain) == topic


@pytest.mark.parametrize("text,gives_up", [
    ("唉呀 你这也不会那也不会 咋整啊", True), ("答非所问", True), ("人工智障吧", True),
    ("这个不会坏吧", False), ("我不会用手机", False),
])
def test_giving_up_on_the_assistant(text, gives_up):
    from bot.profile import mentions
    assert mentions.gives_up_on_bot(text) is gives_up


def test_a_call_back_asked_for_with_details_is_handed_over_not_a_form(monkeypatch):
    import actions.service as service
    handed = []
    monkeypatch.setattr(service, "hand_off", lambda dispatcher, tracker, reason: handed.append(reason))
    text = "那你让客服明天给我打个电话嘛 +86 13982740516 我想问下沙发能不能加个贵妃位"
    tracker = _asked([], text, "nlu_fallback", [("faq/contact_channels", 0.34)])
    events = service.HandleFallback().run(CollectingDispatcher(), tracker, {"forms": {"repair_form": {}}})
    assert handed == ["request_human"] and not any(e.get("event") == "followup" for e in events)


@pytest.mark.parametrize("text", ["算啦 唔等喇 我等阵再搵你哋", "唔使等了", "算了不等了"])
def test_cancelling_the_wait_in_cantonese_too(text):
    from bot.support.handoffs import CANCEL_WORDS
    assert CANCEL_WORDS.search(text)


@pytest.mark.parametrize("text", ["对，这回没错了", "对 就这个😊", "没问题"])
def test_agreeing_with_the_read_back_adds_no_note(ticket_store, monkeypatch, text):
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", text)
    assert said.startswith("好的，已确认") and not any(e["kind"] == "note" for e in ticket_store.find(ticket.number).events)


def test_a_push_after_filing_is_kept_and_answered_with_the_promise(ticket_store, monkeypatch):
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", "对 快点来人啊 家里都没法用了")
    assert "着急" in said and "小时" in said and ticket.number in said
    assert any(e["kind"] == "note" for e in ticket_store.find(ticket.number).events)


def _asked_beside(form, slots, text, intent, topic, confidence):
    selector = {"faq": {"response": {"intent_response_key": topic, "confidence": confidence}}}
    tracker = Tracker("web:x", {"form_tries": {}, **slots},
                      {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": [],
                       "response_selector": selector},
                      [_user(text, intent)], False, None, {"name": form.form}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(form.run(dispatcher, tracker, {}))
    return {e["name"]: e["value"] for e in events}, dispatcher.messages


def test_a_policy_question_in_the_message_that_starts_a_complaint_is_answered():
    from actions.forms import ValidateComplaintForm
    text = "我要投诉你们的安装师傅：装完热水器把墙面弄得全是灰也不收拾，说他两句态度还特别冲。投诉一般多久给答复？"
    slots, said = _asked_beside(ValidateComplaintForm(), {"requested_slot": None}, text, "complain",
                                "faq/complaint_process", 0.65)
    assert said[0].get("response") == "utter_faq/complaint_process"
    assert "墙面" in slots["complaint_description"] and "多久" not in slots["complaint_description"]


@pytest.mark.parametrize("text, confidence", [
    ("我要投诉，三天了都没人联系我，你们到底有没有人管？", 0.9),      # venting, no policy asked
    ("我要投诉你们的安装师傅，态度特别冲，投诉一般多久给答复？", 0.3),   # the selector unsure
])
def test_a_question_that_vents_or_is_unsure_is_not_answered_as_a_policy(text, confidence):
    from actions.forms import ValidateComplaintForm
    slots, said = _asked_beside(ValidateComplaintForm(), {"requested_slot": None}, text, "complain",
                                "faq/complaint_process", confidence)
    assert not any(m.get("response") == "utter_faq/complaint_process" for m in said)


def test_a_dispute_read_as_a_complaint_right_after_a_refusal_is_the_refusals_review():
    from actions.forms import ValidateComplaintForm
    refused = {"reason": "window", "days": 23}
    events = [_user("我想退货，二十多天前收到的空气净化器", "request_return"),
              {"event": "slot", "name": "return_dispute", "value": refused}, _bot("抱歉，超过了退货期限")]
    found, _ = start(ValidateComplaintForm(), events, "我不同意，当时下单的时候客服说可以退的，我要个说法",
                     intent="complain", slots={"return_dispute": refused})
    assert found == {"switch_to": "disputed", "requested_slot": None}
    # a complaint of its own after a refusal is still a complaint
    found, _ = start(ValidateComplaintForm(), events, "我要投诉 你们客服态度太差了 一直敷衍我",
                     intent="complain", slots={"return_dispute": refused})
    assert found.get("switch_to") is None and found.get("complaint_description")


def test_a_call_back_asked_for_again_goes_on_the_one_already_booked(ticket_store, monkeypatch):
    import actions.dialogue as dialogue
    monkeypatch.setattr(dialogue, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="callback", category="人工服务", description="转人工", customer_id="web:x",
                                         channel="web", idempotency_key="web:x:cb")
    text = "那算了 明天再说吧…不对 还是留个电话吧 13916025538 让人明天打给我"
    events = [{"event": "user", "text": "现在有人工吗"}, {"event": "bot", "text": f"已为您登记回电工单 {ticket.number}。"},
              {"event": "user", "text": text}]
    tracker = Tracker("web:x", {}, {"text": text, "intent": {"name": "inform"}, "entities": []},
                      events, False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    dialogue.RouteDetail().run(dispatcher, tracker, {})
    assert [t.number for t in ticket_store.for_customer("web:x", open_only=False)] == [ticket.number]
    assert ticket_store.find(ticket.number).phone.endswith("5538")


def _routed_alone(ticket_store, monkeypatch, sender, text):
    """One message, the conversation's first, read as a detail (action_route_detail): what was said."""
    import actions.common as common
    import actions.dialogue as dialogue
    import actions.service as service
    for module in (dialogue, service, common):
        monkeypatch.setattr(module, "store", lambda: ticket_store)
    tracker = Tracker(sender, {}, {"text": text, "intent": {"name": "inform"}, "entities": []},
                      [{"event": "user", "text": text}], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    dialogue.RouteDetail().run(dispatcher, tracker, {})
    return " ".join(m.get("text") or "" for m in dispatcher.messages)


def test_a_forgotten_ticket_number_with_no_ticket_here_goes_to_a_person(ticket_store, monkeypatch):
    said = _routed_alone(ticket_store, monkeypatch, "web:forgetful", "工单号我忘了")
    assert "手机号" in said and "转接" in said
    # in service hours a live person looks it up: no ticket until an agent takes it
    assert ticket_store.for_customer("web:forgetful") == []


def test_asked_again_after_hours_the_booked_call_back_takes_the_phone(ticket_store, monkeypatch):
    import actions.common as common
    import actions.dialogue as dialogue
    import actions.service as service
    for module in (dialogue, service, common):
        monkeypatch.setattr(module, "store", lambda: ticket_store)
    monkeypatch.setattr(service.profile, "within_service_hours", lambda *a, **k: False)
    ticket, _ = ticket_store.open_ticket(kind="callback", category="人工服务", description="叫你们的人出来", customer_id="web:x",
                                         channel="web", idempotency_key="web:x:cb")
    text = "我电话13905718866 明早一上班就给我打过来"
    events = [{"event": "user", "text": "叫你们的人出来说话"}, {"event": "bot", "text": f"已为您登记回电工单 {ticket.number}。"},
              {"event": "user", "text": text}]
    tracker = Tracker("web:x", {}, {"text": text, "intent": {"name": "request_human"}, "entities": []}, events, False,
                      None, {}, "action_listen")
    service.hand_off(CollectingDispatcher(), tracker, "request_human")
    assert [t.number for t in ticket_store.for_customer("web:x")] == [ticket.number]
    assert ticket_store.find(ticket.number).phone.endswith("8866")


@pytest.mark.parametrize("text, confirmed", [("对的 谢谢你们啊", True), ("谢谢", False)])
def test_thanks_with_a_yes_after_filing_confirms_the_ticket_too(ticket_store, monkeypatch, text, confirmed):
    import actions.dialogue as dialogue
    import actions.service as service
    for module in (dialogue, service):
        monkeypatch.setattr(module, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="repair", category="空调", description="不制冷", customer_id="web:x",
                                         channel="web", idempotency_key="web:x:1")
    events = [{"event": "user", "text": "空调不制冷"}, {"event": "bot", "text": f"报修已登记，工单号 {ticket.number}。"},
              {"event": "user", "text": text}]
    tracker = Tracker("web:x", {}, {"text": text, "intent": {"name": "thank"}, "entities": []}, events, False, None,
                      {}, "action_listen")
    dispatcher = CollectingDispatcher()
    service.Thank().run(dispatcher, tracker, {})
    assert dispatcher.messages[-1].get("response") == "utter_you_are_welcome"
    assert any(ticket.number in (m.get("text") or "") for m in dispatcher.messages) is confirmed


def test_an_order_correction_takes_the_new_number_and_a_mention_replaces_nothing(ticket_store, monkeypatch):
    _after_ticket(ticket_store, monkeypatch, "web:x", "订单DD202601010001")
    ticket, _ = _after_ticket(ticket_store, monkeypatch, "web:x", "订单号不是DD202601010001，是DD202601010002")
    assert ticket_store.find(ticket.number).order_id == "DD202601010002"
    _after_ticket(ticket_store, monkeypatch, "web:x", "DD202601010005这个订单也不是好的")
    assert ticket_store.find(ticket.number).order_id == "DD202601010002"


@pytest.mark.parametrize("text", ["不对", "电话不对", "地址错了"])
def test_a_bare_no_after_filing_asks_what_to_change(ticket_store, monkeypatch, text):
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", text)
    assert "哪里需要改" in said and ticket.number in said and "已确认" not in said


def test_a_call_back_asked_for_with_a_phone_keeps_the_phone_out_of_the_description(ticket_store, monkeypatch):
    _routed_alone(ticket_store, monkeypatch, "web:caller", "好的，那麻烦安排人工明天回电给我，号码是 133 2190 5586")
    filed = ticket_store.for_customer("web:caller")
    assert [t.kind for t in filed] == ["callback"] and "2190 5586" not in filed[0].description


@pytest.mark.parametrize("text", ["是的 快！！", "对 就这", "对，麻烦快一点。"])
def test_a_yes_in_few_words_after_filing_confirms(ticket_store, monkeypatch, text):
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", text)
    assert "哪里需要改" not in said and ticket.number in said and "小时" in said


@pytest.mark.parametrize("text", ["对 是的 麻烦你们了", "好的 辛苦了", "嗯嗯 谢谢"])
def test_thanks_with_a_yes_after_filing_confirms_and_adds_no_note(ticket_store, monkeypatch, text):
    ticket, said = _after_ticket(ticket_store, monkeypatch, "web:x", text)
    assert "已确认" in said and ticket.number in said and "小时" in said
    from bot.store.schema import TicketEvent
    from sqlalchemy import select
    with ticket_store.engine.connect() as conn:
        notes = conn.execute(select(TicketEvent.note).where(TicketEvent.kind == "note")).scalars().all()
    assert not notes, "thanks or a push is no note for the agent"
