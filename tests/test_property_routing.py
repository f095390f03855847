"""Details a resident gives outside any form (classified ``inform``) start the form they
belong to: a fault is a repair, a grievance a complaint, a bare detail gets "how can I help"."""
from __future__ import annotations

import pytest

from actions.place_forms import routed_form


@pytest.fixture(autouse=True)
def property_business(monkeypatch):
    monkeypatch.setenv("KEFU_BUSINESS", "property")


@pytest.mark.parametrize("text", [
    "5号楼801 厨房下水道堵了 电话13712345678",
    "3栋2单元1201 卫生间水龙头一直滴水",
    "楼道的灯不亮",
    "家里停电了",
    "8-2-301 阳台门关不上",
])
def test_a_fault_told_outside_a_form_is_a_repair(text):
    assert routed_form(text) == "place_repair_form"


@pytest.mark.parametrize("text", ["楼上装修声太吵了", "地下车库的车位被人占了", "保安态度太差"])
def test_a_grievance_told_outside_a_form_is_a_complaint(text):
    assert routed_form(text) == "place_complaint_form"


@pytest.mark.parametrize("text", ["3栋2单元1201", "13712345678", "好的", "地下车库"])
def test_a_bare_detail_starts_nothing(text):
    assert routed_form(text) is None


def _start_repair(text):
    import asyncio

    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.place_forms import ValidatePlaceRepairForm
    domain = {"forms": {"place_repair_form": {"required_slots": ["location", "fault_description", "phone"]}}}
    tracker = Tracker("web:x", {"requested_slot": None, "form_tries": {}},
                      {"text": text, "intent": {"name": "request_repair", "confidence": 0.9}, "entities": []},
                      [{"event": "user", "text": text}], False, None, {"name": "place_repair_form"}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ValidatePlaceRepairForm().run(dispatcher, tracker, domain))
    return {e["name"]: e["value"] for e in events}, [m.get("text") or "" for m in dispatcher.messages]


@pytest.mark.parametrize("text, advice", [
    ("3号楼电梯困人了！我妈在里面", "不要扒门"), ("家里厨房水管爆了 水一直往外冒", "进水总阀"),
    ("楼道里一股煤气味", "燃气总阀"),
])
def test_an_urgent_repair_gets_first_aid_before_the_next_question(text, advice):
    slots, said = _start_repair(text)
    assert slots["urgency"] == "urgent" and any(advice in s and "30分钟" in s for s in said)


def test_a_repair_that_is_not_urgent_gets_no_first_aid():
    slots, said = _start_repair("5号楼801 卫生间水龙头有点滴水，没有漏到别处")
    assert slots.get("urgency") == "normal" and not any("⚠️" in s for s in said)


PLACE_DOMAIN = {"forms": {"place_repair_form": {"required_slots": ["location", "fault_description", "phone"]},
                          "place_complaint_form": {"required_slots": ["complaint_category", "complaint_description",
                                                                      "phone"]}}}


def test_a_complaint_changed_to_a_repair_mid_form_switches_with_what_was_told():
    import asyncio

    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.place_forms import SubmitPlaceComplaint, ValidatePlaceComplaintForm
    text = "算了，不投诉了，直接帮我报修吧，就是2栋3单元的单元门，电话13656789012"
    slots = {"requested_slot": "complaint_description", "form_tries": {}, "complaint_category": "设施",
             "complaint_description": "我们单元门的对讲坏了快一个礼拜了"}
    tracker = Tracker("web:x", slots, {"text": text, "intent": {"name": "request_repair", "confidence": 0.9},
                                       "entities": []},
                      [{"event": "user", "text": text}], False, None, {"name": "place_complaint_form"}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ValidatePlaceComplaintForm().run(dispatcher, tracker, PLACE_DOMAIN))
    found = {e["name"]: e["value"] for e in events}
    assert found["switch_to"] == "place_repair_form" and found["requested_slot"] is None
    assert found["phone"] == "13656789012" and "对讲" in found["fault_description"]
    assert "报修" in dispatcher.messages[0]["text"]
    # the complaint's filing action files nothing and starts the repair
    after = Tracker("web:x", {**slots, **found}, {"text": text, "intent": {"name": "request_repair"}}, [], False,
                    None, {}, "action_listen")
    moved = SubmitPlaceComplaint().run(CollectingDispatcher(), after, PLACE_DOMAIN)
    assert moved[-1] == {"event": "followup", "name": "place_repair_form", "timestamp": None}
    assert not any(e.get("name") == "phone" and e.get("value") is None for e in moved)


