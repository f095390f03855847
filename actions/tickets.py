"""Turning finished forms into tickets, and answering "where is my ticket?"."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (customer_channel, form_run_key, latest_entity, local_time, store,
                            ticket_payload)
from actions.dialogue import form_for, reset, switch
from actions.forms import summary
from bot.profile import details, parsing
from bot.profile import business as profile
from bot.profile import pack
from bot.profile import sla
from bot.store import lookups
from bot.store.tickets import TicketView

COMPLAINT_SLOTS = ("complaint_category", "complaint_description", "order_id")
REPAIR_SLOTS = ("product", "fault_description", "address", "urgency", "order_id")
RETURN_SLOTS = ("order_id", "return_type", "return_reason", "days_since_receipt", "product")


def _reset(slots) -> List[Dict[Text, Any]]:
    """After a form is finished: every form slot forgotten (the phone too: a later form asks
    again rather than reuse a number silently)."""
    return reset()


def _switched(dispatcher, tracker: Tracker, form: str):
    """The form ended because the customer changed course (actions/listening.py)."""
    target = tracker.get_slot("switch_to")
    return switch(dispatcher, tracker, form, target) if target else None


def _clean(text: str) -> str:
    """A description keeps no phone number in clear (the ticket has it, encrypted)."""
    return details.strip_phone(text or "")


class FormFiling:
    """A finished form filed as a ticket (mixed into each submit action): the form's run key,
    channel and phone go with every ticket; the answer reads back what was registered, with
    the structured note, and forgets the form. A customer who changed course files nothing."""

    action = ""
    form = ""
    slots: Tuple[str, ...] = ()
    shown: Tuple[str, ...] = ()

    def name(self) -> Text:
        return self.action

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        switched = _switched(dispatcher, tracker, self.form)
        if switched is not None:
            return switched
        return self.submit(dispatcher, tracker)

    def submit(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[Dict[Text, Any]]:
        raise NotImplementedError

    def open_ticket(self, tracker: Tracker, **fields: Any) -> TicketView:
        ticket, _ = store().open_ticket(
            customer_id=tracker.sender_id, channel=customer_channel(tracker),
            idempotency_key=form_run_key(tracker, self.form), phone=_phone(tracker), **fields)
        return ticket

    def filed(self, dispatcher: CollectingDispatcher, tracker: Tracker, ticket: TicketView, text: str,
              **note: Any) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=text + f"\n登记信息：{summary(tracker, self.shown)}。")
        dispatcher.utter_message(json_message=ticket_payload(ticket, "ticket_created", **note))
        return _reset(self.slots)


class SubmitComplaint(FormFiling, Action):
    """Files the complaint; a repeat complaint or a trigger word makes it high priority."""

    action = "action_submit_complaint"
    form = "complaint_form"
    slots = COMPLAINT_SLOTS
    shown = ("complaint_category", "order_id", "phone")

    def submit(self, dispatcher: CollectingDispatcher, tracker: Tracker):
        description = _clean(tracker.get_slot("complaint_description"))
        triggers = profile.load_profile()["high_priority_complaint_keywords"]
        earlier = [t for t in store().for_customer(tracker.sender_id) if t.kind == "complaint"]
        reasons = [str(w) for w in triggers if str(w) in description]
        priority = "high" if reasons or earlier else "normal"
        order_id = tracker.get_slot("order_id")
        ticket = self.open_ticket(
            tracker, kind="complaint", category=tracker.get_slot("complaint_category") or "其他",
            description=description, priority=priority, order_id=None if order_id == "无" else order_id,
            details={"trigger_words": reasons, "repeat": bool(earlier)})
        return self.filed(dispatcher, tracker, ticket, (
            f"您的投诉已登记，工单号 {ticket.number}（类型：{ticket.category}）。"
            f"我们会在 {sla.promised_hours('complaint', priority)} 小时内（{local_time(ticket.sla_due_at)} 前）"
            f"给您首次答复，处理完成后还会回访。随时发送工单号即可查询进度。"), handoff=priority == "high")


class SubmitRepair(FormFiling, Action):
    """Files the repair; an urgent fault gets the on-site promise, others a contact promise."""

    action = "action_submit_repair"
    form = "repair_form"
    slots = REPAIR_SLOTS
    shown = ("product", "address", "phone")

    def submit(self, dispatcher: CollectingDispatcher, tracker: Tracker):
        urgent = tracker.get_slot("urgency") == "urgent"
        priority = "urgent" if urgent else "normal"
        product = tracker.get_slot("product")
        order_id = tracker.get_slot("order_id")
        ticket = self.open_ticket(
            tracker, kind="repair", category=product or "其他", product=product,
            description=_clean(tracker.get_slot("fault_description")), priority=priority,
            address=tracker.get_slot("address"), order_id=None if order_id in (None, "无") else order_id)
        # the business's wording (its pack's messages.yml), the promise from its profile
        text = pack.say("repair_urgent" if urgent else "repair_normal", number=ticket.number,
                        promise=f"{sla.promised_hours('repair', priority):g} 小时",
                        due=local_time(ticket.sla_due_at), phone=ticket.phone)
        return self.filed(dispatcher, tracker, ticket, text)


class SubmitReturn(FormFiling, Action):
    """Checks the policy window from the profile; files the return only when it applies."""

    action = "action_submit_return"
    form = "return_form"
    slots = RETURN_SLOTS
    shown = ("product", "order_id", "return_reason", "days_since_receipt", "phone")

    def submit(self, dispatcher: CollectingDispatcher, tracker: Tracker):
        rules = profile.load_profile()["returns"]
        kind = tracker.get_slot("return_type") or "return"
        reason = tracker.get_slot("return_reason") or ""
        days = float(tracker.get_slot("days_since_receipt") or 0)
        quality = parsing.is_quality_problem(reason)
        window = rules["quality_exchange_days"] if (kind == "exchange" and quality) else rules["no_reason_days"]
        label = "换货" if kind == "exchange" else "退货"
        refused = tracker.get_slot("return_refused")
        order_id = tracker.get_slot("order_id")
        order_id = None if order_id in (None, "无") else order_id
        if refused == "custom":
            dispatcher.utter_message(text=(
                f"抱歉，{rules.get('excluded', '定制类商品')}不支持无理由退换货。如果商品有质量问题，可以申请保修维修"
                f"（回复“报修”）；对结果有异议请回复“申请复核”，我会记录下来交给售后专员核实。"),
                buttons=[{"title": "申请复核", "payload": "申请复核"}, {"title": "转人工", "payload": "转人工"}])
            return _reset(RETURN_SLOTS) + [SlotSet("return_dispute", {
                "why": "custom", "order_id": order_id, "reason": reason, "return_type": kind})]
        if refused or days > window:
            dispatcher.utter_message(text=(
                f"抱歉，您的商品已签收约 {days:g} 天，超过了{label}期限"
                f"（无理由退货 {rules['no_reason_days']} 天，质量问题换货 {rules['quality_exchange_days']} 天），"
                f"这次没法直接办理{label}。如果商品有质量问题，可以申请保修维修（回复“报修”）；"
                f"对结果有异议请回复“申请复核”，我会记录下来交给售后专员核实。"),
                buttons=[{"title": "申请复核", "payload": "申请复核"}, {"title": "报修", "payload": "我要报修"}])
            return _reset(RETURN_SLOTS) + [SlotSet("return_dispute", {
                "why": "window", "days": days, "order_id": order_id, "reason": reason,
                "return_type": kind})]
        ticket = self.open_ticket(
            tracker, kind="return", category=label, order_id=order_id, description=_clean(reason),
            product=tracker.get_slot("product"),         # what is sent back, for the agent
            details={"return_type": kind, "days_since_receipt": days, "quality_problem": quality,
                     "order_unverified": order_id is None})
        return self.filed(dispatcher, tracker, ticket, (
            f"{label}申请已提交，工单号 {ticket.number}（订单 {ticket.order_id or '待客服核实'}）。"
            f"售后会在 {sla.promised_hours('return', 'normal')} 小时内（{local_time(ticket.sla_due_at)} 前）"
            f"审核并告诉您寄回方式{'，质量问题运费由我们承担' if quality else ''}。"))


def _phone(tracker: Tracker):
    phone = tracker.get_slot("phone")
    return None if phone in (None, "无") else str(phone).split("转")[0]


def describe(ticket: TicketView) -> str:
    promise = "" if ticket.status in ("resolved", "closed") else f"，承诺时间 {local_time(ticket.sla_due_at)}"
    return f"{ticket.number}｜{ticket.kind_label}·{ticket.category}｜{ticket.status_label}{promise}"


class CheckTicket(Action):
    """By ticket number when the customer gives one, else the customer's own open tickets.

    Someone else's ticket is shown only with the last 4 digits of the phone it was filed
    with (bot/store/lookups.py: TicketLookup, rate-limited per conversation); what is shown
    holds no personal data.
    """

    def name(self) -> Text:
        return "action_check_ticket"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        text = tracker.latest_message.get("text", "")
        number = parsing.find_ticket_number(latest_entity(tracker, "ticket_id") or "") \
            or parsing.find_ticket_number(text)
        if number:
            dispatcher.utter_message(text=answer_ticket_number(tracker, number, text))
            return [SlotSet("ticket_id", None)]
        routed = misread_request(tracker, domain)
        if routed:
            return routed
        tickets = store().for_customer(tracker.sender_id)
        if not tickets:
            dispatcher.utter_message(text="您目前没有处理中的工单。如果是在其他渠道提交的，请发送工单号（KF开头）给我查询。")
        else:
            lines = "\n".join(describe(t) for t in tickets[:5])
            dispatcher.utter_message(text=f"您有 {len(tickets)} 个处理中的工单：\n{lines}")
        return []


ASKS_PROGRESS = re.compile(r"进度|到哪|查|状态|怎么样了|处理了|处理得|结果|回复|多久|工单|单子|(?i:status|progress|ticket)")


def misread_request(tracker: Tracker, domain) -> Optional[List[Dict[Text, Any]]]:
    """A message the classifier took, unsure, for a progress question, that asks nothing about
    progress but carries a form's details (``…漏水能不能给我换一台新的``): that form starts."""
    message = tracker.latest_message or {}
    if ((message.get("intent") or {}).get("confidence") or 0) >= 0.5 or ASKS_PROGRESS.search(message.get("text", "")):
        return None
    target = form_for(message)
    if target and target in ((domain or {}).get("forms") or {}):
        return reset() + [FollowupAction(target)]
    return None


