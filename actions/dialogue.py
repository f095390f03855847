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

from actions.common import (answered_misses, customer_channel, follow_up_topic, latest_turn_key, leaning_topic,
                            named_topic, store, threats, ticket_payload)
from bot.profile import details, mentions, pack, parsing, privacy

FORMS = ("complaint_form", "repair_form", "return_form")
FORM_FIELDS = {
    "complaint_form": ("complaint_category", "complaint_description", "order_id", "phone"),
    "repair_form": ("product", "fault_description", "address", "phone", "order_id"),
    "return_form": ("order_id", "return_type", "return_reason", "days_since_receipt", "product", "phone"),
}
BOOKKEEPING = ("form_tries", "form_confirmed", "switch_to", "return_refused", "urgency")
ALL_SLOTS = tuple(dict.fromkeys(f for fields in FORM_FIELDS.values() for f in fields)) + BOOKKEEPING
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
        fields, forms = pack.labels("field_names"), pack.labels("form_names")
        named = [fields[f] for f in keep if f in ("order_id", "phone")]
        named += [pack.say("switch_carried_problem")] if moved else []
        carried = pack.say("switch_carried", fields=pack.say("list_separator").join(named)) if named else ""
        kind = details.return_type((tracker.latest_message or {}).get("text", "")) if target == "return_form" else None
        # 不投诉了，我要退货: the return it is, by name (退货, 换货), not the form's general name
        label = forms[target] if not kind else (
            pack.say("return_type_return") if kind == "return" else pack.say("return_type_exchange"))
        dispatcher.utter_message(text=pack.say("switch_form", source=forms[source], target=label,
                                               carried=carried))
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
        from actions.service import hand_off, wants_person

        if wants_person(text):          # 算了 转人工吧: stop this, and a person
            hand_off(dispatcher, tracker, "request_human")
            return reset()
        target = tracker.get_slot("switch_to") or details.switch_target(text, source)
        if target is None and INTENT_FORM.get(intent) not in (None, source):
            target = INTENT_FORM[intent]
        if target in FORMS and target != source:
            return switch(dispatcher, tracker, source, target)
        if source is None and (carries_details(text) or not mentions.says_stop(text) and own_recent_ticket(tracker)):
            # nothing to stop, and the message takes its "算了" back with a phone or an order
            # number (算了…不对 还是留个电话吧 139…), or says no stop in words right after a ticket
            # (太大了 放不下, misread): a detail, for the ticket just filed or a form
            return RouteDetail().run(dispatcher, tracker, domain)
        if source is None:
            dispatcher.utter_message(response="utter_nothing_to_stop")
            return reset()
        dispatcher.utter_message(response="utter_stopped")
        return reset()


SURE_OFF_TOPIC = 0.8       # an out_of_scope this likely is off topic, not a misread question


class OutOfScope(Action):
    """Off-topic once: say what the assistant does. Again and again: offer a person or a call."""

    def name(self) -> Text:
        return "action_out_of_scope"

    def run(self, dispatcher, tracker: Tracker, domain):
        from actions.tickets import promise_answer

        promised = promise_answer(tracker)           # "多久给我答复" about the ticket just filed
        if promised:
            dispatcher.utter_message(text=promised)
            return []
        # 能不能找个真人客服 帮我看看…: whatever else it is about, a person was asked for
        person = asked_for_a_person(dispatcher, tracker, reset())
        if person is not None:
            return person
        text = (tracker.latest_message or {}).get("text", "") or ""
        number = own_recent_ticket(tracker)
        if number and pushes_or_agrees(text):
            add_to_ticket(dispatcher, number, text)      # 对的 麻烦快一点 …
            return []
        # a follow-up to the answer just given, or a misread question (运废多少): the FAQ answer
        # (only when the classifier is unsure it is off topic: "帮我查下彩票号码" said at 0.96 is no
        # question to answer from whatever the FAQ selector ranks first)
        sure = ((tracker.latest_message or {}).get("intent") or {}).get("confidence") or 0
        topic = named_topic(text, domain) or follow_up_topic(tracker) or (
            leaning_topic(tracker, 0.4) if sure < SURE_OFF_TOPIC else None)
        if topic:
            dispatcher.utter_message(response=f"utter_{topic}")
            return []
        if sure < SURE_OFF_TOPIC and ask_about_product(dispatcher, tracker):    # "洗衣几" alone
            return []
        if answered_misses(tracker, ("out_of_scope", "nlu_fallback")) >= 2:
            dispatcher.utter_message(text=pack.say("out_of_scope_again"),
                                     buttons=pack.buttons("buttons_out_of_scope_again"))
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
            dispatcher.utter_message(text=pack.say("dispute_what_about"))
            return []
        return record_dispute(dispatcher, tracker, refused)


