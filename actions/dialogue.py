"""Changes of course: stopping a form, switching to another, disputing a refusal, going off topic.

``action_stop_form`` runs after a form is deactivated (stop, or another form's intent) and
outside forms on ``stop``: ``算了，还是退货吧`` is a switch, not a stop, and a switch carries
over what applies (the order number to a return, the phone to a repair).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import customer_channel, latest_turn_key, store
from bot.profile import details, mentions, parsing, privacy

FORMS = ("complaint_form", "repair_form", "return_form")
FORM_FIELDS = {
    "complaint_form": ("complaint_category", "complaint_description", "order_id", "phone"),
    "repair_form": ("product", "fault_description", "address", "phone", "order_id"),
    "return_form": ("order_id", "return_type", "return_reason", "days_since_receipt"),
}
BOOKKEEPING = ("form_tries", "form_confirmed", "switch_to", "return_refused", "urgency")
ALL_SLOTS = tuple(dict.fromkeys(f for fields in FORM_FIELDS.values() for f in fields)) + BOOKKEEPING
LABEL = {"complaint_form": "投诉", "repair_form": "报修", "return_form": "退换货"}
INTENT_FORM = {"complain": "complaint_form", "request_repair": "repair_form",
               "request_return": "return_form"}


def reset(keep: tuple = ()) -> List[Dict[Text, Any]]:
    """Every form slot forgotten (but ``keep``), and no question pending."""
    return [SlotSet(name, None) for name in ALL_SLOTS if name not in keep] + [
        SlotSet("requested_slot", None)]


def stopped_form(tracker: Tracker) -> Optional[str]:
    """The form deactivated during this turn (since the latest customer message), if any."""
    last_named = None
    closed = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            break
        if event.get("event") == "active_loop":
            if event.get("name") is None:
                closed = True
            elif closed and last_named is None:
                last_named = event.get("name")
    if closed and last_named is None:
        for event in reversed(tracker.events):
            if event.get("event") == "active_loop" and event.get("name") in FORMS:
                return event.get("name")
    return last_named


def switch(dispatcher: CollectingDispatcher, tracker: Tracker, source: Optional[str],
           target: str) -> List[Dict[Text, Any]]:
    """Leave ``source`` for ``target``: say so, keep the details both need, start ``target``."""
    keep = tuple(f for f in FORM_FIELDS[target] if source and f in FORM_FIELDS[source]
                 and tracker.get_slot(f) not in (None, ""))
    moved = carried_over(tracker, source, target)
    if source:
        named = [{"order_id": "订单号", "phone": "电话"}.get(f, f) for f in keep if f in ("order_id", "phone")]
        named += ["问题描述"] if moved else []
        carried = "，已填的" + "、".join(named) + "会沿用" if named else ""
        dispatcher.utter_message(text=f"好的，不办{LABEL[source]}了，改为帮您办理{LABEL[target]}{carried}。")
    return reset(keep) + [SlotSet(name, value) for name, value in moved.items()] + [FollowupAction(target)]


def carried_over(tracker: Tracker, source: Optional[str], target: str) -> Dict[str, Any]:
    """What one form's answers tell another: a repair's fault is the reason for a return,
    a refused or abandoned return's reason the fault to repair."""
    told = {"repair_form": "fault_description", "return_form": "return_reason",
            "complaint_form": "complaint_description"}
    wanted = {"repair_form": "fault_description", "return_form": "return_reason"}.get(target)
    value = tracker.get_slot(told[source]) if source in told else None
    if not wanted or not value or source == target:
        return {}
    if wanted == "fault_description" and not mentions.mentions_fault(str(value)):
        return {}
    if wanted == "return_reason":
        value = mentions.reason_in(str(value)) or (value if source == "repair_form" else None)
    return {wanted: str(value)[:500]} if value else {}


class StopForm(Action):
    """Stop, or switch: the customer's own words decide (``不投诉了，我要退货`` is a switch)."""

    def name(self) -> Text:
        return "action_stop_form"

    def run(self, dispatcher, tracker: Tracker, domain):
        source = stopped_form(tracker)
        text = (tracker.latest_message or {}).get("text", "")
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        target = tracker.get_slot("switch_to") or details.switch_target(text, source)
        if target is None and INTENT_FORM.get(intent) not in (None, source):
            target = INTENT_FORM[intent]
        if target in FORMS and target != source:
            return switch(dispatcher, tracker, source, target)
        if source is None:
            dispatcher.utter_message(response="utter_nothing_to_stop")
            return reset()
        dispatcher.utter_message(response="utter_stopped")
        return reset()