def test_a_yes_after_a_filed_repair_confirms_it_with_its_promise(ticket_store, monkeypatch):
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    import actions.dialogue as dialogue
    import actions.place_forms as place_forms
    import actions.service as service
    for module in (dialogue, place_forms, service):
        monkeypatch.setattr(module, "store", lambda: ticket_store)
    ticket, _ = ticket_store.open_ticket(kind="repair", category="户内维修", description="推拉门卡住", customer_id="web:x",
                                         channel="web", idempotency_key="web:x:r")
    events = [{"event": "user", "text": "阳台推拉门卡住了"}, {"event": "bot", "text": f"报修已登记，工单号 {ticket.number}。"},
              {"event": "user", "text": "对"}]
    tracker = Tracker("web:x", {}, {"text": "对", "intent": {"name": "affirm"}, "entities": []}, events, False, None,
                      {}, "action_listen")
    dispatcher = CollectingDispatcher()
    place_forms.PlaceRouteDetail().run(dispatcher, tracker, PLACE_DOMAIN)
    said = dispatcher.messages[0]["text"]
    assert said.startswith("好的，已确认") and ticket.number in said and "24" in said


def test_a_home_without_a_drop_of_water_is_urgent():
    slots, said = _start_repair("家里突然一点水都没有了 水龙头拧开啥也不出 住9栋3单元201")
    assert slots["urgency"] == "urgent"


def test_a_repair_that_turns_out_a_complaint_in_words_switches():
    import asyncio

    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.place_forms import ValidatePlaceRepairForm
    text = "哦不对 不是房子坏了 是楼上半夜一直在敲打 我要投诉噪音 16栋2单元1801 电话180 5761 3329"
    slots = {"requested_slot": "location", "form_tries": {}, "fault_description": "我家天花板老是咚咚响"}
    tracker = Tracker("web:x", slots, {"text": text, "intent": {"name": "complain", "confidence": 0.89}, "entities": []},
                      [{"event": "user", "text": text}], False, None, {"name": "place_repair_form"}, "action_listen")
    events = asyncio.run(ValidatePlaceRepairForm().run(CollectingDispatcher(), tracker, PLACE_DOMAIN))
    found = {e["name"]: e["value"] for e in events}
    assert found["switch_to"] == "place_complaint_form" and found["phone"] == "18057613329"


@pytest.mark.parametrize("text,intent", [("维修师傅态度太差了", "inform"), ("报修了一个星期都没人来修", "inform"),
                                         ("报修和投诉有什么区别？", "inform"), ("维修师傅态度太差了", "request_repair")])
def test_a_repair_mentioned_inside_a_complaint_is_no_switch(text, intent):
    import asyncio

    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.place_forms import ValidatePlaceComplaintForm
    slots = {"requested_slot": "complaint_description", "form_tries": {}, "complaint_category": "服务态度"}
    tracker = Tracker("web:x", slots, {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []},
                      [{"event": "user", "text": text}], False, None, {"name": "place_complaint_form"}, "action_listen")
    events = asyncio.run(ValidatePlaceComplaintForm().run(CollectingDispatcher(), tracker, PLACE_DOMAIN))
    assert not any(e["name"] == "switch_to" for e in events)


def test_a_fire_with_someone_trapped_gets_the_fire_advice():
    slots, said = _start_repair("楼道着火了，有人被困在屋里出不来 5号楼")
    assert any("119" in s for s in said) and not any("扒门" in s for s in said)


@pytest.mark.parametrize("text,topic", [
    ("你好 我家电费是交给物业的吗 我老伴不会弄手机 我也搞不明白", "faq/utilities"),
    ("你们是不是把我电话卖给装修公司了？？天天有人打电话推销！！", "faq/privacy"),
    ("过保了修要钱吗", "faq/repair_scope"),
])
def test_a_topic_the_residents_words_name(text, topic):
    from actions.common import named_topic
    domain = {"responses": {f"utter_{t}": [] for t in ("faq/utilities", "faq/privacy", "faq/repair_scope",
                                                         "faq/renovation")}}
    assert named_topic(text, domain) == topic


@pytest.mark.parametrize("text,about", [("对的 麻烦快一点 我八十多了腿脚不好", True), ("快点来人", True),
                                        ("明天会下雨吗", False)])
def test_a_push_or_a_yes_right_after_filing_is_about_the_ticket(text, about):
    from actions.dialogue import pushes_or_agrees
    assert pushes_or_agrees(text) is about