def record_dispute(dispatcher: CollectingDispatcher, tracker: Tracker, refused: Dict[str, Any]) -> List[Dict[Text, Any]]:
    """The follow-up ticket for an agent to review a refused return, with the phone and order
    number the customer's message gives (masked in the description)."""
    text = (tracker.latest_message or {}).get("text", "")
    phone = details.find_phone(text)
    ticket, _ = store().open_ticket(
        kind="return", category=pack.say("dispute_category"), customer_id=tracker.sender_id,
        channel=customer_channel(tracker), idempotency_key=latest_turn_key(tracker, "dispute"),
        description=pack.say("dispute_description", text=privacy.mask_customer_text(text)[:500]),
        order_id=refused.get("order_id") or parsing.find_order_id(text), priority="normal",
        phone=details.without_extension(phone[1]) if phone else None,
        details={"refused": refused, "disputed": True})
    dispatcher.utter_message(text=pack.say("dispute_filed", number=ticket.number))
    return [SlotSet("return_dispute", None)]


def refused_just_now(tracker: Tracker, messages: int = 2) -> Optional[Dict[str, Any]]:
    """The refused return of the last ``messages`` customer turns still open to review, if any."""
    refused = tracker.get_slot("return_dispute")
    if not refused:
        return None
    seen = 0
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            seen += 1
            if seen > messages:
                return None
        elif event.get("event") == "slot" and event.get("name") == "return_dispute" and event.get("value"):
            return refused
    return None



class Greet(Action):
    """A greeting; one that also tells a request with its details (``同志你好 我家燃气灶好像漏气了
    有股味道``) is greeted briefly and that form starts and takes them."""

    def name(self) -> Text:
        return "action_greet"

    def run(self, dispatcher, tracker: Tracker, domain):
        from bot.profile import business as profile

        message = tracker.latest_message or {}
        text = message.get("text", "") or ""
        target = None if mentions.is_question(text) else \
            form_for(message, profile.load_profile().get("high_priority_complaint_keywords", []))
        if target and target in ((domain or {}).get("forms") or {}):
            dispatcher.utter_message(text=pack.labels("social_leads").get("greet", ""))
            return reset() + [FollowupAction(target)]
        dispatcher.utter_message(response="utter_greet")
        return []


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
        person = asked_for_a_person(dispatcher, tracker, reset())
        if person is not None:
            return person
        target = form_for(message, profile.load_profile().get("high_priority_complaint_keywords", [])) \
            or form_of_fragments(tracker)
        if target and target in ((domain or {}).get("forms") or {}):     # this business's forms only
            return reset() + [FollowupAction(target)]
        refused = refused_just_now(tracker)
        if refused and (carries_details(text) or disputes(text, refused)):   # details or "不同意" after a refusal:
            return record_dispute(dispatcher, tracker, refused)    # an agent reviews it and calls
        routed = route_by_context(tracker, domain)    # details after a request (换货 … DD…)
        if routed:
            return routed
        answered = answer_beside_forms(dispatcher, tracker, reset(), domain)
        if answered is not None:
            return answered
        if ask_about_product(dispatcher, tracker):    # "冰箱" alone: what about it?
            return []
        dispatcher.utter_message(response="utter_how_can_help")
        return []