def consecutive(tracker: Tracker, intents: tuple) -> int:
    """How many of the latest customer messages in a row had one of ``intents``."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") not in intents:
            break
        count += 1
    return count


class OutOfScope(Action):
    """Off-topic once: say what the assistant does. Again and again: offer a person or a call."""

    def name(self) -> Text:
        return "action_out_of_scope"

    def run(self, dispatcher, tracker: Tracker, domain):
        if consecutive(tracker, ("out_of_scope", "nlu_fallback")) >= 2:
            dispatcher.utter_message(
                text="看来我没能帮上忙 😅 需要的话我可以为您转人工客服，或登记回电由客服打给您。",
                buttons=[{"title": "转人工", "payload": "转人工"},
                         {"title": "投诉", "payload": "我要投诉"},
                         {"title": "报修", "payload": "我要报修"}])
        else:
            dispatcher.utter_message(response="utter_out_of_scope")
        return []


class RecordDispute(Action):
    """A refused return the customer disputes: a follow-up ticket for an agent to review."""

    def name(self) -> Text:
        return "action_record_dispute"

    def run(self, dispatcher, tracker: Tracker, domain):
        refused = tracker.get_slot("return_dispute")
        if not refused:
            dispatcher.utter_message(text="请问是对哪件事有异议？可以说说具体情况，或回复“投诉”登记、“转人工”找客服。")
            return []
        ticket, _ = store().open_ticket(
            kind="return", category="退货复核", customer_id=tracker.sender_id,
            channel=customer_channel(tracker), idempotency_key=latest_turn_key(tracker, "dispute"),
            description=f"客户对退换货结果有异议：{(tracker.latest_message or {}).get('text', '')}",
            order_id=refused.get("order_id"), priority="normal",
            details={"refused": refused, "disputed": True})
        dispatcher.utter_message(text=(
            f"已为您记录复核申请，工单号 {ticket.number}。售后专员会核实您的情况后联系您，"
            f"随时发送工单号即可查询进度。"))
        return [SlotSet("return_dispute", None)]


FAULT_WORDS = ("修", "坏", "故障", "不制冷", "不转", "黑屏", "漏", "响", "不开机", "开不了机", "没反应",
               "不工作", "塌", "不脱水", "不甩干", "不出", "冒烟", "火花")


class RouteDetail(Action):
    """Details given outside any form (``报修 电视 黑屏 …地址… 电话``): the form they belong to
    starts and takes them all; anything else gets the usual "how can I help"."""

    def name(self) -> Text:
        return "action_route_detail"

    def run(self, dispatcher, tracker: Tracker, domain):
        from bot.profile import business as profile

        message = tracker.latest_message or {}
        text = message.get("text", "")
        if parsing.find_ticket_number(text):          # a bare ticket number: its progress
            from actions.tickets import CheckTicket
            return CheckTicket().run(dispatcher, tracker, domain)
        target = form_for(message, profile.load_profile().get("high_priority_complaint_keywords", []))
        if target:
            return reset() + [FollowupAction(target)]
        number = recent_ticket(tracker)
        if number and number not in {t.number for t in store().for_customer(tracker.sender_id, open_only=False)}:
            number = None                             # a ticket looked up, not this customer's own
        if number:                                    # a line about the ticket just filed
            told = ""
            phone = details.find_phone(text)
            if phone:                                 # the number to call back: on the ticket
                store().set_phone(number, phone[1], actor="customer")
                told = f"已记下您的联系电话 {privacy.mask_phone(phone[1])}，"
            rest = details.PHONE_ANY.sub("", details.fold(text)) if phone else text
            if len(re.sub(r"[\W好的嗯哦行是对了吧啊呀电话号码手机是我的]|(?i:my|number|phone|is)", "", rest)) >= 4:
                # kept on the ticket for the agent (phones, order numbers, addresses masked)
                store().add_note(number, "客户补充：" + privacy.mask_customer_text(text)[:300], actor="customer")
                told += "已把您这句话补充到工单里，"
            follow = "客服会打这个号码联系您" if phone else "客服会按您留的联系方式跟进"
            dispatcher.utter_message(text=(
                f"好的，{told}您的工单 {number} 已登记，{follow}；还有其他问题随时告诉我。"))
            return []
        dispatcher.utter_message(response="utter_how_can_help")
        return []


def form_for(message: Dict[str, Any], triggers=()) -> Optional[str]:
    """The form a message outside any form belongs to, from what it carries: a request word,
    a product with a fault, a product, order number or date with 退/换, a trigger word."""
    text = message.get("text", "") or ""
    target = details.switch_target(text, None)
    product = any(e.get("entity") == "product" for e in message.get("entities", [])) \
        or mentions.english_product(text) is not None
    if target is None and details.return_type(text) and (
            product or parsing.find_order_id(text) or details.days_since(text, _today()) is not None):
        target = "return_form"
    if target is None and product and (any(w in text for w in FAULT_WORDS) or mentions.mentions_fault(text)):
        target = "repair_form"
    if target is None and any(str(w) in text for w in triggers):
        target = "complaint_form"
    return target


def _today():
    from bot.profile import business as profile

    return profile.now().astimezone(profile.shop_tz()).date()


def recent_ticket(tracker: Tracker, messages: int = 2) -> Optional[str]:
    """The ticket number told in the last ``messages`` answers, if any."""
    seen = 0
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            seen += 1
            if seen > messages:
                return None
        elif event.get("event") == "bot":
            number = parsing.find_ticket_number(event.get("text") or "")
            if number:
                return number
    return None
