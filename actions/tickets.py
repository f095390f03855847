"""Turning finished forms into tickets, and answering "where is my ticket?"."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (FAQ_SURE, PROMISE_TOPICS, customer_channel, faq_ranking, follow_up_topic, form_run_key,
                            latest_entity, local_time, promise_text, store, threats, ticket_payload)
from actions.dialogue import form_for, reset, switch
from actions.forms import DISPUTED, NOTED, return_label, summary
from actions.listening import NO_VALUE, PERSON
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
    from actions.listening import REDIRECT

    target = tracker.get_slot("switch_to")
    if target and target.startswith(REDIRECT):      # started by mistake: the other form, no word said
        return switch(dispatcher, tracker, None, target[len(REDIRECT):])
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
        if tracker.get_slot("switch_to") == NOTED:      # kept on the ticket just filed instead
            return reset()
        if tracker.get_slot("switch_to") == DISPUTED:   # a refused return disputed: its review
            return reset() + [FollowupAction("action_record_dispute")]
        if tracker.get_slot("switch_to") == PERSON:     # the line that started it asked for a person
            return reset() + [FollowupAction("action_request_human")]
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
        dispatcher.utter_message(text=pack.say("filed_with_summary", text=text, summary=summary(tracker, self.shown)))
        dispatcher.utter_message(json_message=ticket_payload(ticket, "ticket_created", **note))
        return _reset(self.slots)


class SubmitComplaint(FormFiling, Action):
    """Files the complaint; a repeat complaint or a trigger word makes it high priority."""

    action = "action_submit_complaint"
    form = "complaint_form"
    slots = COMPLAINT_SLOTS
    shown = ("complaint_category", "order_id", "phone")

    def submit(self, dispatcher: CollectingDispatcher, tracker: Tracker):
        description, reasons = with_threats(tracker, _clean(tracker.get_slot("complaint_description")))
        earlier = [t for t in store().for_customer(tracker.sender_id) if t.kind == "complaint"]
        priority = "high" if reasons or earlier else "normal"
        order_id = tracker.get_slot("order_id")
        ticket = self.open_ticket(
            tracker, kind="complaint", category=tracker.get_slot("complaint_category") or parsing.OTHER_CATEGORY,
            description=description, priority=priority, order_id=None if order_id == NO_VALUE else order_id,
            details={"trigger_words": reasons, "repeat": bool(earlier)})
        return self.filed(dispatcher, tracker, ticket, pack.say(
            "complaint_filed", number=ticket.number, category=ticket.category,
            promise=pack.say("promise_hours", hours=sla.promised_hours("complaint", priority)),
            due=local_time(ticket.sla_due_at)), handoff=priority == "high")


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
            tracker, kind="repair", category=product or parsing.OTHER_CATEGORY, product=product,
            description=_clean(tracker.get_slot("fault_description")), priority=priority,
            address=tracker.get_slot("address"), order_id=None if order_id in (None, NO_VALUE) else order_id)
        # the business's wording (its pack's messages.yml), the promise from its profile
        text = pack.say("repair_urgent" if urgent else "repair_normal", number=ticket.number,
                        promise=pack.say("promise_hours", hours=f"{sla.promised_hours('repair', priority):g}"),
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
        label = return_label(kind)
        refused = tracker.get_slot("return_refused")
        order_id = tracker.get_slot("order_id")
        order_id = None if order_id in (None, NO_VALUE) else order_id
        if refused == "custom":
            dispatcher.utter_message(text=pack.say("return_refused_custom"),
                                     buttons=pack.buttons("buttons_return_refused_custom"))
            return _reset(RETURN_SLOTS) + [SlotSet("return_dispute", {
                "why": "custom", "order_id": order_id, "reason": reason, "return_type": kind})]
        if refused or days > window:
            dispatcher.utter_message(text=pack.say("return_refused_window", days=f"{days:g}", label=label),
                                     buttons=pack.buttons("buttons_return_refused_window"))
            return _reset(RETURN_SLOTS) + [SlotSet("return_dispute", {
                "why": "window", "days": days, "order_id": order_id, "reason": reason,
                "return_type": kind})]
        ticket = self.open_ticket(
            tracker, kind="return", category=label, order_id=order_id, description=_clean(reason),
            product=tracker.get_slot("product"),         # what is sent back, for the agent
            details={"return_type": kind, "days_since_receipt": days, "quality_problem": quality,
                     "order_unverified": order_id is None})
        return self.filed(dispatcher, tracker, ticket, pack.say(
            "return_filed", label=label, number=ticket.number,
            order=ticket.order_id or pack.say("return_order_unverified"),
            promise=pack.say("promise_hours", hours=sla.promised_hours("return", "normal")),
            due=local_time(ticket.sla_due_at),
            shipping=pack.say("return_shipping_paid") if quality else ""))


def complaint_lines(tracker: Tracker, messages: int = 12) -> List[str]:
    """What the customer wrote during this complaint, oldest first: every message since the last
    ticket was told, a form was stopped or the session began (the complaint's own turns and the
    ones just before it that started it)."""
    lines: List[str] = []
    for event in reversed(tracker.events or []):
        kind = event.get("event")
        if kind == "bot" and (parsing.find_ticket_number(event.get("text") or "")
                              or (event.get("metadata") or {}).get("utter_action") == "utter_stopped"):
            break
        if kind == "action" and event.get("name") == "action_session_start":
            break
        if kind == "user":
            lines.append(event.get("text") or "")
            if len(lines) >= messages:
                break
    return list(reversed(lines))


def with_threats(tracker: Tracker, description: str) -> Tuple[str, List[str]]:
    """The complaint's description with every threat said during it kept, and the trigger words
    found (the profile's ``high_priority_complaint_keywords``): the whole complaint counts, not
    its first message, so a threat said with the phone or the order number (…再不管我就打12345)
    is on the ticket and makes it high priority."""
    for line in complaint_lines(tracker):
        if threats(line) and line not in description:
            description = f"{description}；{_clean(parsing.ORDER_ID_RE.sub('', line)).strip()}"[:1000]
    return description, threats(description)


def _phone(tracker: Tracker):
    phone = tracker.get_slot("phone")
    return None if phone in (None, NO_VALUE) else details.without_extension(str(phone))


def describe(ticket: TicketView) -> str:
    promise = "" if ticket.status in ("resolved", "closed") else pack.say(
        "ticket_promise", due=local_time(ticket.sla_due_at))
    return pack.say("ticket_line", number=ticket.number, kind=ticket.kind_label, category=ticket.category,
                    status=ticket.status_label, promise=promise)


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
        promised = promise_answer(tracker)      # "什么时候有结果" about the ticket just filed
        if promised:
            dispatcher.utter_message(text=promised)
            return []
        topic = follow_up_topic(tracker) if ((tracker.latest_message.get("intent") or {}).get("confidence") or 0) < 0.5 \
            and not ASKS_PROGRESS.search(text) else None
        if topic:                               # "我在新疆的话呢" after the delivery times, read unsure
            dispatcher.utter_message(response=f"utter_{topic}")
            return []
        from actions.service import help_without_a_number

        if help_without_a_number(dispatcher, tracker):        # 工单号忘了: a person looks it up
            return reset()
        tickets = store().for_customer(tracker.sender_id)
        if not tickets:
            dispatcher.utter_message(text=pack.say("no_open_tickets"))
        else:
            lines = "\n".join(describe(t) for t in tickets[:5])
            dispatcher.utter_message(text=pack.say("open_tickets", count=len(tickets), lines=lines))
        aside = question_beside(tracker)
        if aside:                               # 单号找不到了 你们前台现在还有人吗: both answered
            dispatcher.utter_message(response=f"utter_{aside}")
        return []


ASIDE_LEANING = 0.4      # the FAQ topic a question beside the progress one leans to, at least


def question_beside(tracker: Tracker) -> Optional[str]:
    """A question of its own said with the progress one (``单号找不到了 你们前台现在还有人吗``,
    ``我的工单怎么样了 你们几点下班``): the FAQ topic the selector leans to, when a clause asks
    something that is not about progress; None otherwise."""
    from bot.profile import mentions

    text = (tracker.latest_message or {}).get("text", "")
    clauses = [c for c in re.split(r"[，,。！!？?；;\s]+", details.fold(text)) if c]
    own = [c for c in clauses if mentions.is_question(c) and not ASKS_PROGRESS.search(c)
           and len(re.sub(r"[\W_吗呢啊呀嘛哦在]", "", c)) >= 4]        # 在吗 is a greeting, no question
    if len(clauses) < 2 or not own:
        return None
    ranking = faq_ranking(tracker)
    return ranking[0][0] if ranking and ranking[0][1] >= ASIDE_LEANING else None


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
        return pack.say("ticket_progress", line=describe(result.ticket))
    if result.outcome == lookups.LIMITED:
        return pack.say("lookup_limited")
    if result.outcome == lookups.CHECK_NEEDED:
        return pack.say("lookup_check_needed", number=number)
    return pack.say("lookup_not_found", number=number)


def promise_answer(tracker: Tracker) -> Optional[str]:
    """``多久给我答复啊`` just after a ticket was filed: that ticket's own promise (its hours, its
    due time, what happens by then), not the general answer about reply times. None when the
    message asks no "when", or no ticket of this customer was just told."""
    from actions.dialogue import recent_ticket
    from bot.profile import mentions

    text = (tracker.latest_message or {}).get("text", "")
    if not mentions.asks_when(text):
        return None
    number = recent_ticket(tracker)
    ticket = store().find(number) if number else None
    if ticket is None or ticket.customer_id != tracker.sender_id or ticket.status in ("resolved", "closed"):
        return None
    if _IN_GENERAL.search(text):
        return None                      # 平时在网上留言一般多久有人回: the general answer, asked as such
    # 师傅多久能到 right after a repair: its visit, never the delivery times it sounds like
    visit = ticket.kind == "repair" and _VISIT.search(text)
    ranking = faq_ranking(tracker)
    if ranking and ranking[0][1] >= FAQ_SURE and ranking[0][0] not in PROMISE_TOPICS and not visit:
        return None                      # a policy question of its own (refund 多久到账)
    return ticket_when(ticket)


# asked of the service in general, not of this ticket (平时, 通常, 一般来说, 每次, 以后)
_IN_GENERAL = re.compile(r"平时|平常|通常|一般来说|一般情况|每次|以后|往常|正常情况")
_VISIT = re.compile(r"师傅|工程师|维修工|维修员|上门|来人|到我家|到家")


def ticket_when(ticket) -> str:
    """What the ticket promises: its hours, its due time, what happens by then."""
    number = ticket.number
    what = pack.labels("ticket_when_what")
    kind = f"{ticket.kind}_urgent" if ticket.priority == "urgent" and f"{ticket.kind}_urgent" in what else ticket.kind
    return pack.say("ticket_when", number=number, due=local_time(ticket.sla_due_at),
                    promise=promise_text(ticket.kind, ticket.priority),
                    what=what.get(kind, what["other"]))