def asked_for_a_person(dispatcher: CollectingDispatcher, tracker: Tracker,
                       cleared: List[Dict[Text, Any]]) -> Optional[List[Dict[Text, Any]]]:
    """Before a line's details start a form: a person or a call back asked for in words
    (``那你让客服明天给我打个电话嘛 +86 139…``) is handed over, unless a call back is already
    booked (the line goes on it); a customer who gives up on the assistant (``你这也不会那也不会``)
    is offered a person or a call. The events to return, or None."""
    from actions.service import hand_off, wants_person

    text = (tracker.latest_message or {}).get("text", "") or ""
    if wants_person(text):
        number = own_recent_ticket(tracker)
        if number is None or getattr(store().find(number), "kind", None) != "callback":
            hand_off(dispatcher, tracker, "request_human")
            return cleared
    if mentions.gives_up_on_bot(text):
        dispatcher.utter_message(text=pack.say("out_of_scope_again"), buttons=pack.buttons("buttons_out_of_scope_again"))
        return []
    return None


def answer_beside_forms(dispatcher: CollectingDispatcher, tracker: Tracker, cleared: List[Dict[Text, Any]],
                        domain: Optional[Dict[Text, Any]] = None) -> Optional[List[Dict[Text, Any]]]:
    """A line outside any form that starts none, in every business (action_route_detail,
    action_place_route_detail): "那多久能处理" about the ticket just filed gets its promise;
    工单号我忘了 a person; a line about the ticket just filed (对 / 快点来人 / a phone, or a
    person asked for when a call back is already booked: the wish) goes on it; a follow-up or a
    question read as a detail (那质量问题呢) the FAQ topic it leans on. A person asked for in
    words is :func:`asked_for_a_person`'s, which both callers ask first. The events to return
    (``cleared`` after a handoff), or None when none of these."""
    from actions.service import help_without_a_number
    from actions.tickets import promise_answer

    text = (tracker.latest_message or {}).get("text", "") or ""
    promised = promise_answer(tracker)
    if promised:
        dispatcher.utter_message(text=promised)
        return []
    if help_without_a_number(dispatcher, tracker):
        return cleared
    number = own_recent_ticket(tracker)
    if number:
        add_to_ticket(dispatcher, number, text)
        return []
    topic = named_topic(text, domain) or follow_up_topic(tracker) or leaning_topic(tracker, 0.4)
    if topic:
        dispatcher.utter_message(response=f"utter_{topic}")
        return []
    return None


def carries_item(message: Dict[str, Any]) -> bool:
    """The message names the item or the order (a product, an order number, when it came)."""
    text = message.get("text", "") or ""
    return carries_product(message) or bool(parsing.find_order_id(text)) \
        or details.days_since(text, _today()) is not None


def form_of_fragments(tracker: Tracker, messages: int = 3) -> Optional[str]:
    """The form a request told in pieces outside any form belongs to (``电视`` then ``黑屏了
    开不了机``): this message names a product or a fault and is no question, and with the
    customer's last messages no form read (not a FAQ answered with confidence) it names a form."""
    from actions.listening import earlier_messages

    message = tracker.latest_message or {}
    text = message.get("text", "") or ""
    if mentions.is_question(text) or not (mentions.mentions_fault(text) or carries_product(message)):
        return None
    earlier = earlier_messages(tracker, messages)
    if not earlier:
        return None
    told = earlier + [message]
    return form_for({"text": " ".join(m.get("text") or "" for m in told),
                     "entities": [e for m in told for e in m.get("entities") or [] if e.get("entity") == "product"]})


_FILLER = re.compile(r"[\s\W_的那个这我家咱俺呃啊呀哦嗯额诶哈啦]")