def answer_ticket_number(tracker: Tracker, number: str, text: str) -> str:
    """The progress of ticket ``number`` as the customer may see it (the phone check for
    someone else's ticket)."""
    result = ticket_lookup().by_number(number, customer_id=tracker.sender_id,
                                       check_digits=parsing.check_digits(text))
    return lookup_answer(number, result)


@lru_cache(maxsize=1)
def ticket_lookup() -> lookups.TicketLookup:
    return lookups.TicketLookup(store())


def lookup_answer(number: str, result: lookups.LookupResult) -> str:
    if result.outcome == lookups.SHOWN:
        return "工单进度：" + describe(result.ticket)
    if result.outcome == lookups.LIMITED:
        return "查询次数有点多，请稍后再试；着急的话回复“转人工”，客服核实身份后帮您查询。"
    if result.outcome == lookups.CHECK_NEEDED:
        return (f"为保护客户隐私，查询工单 {number} 需要核验：请把工单号和提交时留的手机号后4位一起发给我，"
                f"例如“查工单 {number} 尾号1234”。在提交工单的这个对话里查询则不用核验。")
    return (f"没有找到与这个手机号匹配的工单 {number}。请核对工单号（KF开头加14位数字，早期工单为10位）"
            f"和手机号后4位；没留手机号的工单请在提交它的对话里查询，或回复“转人工”。")