def bare_product(message: Dict[str, Any]) -> Optional[str]:
    """The product a message names and nothing else (``冰箱``, ``我家那个洗衣几``): what about it
    is still to ask."""
    text = message.get("text", "") or ""
    named = [str(e.get("value")) for e in message.get("entities") or [] if e.get("entity") == "product" and e.get("value")]
    product = named[-1] if named else mentions.named_product(text)
    if not product or mentions.is_question(text) or mentions.mentions_fault(text):
        return None
    return product if len(_FILLER.sub("", details.fold(text))) - len(product) <= 2 else None


def ask_about_product(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """A product named alone: asked what about it (repair, return, a question). True when asked."""
    product = bare_product(tracker.latest_message or {})
    if product:
        dispatcher.utter_message(text=pack.say("product_only", product=product))
    return product is not None


def carries_product(message: Dict[str, Any]) -> bool:
    """The message names a product: an extracted one, or one named in English or misspelt by sound."""
    return any(e.get("entity") == "product" for e in message.get("entities", [])) \
        or mentions.named_product(message.get("text", "") or "") is not None


# disagreeing with a refusal (我不同意，当时客服说可以退的，我要个说法)
_DISPUTES = re.compile(r"不同意|不服|不认可|不接受|不合理|不公平|凭什么|说法|讲理|复核|申诉|异议|明明|说(?:了)?可以退|"
                       # the fault is the shop's, not the customer's (尺寸是你们做错的, 是你们发错了)
                       r"你们[^，,。？?]{0,3}(?:做错|弄错|发错|搞错|量错|装错)|是你们的(?:问题|错|责任)|你们的(?:责任|问题)|"
                       r"不是我的(?:问题|错|责任)|"
                       r"说(?:了)?能退|"
                       # a plea against it (可以通融, 帮我反映一下, 这样也不行吗, 能不能特殊处理)
                       r"通融|反映一下|帮我反映|向上反映|特殊处理|例外|这样也不行|也不能退|就不能退|"
                       r"(?i:disagree|not fair|unfair|your fault|your mistake|make an exception)")


def disputes(text: str, refused: Optional[Dict[str, Any]] = None) -> bool:
    """The customer disagrees with what was just decided (``凭什么不能退``, ``我不同意``), or,
    after a custom-made item was ``refused``, names a quality problem (``桌面有裂缝 质量问题``):
    the exclusion covers returns without a reason, so an agent reviews it."""
    return bool(_DISPUTES.search(details.fold(text))) or bool(
        refused and refused.get("why") == "custom" and parsing.is_quality_problem(text))


def carries_details(text: str) -> bool:
    """An order number, a phone, "no order number" or when it arrived: details some form asks
    for (``好久来装`` asks when, it tells no date)."""
    return bool(parsing.find_order_id(text) or details.find_phone(text) or mentions.says_no_order(text)
                or details.mentions_time(text) and not mentions.asks_when(text) and not mentions.is_question(text))


def recent_request(tracker: Tracker, messages: int = 3) -> Optional[str]:
    """The form the customer's latest messages before this one asked for, outside any form and
    since the last ticket or cancelled form (``换货`` answered with the exchange policy)."""
    from actions.listening import earlier_messages

    for message in reversed(earlier_messages(tracker, messages, answered=True)):
        target = form_for(message) or details.switch_target(message.get("text") or "", None)
        if target:
            return target
    return None


def route_by_context(tracker: Tracker, domain) -> Optional[List[Dict[Text, Any]]]:
    """Details on their own (``DD…``, ``电话…``) just after a request that started no form (its
    policy was answered): that form starts, and takes what those messages told."""
    text = (tracker.latest_message or {}).get("text", "")
    if not carries_details(text):
        return None
    target = recent_request(tracker)
    if target and target in ((domain or {}).get("forms") or {}):
        return reset() + [FollowupAction(target)]
    return None


def form_for(message: Dict[str, Any], triggers=()) -> Optional[str]:
    """The form a message outside any form belongs to, from what it carries: a request word,
    a product with a fault, a product, order number or date with 退/换, a trigger word."""
    text = message.get("text", "") or ""
    target = details.switch_target(text, None)
    # a product the extractor missed counts only in a statement: 那要是买个大衣柜呢…是不是要等好久
    # asks about delivery, it reports no broken wardrobe
    product = any(e.get("entity") == "product" for e in message.get("entities", [])) \
        or (mentions.english_product(text) if mentions.is_question(text) else mentions.named_product(text)) is not None
    if target is None and details.return_type(text) and (
            product or parsing.find_order_id(text) or details.days_since(text, _today()) is not None):
        target = "return_form"
    faults = [str(w) for w in _profile().get("repair_fault_words") or ()]
    if target is None and product and (any(w in text for w in faults) or mentions.mentions_fault(text)):
        target = "repair_form"
    if target is None and any(str(w) in text for w in triggers):
        target = "complaint_form"
    if target is None and not mentions.is_question(text) and reports_emergency(text):
        target = "repair_form"        # 家里闻到很重的煤气味: no product named, no request word
    return target


def reports_emergency(text: str) -> bool:
    """The message reports an urgent hazard (the profile's words, not negated: 煤气味很重,
    水管爆了), whatever else it names."""
    facts = _profile()
    urgent, _ = details.urgency(text, facts.get("urgent_repair_keywords") or (),
                                facts.get("urgent_repair_not_urgent_when_leaking_from") or ())
    return urgent


def _today():
    from bot.profile import business as profile

    return profile.now().astimezone(profile.shop_tz()).date()


def _profile() -> Dict[str, Any]:
    from bot.profile import business as profile

    return profile.load_profile()


def own_recent_ticket(tracker: Tracker) -> Optional[str]:
    """The ticket told in the last answers when it is this customer's own (not one looked up)."""
    number = recent_ticket(tracker)
    if number and number not in {t.number for t in store().for_customer(tracker.sender_id, open_only=False)}:
        return None
    return number


def add_to_ticket(dispatcher: CollectingDispatcher, number: str, text: str, *, sorry: bool = False) -> None:
    """A line about the ticket just filed: a phone in it becomes the number to call back, the
    rest a note for the agent (phones, order numbers, addresses masked); ``sorry`` for a line
    that vents (``就你们这服务，差评！``) apologises first."""
    told = pack.say("ticket_remark_sorry") if sorry else ""
    before = store().find(number)
    phone_given = details.find_phone(text)
    orders = [o.upper() for o in parsing.ORDER_ID_RE.findall(details.fold(text))
              if not (phone_given and o in phone_given[1])] if parsing.find_order_id(text) else []
    # the order it is about, when the ticket had none, or in place of one the customer says was
    # wrong (订单号发错了 应该是…: the number that is not the ticket's, named as the order's)
    fresh = [o for o in orders if before is None or o != (before.order_id or "").upper()]
    order = fresh[-1] if fresh else (orders[0] if orders else None)
    if order:
        corrects = ORDER_CORRECTED.search(details.fold(text)) is not None
        after = store().set_order_id(number, order, actor="customer", corrected=corrects)
        if before is not None and before.order_id != after.order_id:
            told += pack.say("noted_order_on_ticket", order=after.order_id)
    product = product_put_right(text, before)
    if product:                               # 不是冰箱，是洗碗机: the ticket's product
        store().set_product(number, product, actor="customer")
        told += pack.say("noted_product_on_ticket", product=product)
    phone = phone_given
    if phone:                                 # the number to call back: on the ticket
        store().set_phone(number, phone[1], actor="customer")
        told += pack.say("noted_callback_phone", phone=privacy.mask_phone(phone[1]))
    rest = details.PHONE_ANY.sub("", details.fold(text)) if phone else text
    rest = parsing.ORDER_ID_RE.sub("", rest) if order else rest
    rest = details.CORRECTION.sub("", CONFIRMS.sub("", details.fold(rest))) if order or phone or confirms(rest) else rest
    if len(re.sub(r"[\W好的嗯哦行是对了吧啊呀电话号码手机是我的]|(?i:my|number|phone|is)", "", rest)) >= 4:
        store().add_note(number, pack.say("ticket_note", text=privacy.mask_customer_text(text)[:300]),
                         actor="customer")
        told += pack.say("noted_on_ticket")
    urged = URGES.search(details.fold(text)) is not None
    if product and not phone and not order:
        dispatcher.utter_message(text=pack.say("ticket_addition", told=told, number=number,
                                               follow=pack.say("follow_up_as_left")))
        return
    if not told and not order and not urged and DISAGREES.search(details.fold(text)) and not confirms(text):
        # 不对 / 电话不对 / 地址错了 with nothing new: what is to change, never "已确认"
        dispatcher.utter_message(text=pack.say("ticket_what_to_change", number=number))
        return
    if (urged or not told) and not order:
        # nothing to add (对 / 没问题 / 确认 after the read-back), or a push (对 快点来人啊): the ticket
        # and what it promises, the push kept on it for the agent
        from actions.tickets import ticket_when

        if before is not None and before.status not in ("resolved", "closed"):
            dispatcher.utter_message(text=pack.say("ticket_urged" if urged else "ticket_confirmed",
                                                   told=told, when=ticket_when(before)))
            return
    follow = pack.say("follow_up_by_phone" if phone else "follow_up_as_left")
    dispatcher.utter_message(text=pack.say("ticket_addition", told=told, number=number, follow=follow))


def product_corrected_on_ticket(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """A line right after a ticket was filed that puts its product right (``不是冰箱, it's the
    洗碗机``, read as a new repair): the ticket corrected, no new form. True when it was."""
    number = own_recent_ticket(tracker)
    ticket = store().find(number) if number else None
    text = (tracker.latest_message or {}).get("text", "") or ""
    if ticket is None or ticket.status in ("resolved", "closed") or not product_put_right(text, ticket):
        return False
    add_to_ticket(dispatcher, number, text)
    return True


def product_put_right(text: str, ticket) -> Optional[str]:
    """``wait sorry, 不是冰箱, it's the 洗碗机``: the other catalogue product named in place of the
    ticket's, or None (no product on the ticket, none other named, or no word that it was wrong)."""
    current = getattr(ticket, "product", None)
    folded = details.fold(text)
    if not current or not (re.search(r"不是\s*" + re.escape(current), folded) or details.is_correction(text)):
        return None
    rest = folded.replace(current, "□" * len(current))
    other = mentions.catalogue_word(rest, mentions.product_words()) or mentions.english_product(rest)
    return other if other and other != current else None


# saying the read-back was right (对，这回没错了 / 就这个号 / 没问题): it adds nothing to the ticket
CONFIRMS = re.compile(r"没错|没问题|对的|对滴|是的|就这个|就是这个|这回|这次|正确|确认|可以|好的|行|嗯|对|没|了|啦|号|"
                      # thanks said with it (对 是的 麻烦你们了, 好的 辛苦了) adds nothing either
                      r"麻烦(?:你们|您|你)?|辛苦(?:你们|您|你)?|谢谢(?:你们|您|你)?|多谢|感谢|"
                      r"(?i:correct|right|yes|ok|okay|that's it|\bnow\b|this time|all good|thanks|thank you)")


# the order number said to be wrong (订单号发错了 应该是…, 单号不对, 订单号改成…)
ORDER_CORRECTED = re.compile(r"(?:订单号|单号|订单编号)[^，,。！!？?\d]{0,4}(?:错|不对|不是|更正|改成|改为|改一下)|"
                             r"订单[^，,。！!？?\d]{0,2}(?:错了|不对|写错|发错|填错)|应该是|正确的是|"
                             r"(?i:wrong order|order number is wrong|is wrong|should be|correct one is|typo)")

# pushing for speed (快点来人, 赶紧的, 尽快): the customer wants to hear when
URGES = re.compile(r"快点|快些|快一点|快一些|早点|早一点|尽早|快来|赶紧|赶快|尽快|抓紧|急死|着急|快快|快[!！~～]|快\s*$|(?i:hurry|asap|quickly)")
# saying something in the read-back is wrong (不对, 电话错了, 地址不是这个): what is to change
DISAGREES = re.compile(r"不|没|错|别|改|(?i:wrong|no\b|not)")


def pushes_or_agrees(text: str) -> bool:
    """``对的 麻烦快一点 我八十多了腿脚不好`` (read as off topic) right after a ticket was filed: a
    push for speed, or a line that opens with a yes, is about that ticket."""
    folded = details.fold(text).strip()
    return URGES.search(folded) is not None or re.match(r"(?:对|是的|嗯|好的|没错|没问题|(?i:yes|ok))", folded) is not None


def confirms(text: str) -> bool:
    """Nothing but agreement with what was read back (``对，这回没错了``, ``对 就这个😊``)."""
    return not re.sub(r"[\W_]", "", CONFIRMS.sub("", details.fold(text)))


# a message that brings up a matter of its own, not one more word on the ticket just filed
NEW_MATTER = re.compile(r"另外|另一|还有一?(?:件|个|事)|别的|其他问题|其它问题|再投诉|还要投诉|又要投诉|新的?投诉|"
                        r"(?i:another|one more|something else)")


# what a customer says to vent, not to tell a problem (什么破服务, 差评, 太差劲了): with little else,
# no category cue in it (破) makes it a new complaint
VENTING = re.compile(r"差评|一星|零分|什么破|破服务|这服务|什么服务|垃圾|太差|真差|差劲|服了|无语|恶心|坑人|骗子|不靠谱|失望|"
                     r"什么玩意|你们|真是|太|了|吧|啊|呀|！|!|(?i:terrible|awful|worst|useless)")


def remark_on_ticket(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """Right after a ticket was filed, a line that vents or adds to it (``就你们这服务，差评！``,
    ``我电话是… 让他们明天上午打给我``, ``再不处理我就去消协``) rather than a new matter: kept on that
    ticket as a note (a phone as the number to call back), acknowledged with an apology for a
    complaint; a threat (the profile's high-priority words) makes the complaint high priority
    and, in service hours, queues it for a person. False when it is a new matter (another
    category, another order, ``另外…``): the form it started goes on."""
    from bot.profile import business as profile

    from actions.tickets import promise_answer

    number = own_recent_ticket(tracker)
    ticket = store().find(number) if number else None
    text = (tracker.latest_message or {}).get("text", "") or ""
    if ticket is None or ticket.status in ("resolved", "closed") or NEW_MATTER.search(text):
        return False
    promised = promise_answer(tracker)          # 那我这个投诉 什么时候有人给我回话啊: when, for this one
    if promised:
        dispatcher.utter_message(text=promised)
        return True
    category = parsing.complaint_category(text)
    vents = len(re.sub(r"[\W\d]", "", VENTING.sub("", details.fold(text)))) < 6 and VENTING.search(text)
    if category and not vents and (ticket.kind != "complaint" or category not in (ticket.category, parsing.OTHER_CATEGORY)):
        return False
    order = parsing.find_order_id(text)
    if order and ticket.order_id and order.upper() != ticket.order_id.upper():
        return False
    said = threats(text)
    add_to_ticket(dispatcher, number, text, sorry=ticket.kind == "complaint")
    if said and ticket.kind == "complaint" and ticket.priority != "high":
        raised = store().raise_priority(number, "high", actor="bot", note=pack.say("ticket_raised_note",
                                                                                   words=pack.say("list_separator").join(said)))
        in_hours = profile.within_service_hours()
        dispatcher.utter_message(json_message=ticket_payload(raised, "handoff", reason="complaint_high",
                                                             in_hours=in_hours))
    return True


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
