"""The complaint, repair and return forms: what each field accepts, read back before filing.

Each ``judge_<field>`` gets the latest turn and returns ``(value, None)`` when the message
answers that question, else ``(None, why)``; ``mine`` takes what a message carries for any
field, whatever was asked (actions/listening.py runs both every turn).
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet

from actions.common import first_aid_text, threats
from actions.listening import (CHANGE_OF_MIND, NO_ORDER, NO_VALUE, SKIP, ListeningForm, Turn, content, load_facts, mine_ids,
                               mine_order, mine_phone, mine_told_complaint, substance)
from bot.profile import details, hazards, mentions, pack, parsing
from bot.profile import business as profile
from bot.profile import privacy

NOTED = "noted"             # switch_to when the form's first line was kept on the ticket just filed
DISPUTED = "disputed"       # … when it disputes the return just refused (the review ticket instead)
NOT_AN_ANSWER = ("affirm", "deny", "greet", "thank", "goodbye", "bot_challenge", "out_of_scope",
                 "nlu_fallback", "check_ticket", "rate_service")


def menu() -> list:
    """The complaint categories in the order the form offers them (profile.yml)."""
    return list(profile.load_profile().get("complaint_category_menu") or parsing.complaint_categories())


def category_options() -> dict:
    """What a customer may answer the category question with: its number as offered
    (1 … n in the profile's order, then 其他) or 其它."""
    names = menu() + [parsing.OTHER_CATEGORY]
    return {**{str(n): name for n, name in enumerate(names, 1)}, "其它": parsing.OTHER_CATEGORY}


FAULT_CUES = re.compile(r"坏|不|没|漏|响|异|冒|烧|停|卡|断|裂|慢|热|冷|跳闸|报错|故障|问题|失灵|掉|松|堵|臭|味|闪")


def says_reason(text: str) -> bool:
    """A return reason's word (the profile's ``return_reason_words``) is in ``text``."""
    return any(str(w) in text for w in load_facts().get("return_reason_words") or ())


# a field's name left in a reason once its value is taken out ("…没拆封 电话")
FIELD_NAMES = re.compile(r"(?:我的)?(?:手机号码|手机号|电话号码|电话|手机|联系方式|订单号|订单|单号)(?:是|:|：)?\s*(?=[，,。\s]|$)")
# "就是找不到啊" right after "no order number" was taken: still about the order number
LOST = re.compile(r"找不到|找不着|找不见|不知道|忘了|记不得|不记得|记不清|查不到")
# a change of mind in English words (Actually no, 还是退货吧)
MIND_CHANGED = re.compile(r"(?i)\b(?:actually|instead|rather|on second thought|changed my mind)\b")
TIME_CUES = re.compile(r"天|号|日|月|周|星期|礼拜|昨|前|刚|今|(?i:ago|yesterday|today|last week|last month|just (?:got|received))")


def phone_value(turn: Turn) -> Tuple[Optional[str], Optional[str]]:
    found = details.find_phone(turn.text)
    if found:
        return found[1], None
    if details.digits_only(turn.text):
        return None, pack.say("hint_phone")
    return None, pack.say("hint_phone_missing")


def category_of(text: str) -> Optional[str]:
    """The category a text names or points at most (an option's number too), never by what the
    customer denies: ``不对，不是质量问题，是快递磕的`` is a delivery complaint."""
    folded = details.fold(text).strip()
    options = category_options()
    if folded in options:
        return options[folded]
    return parsing.complaint_category(folded)


def told_problem(text: str) -> str:
    """A complaint's words without the phone (kept apart, encrypted) or the order number."""
    rest = details.strip_phone(text)
    order = parsing.find_order_id(rest)
    return rest.replace(order, "") if order else rest


def order_answer(turn: Turn) -> Optional[Tuple[str, None]]:
    """The answer to "your order number?" when the message is one: the number, or "none" for
    ``没有`` / a denial; None when it is neither (the form says why it cannot take it)."""
    order = mine_order(turn)
    if order:
        return order, None
    if NO_ORDER.search(turn.folded) or turn.intent == "deny":
        return NO_VALUE, None
    return None


def explicit_category(text: str) -> Optional[str]:
    """A category named as such (``服务态度``, ``类型改成物流配送``), not just a cue word."""
    folded = details.fold(text)
    names = [c for c in parsing.complaint_categories() if c in folded]
    if not names:
        return None
    return max(names, key=folded.rfind)


def disputed_at_start(tracker: Tracker) -> bool:
    """The message that starts a form disputes the return just refused (我不同意…, 可以通融吗):
    the refusal is to be reviewed, not a new complaint or repair filed."""
    from actions.dialogue import disputes, refused_just_now

    refused = refused_just_now(tracker)
    return tracker.get_slot("requested_slot") is None and bool(refused) and \
        disputes((tracker.latest_message or {}).get("text", ""), refused)


class ValidateComplaintForm(ListeningForm):
    form = "complaint_form"
    kind = "complaint"
    fields = ("complaint_category", "complaint_description", "order_id", "phone")
    optional = ("complaint_category", "order_id")

    def skip_value(self, field: str) -> Any:
        return parsing.OTHER_CATEGORY if field == "complaint_category" else NO_VALUE

    async def run(self, dispatcher, tracker: Tracker, domain):
        from actions.dialogue import remark_on_ticket

        # started by a line about the ticket just filed (差评！, 我电话是…让他们明天打给我): kept
        # on that ticket, no new complaint (action_submit_complaint files nothing)
        if tracker.get_slot("requested_slot") is None and remark_on_ticket(dispatcher, tracker):
            return [SlotSet("switch_to", NOTED), SlotSet("requested_slot", None)]
        # "我不同意，客服说可以退的，我要个说法" right after a refused return, read as a complaint: the
        # refusal reviewed (action_record_dispute), no complaint about "服务态度"
        if disputed_at_start(tracker):
            return [SlotSet("switch_to", DISPUTED), SlotSet("requested_slot", None)]
        events = await super().run(dispatcher, tracker, domain)
        told = {e.get("name"): e.get("value") for e in events if e.get("event") == "slot"}
        if tracker.get_slot("requested_slot") is None and told.get("complaint_description") \
                and not told.get("switch_to"):
            # the complaint heard before anything is asked (…今天不给说法我就打12315！！): sorry,
            # and, for a trigger word, that it goes first
            urgent = bool(threats((tracker.latest_message or {}).get("text", "")))
            dispatcher.utter_message(text=pack.say("complaint_heard_urgent" if urgent else "complaint_heard"))
        return events

    def way_out(self, field: str) -> str:
        if field == "phone":
            return pack.say("way_out_phone_skip")
        return super().way_out(field)

    context_fields = ("order_id", "phone", "complaint_category", "complaint_description")

    def mine_earlier(self, turn: Turn, found: Dict[str, Any]) -> None:
        """Before ``我要投诉``: the ids said, and a problem told when it points at a category."""
        told: Dict[str, Any] = {}
        super().mine_earlier(turn, told)
        if not told.get("complaint_description") or told.get("complaint_category") in (None, parsing.OTHER_CATEGORY):
            told.pop("complaint_description", None)
            told.pop("complaint_category", None)
        found.update(told)

    def mine(self, turn: Turn, found: Dict[str, Any]) -> None:
        mine_ids(turn, found, "phone", "order_id")
        if "order_id" not in found and not turn.slot("order_id") and mentions.says_no_order(turn.text):
            found["order_id"] = NO_VALUE
        named = explicit_category(turn.text)
        if turn.starting:
            if mine_told_complaint(turn, found, category_of):
                # the problem is told already: no category cue means "其他" (an agent may re-file)
                found.setdefault("complaint_category", parsing.OTHER_CATEGORY)
        elif named and (turn.requested != "complaint_description" or len(substance(turn.text)) <= 6):
            found["complaint_category"] = named
        elif turn.requested == "complaint_category" and not turn.slot("complaint_description") \
                and turn.intent not in NOT_AN_ANSWER and not mentions.is_question(turn.text):
            # the answer to "which kind?" tells the whole problem (…黑屏 订单… 电话… 再不解决就打12315)
            if len(content(turn.text)) >= 6:
                found["complaint_description"] = told_problem(turn.text)[:1000]
        told = turn.slot("complaint_description")
        if turn.requested == "phone" and not found and told \
                and (turn.intent in ("inform", "complain", "rate_service", "nlu_fallback", "stop")
                     or details.is_correction(turn.text)) \
                and (category_of(turn.text) or mentions.mentions_fault(turn.text)) \
                and not details.digits_only(turn.text) and len(substance(turn.text)) >= 6 \
                and not SKIP.search(turn.folded) and not mentions.is_question(turn.text):
            # more about the problem while the phone is asked: added to the description
            found["complaint_description"] = f"{told}；{turn.text}"[:1000]
        if not turn.starting and details.is_correction(turn.text) and not named \
                and not set(details.named_fields(turn.text, self.fields)) - {"complaint_category", "complaint_description"}:
            # the problem put right (不对，不是质量问题，是快递磕的): its category follows
            corrected = category_of(turn.text)
            if corrected and corrected != turn.slot("complaint_category"):
                found["complaint_category"] = corrected

    def judge_complaint_category(self, turn: Turn):
        category = category_of(turn.text)
        if category:
            return category, None
        # a problem told without a category word is "其他"; a phone or an order number is no problem
        if turn.intent not in NOT_AN_ANSWER and len(content(turn.text)) >= 6:
            return parsing.OTHER_CATEGORY, None
        return None, pack.say("hint_complaint_category", menu=pack.say("list_separator").join(menu()),
                              other=parsing.OTHER_CATEGORY)

    def judge_complaint_description(self, turn: Turn):
        rest = details.strip_phone(turn.text)
        if parsing.find_order_id(rest):
            rest = rest.replace(parsing.find_order_id(rest), "")
        if turn.intent in NOT_AN_ANSWER and len(substance(rest)) < 8:
            return None, pack.say("hint_complaint_what_happened")
        if len(substance(rest)) < 4:
            return None, pack.say("hint_complaint_description")
        return turn.text if rest == turn.text else rest, None

    def judge_order_id(self, turn: Turn):
        answer = order_answer(turn)
        if answer:
            return answer
        if mine_phone(turn):
            return None, pack.say("noted_phone")
        return None, pack.say("hint_order_id")

    def judge_phone(self, turn: Turn):
        if SKIP.search(turn.folded) and not details.digits_only(turn.text):
            return NO_VALUE, None
        return phone_value(turn)

    def after(self, turn: Turn, found: Dict[str, Any], dispatcher) -> None:
        if found.get("phone") == NO_VALUE and turn.requested == "phone":
            dispatcher.utter_message(text=pack.say("phone_skipped"))


def tries_of(turn: Turn, field: str) -> int:
    return int((turn.slot("form_tries") or {}).get(field, 0))


def told_before(tracker: Tracker, messages: int = 6, *,
                since_refusal: bool = False) -> Optional[Tuple[str, Optional[str]]]:
    """The product the customer named earlier in this conversation (since the last ticket
    was filed; with ``since_refusal``, since a return was refused too: a return after a refused
    one starts afresh, while a repair of the refused item takes it) and, when that message told
    a fault, the fault: ``(product, fault)``."""
    seen = 0
    for event in reversed(tracker.events or []):
        if event.get("event") == "bot" and parsing.find_ticket_number(event.get("text") or ""):
            return None
        if since_refusal and event.get("event") == "slot" and event.get("name") == "return_dispute" \
                and event.get("value"):
            return None               # a return refused: its item is done with, for a return
        if event.get("event") != "user":
            continue
        seen += 1
        if seen == 1:
            continue                  # the message being read now
        if seen > messages:
            return None
        text = event.get("text") or ""
        entities = (event.get("parse_data") or {}).get("entities") or []
        product = next((str(e["value"]) for e in entities if e.get("entity") == "product" and e.get("value")), None) \
            or mentions.named_product(text)
        if product:
            rest = details.PHONE_ANY.sub("", re.sub(r"(?i)dd\d+|\d{12,20}", "", details.fold(text))).strip()
            return product, rest[:1000] if mentions.mentions_fault(rest) else None
    return None


class ValidateRepairForm(ListeningForm):
    form = "repair_form"
    kind = "repair"
    fields = ("product", "fault_description", "address", "phone")
    context_fields = ("order_id", "phone", "product", "fault_description", "address", "urgency")

    async def run(self, dispatcher, tracker: Tracker, domain):
        # "这样也不行吗？可以通融吗" right after a refused return, read as a repair (the refusal
        # offers one): the refusal reviewed (action_record_dispute), no repair
        if disputed_at_start(tracker):
            return [SlotSet("switch_to", DISPUTED), SlotSet("requested_slot", None)]
        from actions.dialogue import product_corrected_on_ticket

        # "不是冰箱, it's the 洗碗机" right after the repair was filed: that ticket put right
        if tracker.get_slot("requested_slot") is None and product_corrected_on_ticket(dispatcher, tracker):
            return [SlotSet("switch_to", NOTED), SlotSet("requested_slot", None)]
        return await super().run(dispatcher, tracker, domain)

    def way_out(self, field: str) -> str:
        if field == "address":
            return pack.say("way_out_address")
        if field == "phone":
            return pack.say("way_out_phone")
        return super().way_out(field)

    def mine(self, turn: Turn, found: Dict[str, Any]) -> None:
        phone = mine_phone(turn)
        if phone:
            found["phone"] = phone
        order = mine_order(turn)         # not asked, but kept when given (the ticket shows it)
        if order:
            found["order_id"] = order
        address = details.find_address(turn.text)
        if address:
            found["address"] = address[:200]
        product = turn.product or mentions.named_product(turn.text)
        if product and (turn.starting or not turn.slot("product") or turn.requested == "product"
                        or details.is_correction(turn.text)):
            found["product"] = product
        product = found.get("product") or turn.slot("product") or ""
        rest = details.PHONE_ANY.sub("", details.fold(turn.text))
        if address:
            rest = rest.replace(address, "")
        # the product put right (冰箱没事 是热水器不出热水): its fault is the one told now
        corrected = found.get("product") not in (None, turn.slot("product")) and not turn.starting \
            and turn.requested != "product"
        if (turn.starting or turn.requested == "product") and not turn.slot("fault_description") or corrected:
            if len(substance(rest).replace(product, "")) >= 2 and mentions.mentions_fault(rest):
                found["fault_description"] = rest.strip()[:1000]
        told = turn.slot("fault_description")
        if told and not turn.starting and turn.requested in ("address", "phone") and not set(found) - {"product"} \
                and turn.intent in ("inform", "nlu_fallback", "request_repair", "greet") \
                and not details.digits_only(turn.text) and not mentions.is_question(turn.text) \
                and mentions.mentions_fault(turn.text) and turn.text not in told:
            # more about the fault while the address or phone is asked (好像漏气了): added to it,
            # and its urgency judged again
            found["fault_description"] = f"{told}；{turn.text}"[:1000]
        if turn.starting and not found.get("product") and not turn.slot("product"):
            earlier = told_before(turn.tracker)
            if earlier:
                found["product"] = earlier[0]
                if earlier[1] and "fault_description" not in found and not turn.slot("fault_description"):
                    found["fault_description"] = earlier[1]
        self.rate(turn, found)
        self.emergency_product(turn, found)

    def emergency_product(self, turn: Turn, found: Dict[str, Any]) -> None:
        """An emergency never waits for the product question (燃气管道漏气, 水管爆了, 插座冒火花):
        what it is in, from the profile's ``urgent_repair_objects``, or "not named"; the
        engineer sees the rest on site."""
        urgency = found.get("urgency") if "urgency" in found else turn.slot("urgency")
        if urgency != "urgent" or found.get("product") or turn.slot("product"):
            return
        told = " ".join(filter(None, (turn.slot("fault_description"), found.get("fault_description"), turn.text)))
        found["product"] = hazards.hazard_object(told, load_facts().get("urgent_repair_objects") or ()) \
            or pack.say("product_unnamed")

    def rate(self, turn: Turn, found: Dict[str, Any]) -> None:
        fault = found.get("fault_description")
        if fault is None:
            return
        facts = load_facts()
        contained = facts.get("urgent_repair_not_urgent_when_leaking_from", ())
        urgent, _ = details.urgency(fault, facts["urgent_repair_keywords"], contained,
                                    found.get("product") or turn.slot("product"))
        found["urgency"] = "urgent" if urgent else "normal"

    def judge_product(self, turn: Turn):
        product = turn.entities.get("product") or mentions.named_product(turn.text)
        if product:
            return product, None
        text = substance(details.fold(turn.text))
        if turn.intent in NOT_AN_ANSWER or not 1 <= len(text) <= 10 or details.digits_only(text):
            return None, pack.say("hint_product")
        return text, None

    def judge_fault_description(self, turn: Turn):
        rest = details.strip_phone(turn.text)
        address = details.find_address(turn.text)
        if len(substance(details.PHONE_ANY.sub("", details.fold(turn.text)).replace(address or "\0", ""))) < 2:
            return None, pack.say("hint_fault_description")      # only an address / a phone
        if turn.intent in NOT_AN_ANSWER and not FAULT_CUES.search(rest):
            return None, pack.say("hint_fault_description")
        if len(substance(rest)) < 2:
            return None, pack.say("hint_fault_description")
        found = {"fault_description": rest[:1000]}
        self.rate(turn, found)
        return found["fault_description"], None

    def judge_address(self, turn: Turn):
        address = details.find_address(turn.text)
        if address:
            return address[:200], None
        return None, pack.say("hint_address")

    def judge_phone(self, turn: Turn):
        return phone_value(turn)

    def after(self, turn: Turn, found: Dict[str, Any], dispatcher) -> None:
        if "fault_description" in found and "urgency" not in found:
            self.rate(turn, found)
            self.emergency_product(turn, found)
        self.first_aid(turn, found, dispatcher)

    def first_aid(self, turn: Turn, found: Dict[str, Any], dispatcher) -> None:
        """The moment a fault turns out urgent, and something is still to ask: what to do now
        (close the gas valve, cut the power) and the on-site promise, before the next question.
        When nothing is left to ask, the filed ticket's own message says it."""
        if found.get("urgency") != "urgent" or turn.slot("urgency") == "urgent":
            return
        if all(found.get(f) if f in found else turn.slot(f) for f in self.fields):
            return
        facts = load_facts()
        fault = found.get("fault_description") or turn.slot("fault_description") or turn.text
        _, words = details.urgency(fault, facts["urgent_repair_keywords"],
                                   facts.get("urgent_repair_not_urgent_when_leaking_from", ()),
                                   found.get("product") or turn.slot("product"))
        dispatcher.utter_message(text=first_aid_text(words))


class ValidateReturnForm(ListeningForm):
    form = "return_form"
    kind = "return"
    fields = ("order_id", "return_type", "return_reason", "days_since_receipt", "phone")
    optional = ("order_id",)

    def skip_value(self, field: str) -> Any:
        return NO_VALUE

    context_fields = ("order_id", "phone", "product", "return_type", "return_reason", "days_since_receipt")

    def refuse(self, turn, field, why, count, found, dispatcher) -> None:
        if field == "order_id" and count >= 2:
            found["order_id"] = NO_VALUE          # after() says how it is verified instead
            return
        super().refuse(turn, field, why, count, found, dispatcher)

    def aside(self, turn: Turn, found: Dict[str, Any], dispatcher) -> bool:
        """``真的找不到订单号`` again while another question is asked: that is settled (said
        again how it is verified), no failed try at the question."""
        if turn.slot("order_id") == NO_VALUE and "order_id" not in found and turn.requested != "order_id" \
                and (mentions.says_no_order(turn.text) or LOST.search(turn.folded) and len(content(turn.text)) <= 8):
            dispatcher.utter_message(text=pack.say("return_without_order_id"))
            return True
        return False

    def vague_limit(self, turn: Turn, found: Dict[str, Any], text: str) -> Optional[int]:
        """The window (days) a vague ``十几天`` / ``好几天`` could fall either side of, for this
        return or exchange; None when the words decide it either way."""
        rules = load_facts()["returns"]
        kind = found.get("return_type") or turn.slot("return_type")
        limits = [rules["quality_exchange_days"]] if kind == "exchange" else [
            rules["no_reason_days"], rules["quality_exchange_days"]]
        span = details.days_range(re.sub(r"(?i)dd\d+|\d{12,20}", "", details.fold(text)), today())
        return next((limit for limit in limits if details.straddles(span, limit)), None)

    def mine(self, turn: Turn, found: Dict[str, Any]) -> None:
        mine_ids(turn, found, "order_id", "phone")
        # the item sent back, named anywhere in the form (kept on the ticket for the agent)
        product = turn.product or mentions.named_product(turn.text)
        if product and (not turn.slot("product") or details.is_correction(turn.text)):
            found["product"] = product
        if "order_id" not in found and not turn.slot("order_id") and mentions.says_no_order(turn.text):
            found["order_id"] = NO_VALUE
        # 质量问题可以换新的嘛: asked as a question (answered, and cut from turn.text), still the kind
        kind = details.return_type(turn.text) or (turn.starting and details.return_type(getattr(turn, "original", "")))
        if kind and (turn.starting or turn.requested in ("return_type", "form_confirmed")
                     or details.is_correction(turn.text) or "不" in turn.folded
                     or CHANGE_OF_MIND.search(turn.folded) or MIND_CHANGED.search(turn.folded)):
            found["return_type"] = kind
        if not turn.starting and turn.requested not in ("return_reason",):
            pass
        reason = mentions.reason_in(turn.text)
        if reason and (turn.starting or turn.requested != "return_reason"):
            if not turn.slot("return_reason") or details.is_correction(turn.text):
                found["return_reason"] = reason
        # when it came, told in passing; a date already told is changed only by a correction
        # (not by "your website is slow today")
        if TIME_CUES.search(turn.folded) and turn.requested != "days_since_receipt" \
                and (turn.starting or turn.slot("days_since_receipt") is None or details.is_correction(turn.text)):
            days = details.days_since(re.sub(r"(?i)dd\d+|\d{12,20}", "", turn.folded), today())
            if days is not None and not (turn.requested == "order_id" and not TIME_CUES.search(turn.folded)):
                found["days_since_receipt"] = float(days)
        earlier = told_before(turn.tracker, since_refusal=True) if turn.starting else None
        if earlier:
            # switched to (修啥修 还是直接退吧): the item and its fault named before are what goes back
            if not found.get("product") and not turn.slot("product"):
                found["product"] = earlier[0]
            if earlier[1] and not found.get("return_reason") and not turn.slot("return_reason"):
                found["return_reason"] = (mentions.reason_in(earlier[1]) or earlier[1])[:500]

    def judge_order_id(self, turn: Turn):
        answer = order_answer(turn)
        if answer:
            return answer
        return None, pack.say("hint_return_order_id")

    def judge_return_type(self, turn: Turn):
        kind = details.return_type(turn.text)
        if kind:
            return kind, None
        return None, pack.say("hint_return_type")

    def judge_return_reason(self, turn: Turn):
        if turn.intent in NOT_AN_ANSWER and not says_reason(turn.folded):
            return None, pack.say("hint_return_reason")
        # the reason without the phone or order number the same message carries, nor their names
        rest = details.PHONE_ANY.sub("", re.sub(r"(?i)dd\d{6,18}|\d{12,20}", "", details.fold(turn.text)))
        rest = FIELD_NAMES.sub("", rest).strip(" ，,")
        if details.mentions_time(rest):        # "前天到的，没拆封": when it came is no reason
            rest = re.sub(r"\s+", " ", details.without_when(rest)).strip(" ，,")
        told = mentions.reason_in(turn.text)
        if len(substance(rest)) < 2 and not told:
            return None, pack.say("hint_return_reason")
        return (told if told and rest != turn.text else rest)[:500], None

    def judge_phone(self, turn: Turn):
        return phone_value(turn)

    def judge_days_since_receipt(self, turn: Turn):
        days = details.days_since(turn.text, today())
        if days is None:
            return None, pack.say("hint_days_since_receipt")
        limit = self.vague_limit(turn, {}, turn.text)
        if limit and tries_of(turn, "days_since_receipt") == 0:
            return None, pack.say("hint_days_vague", limit=limit)      # asked once more, then taken
        return float(days), None

    def after(self, turn: Turn, found: Dict[str, Any], dispatcher) -> None:
        """The window and the exclusion, checked as soon as the facts are known."""
        def known(name):
            return found[name] if name in found else turn.slot(name)
        rules = load_facts()["returns"]
        if found.get("order_id") == NO_VALUE and turn.slot("order_id") != NO_VALUE:
            dispatcher.utter_message(text=pack.say("return_without_order_id"))
        if found.get("days_since_receipt") is not None and turn.requested != "days_since_receipt":
            limit = self.vague_limit(turn, found, turn.text)
            if limit:                     # "十几天" told in passing, a 15-day window: ask the date
                found["days_since_receipt"] = None
                dispatcher.utter_message(text=pack.say("hint_days_vague", limit=limit))
        reason, kind, days = known("return_reason") or "", known("return_type"), known("days_since_receipt")
        if turn.requested == "return_reason" and not reason and kind == "return" and "days_since_receipt" in found \
                and days is not None and days <= rules["no_reason_days"]:
            # asked why, the customer told when instead: inside the no-reason window none is needed
            found["return_reason"] = reason = pack.say("return_reason_not_given")
        if details.is_custom_made(f"{turn.text} {reason}", rules.get("excluded", "")):
            if not parsing.is_quality_problem(f"{turn.text} {reason}"):
                found.update(return_refused="custom", requested_slot=None)
                return
            if "return_reason" in found or details.is_custom_made(turn.text, rules.get("excluded", "")):
                # made to order and faulty, just learnt: the exclusion is of returns without a reason only
                dispatcher.utter_message(text=pack.say("return_custom_quality"))
        if days is None:
            return
        quality = parsing.is_quality_problem(reason)
        if days > rules["quality_exchange_days"]:
            found.update(return_refused="window", requested_slot=None)
        elif days > rules["no_reason_days"] and not known("return_reason") and kind != "exchange" \
                and "days_since_receipt" in found:
            dispatcher.utter_message(text=pack.say("return_past_no_reason_window", days=f"{days:g}"))
        elif days > rules["no_reason_days"] and known("return_reason"):
            if kind == "exchange" and quality:
                return
            if quality and kind == "return":
                dispatcher.utter_message(text=pack.say("return_offer_exchange"))
                found["return_type"] = None
            elif kind:
                found.update(return_refused="window", requested_slot=None)


def today():
    return profile.now().astimezone(profile.shop_tz()).date()


def return_label(kind: Any) -> str:
    """``换货`` or ``退货``: the return form's ``return_type`` as the customer reads it."""
    return pack.say("return_type_exchange" if kind == "exchange" else "return_type_return")


def shown(field: str, value: Any) -> str:
    if value in (None, NO_VALUE):
        return pack.say("summary_no_order_id" if field == "order_id" else "summary_not_given")
    if field == "phone":
        return privacy.mask_phone(str(value)) or ""
    if field == "address":
        return str(value)
    if field == "return_type":
        return return_label(value)
    if field == "days_since_receipt":
        return pack.say("summary_days_ago", days=f"{float(value):g}")
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "…"


def summary(tracker: Tracker, fields) -> str:
    """The details read back with the ticket number (a correction is one message away)."""
    labels = pack.labels("summary_labels")
    return pack.say("summary_separator").join(
        pack.say("summary_item", label=labels[f], value=shown(f, tracker.get_slot(f))) for f in fields
        if tracker.get_slot(f) not in (None, ""))


def slot_events(names, value=None):
    return [SlotSet(name, value) for name in names]


class AskFaultDescription(Action):
    """The repair form's "what is wrong?": the hazards to mention are the ones the product can
    have (a gas leak for a gas appliance, smoke or sparks for anything on power, none for a
    sofa), from the profile's ``gas_appliance_words`` and ``unpowered_products``."""

    def name(self) -> Text:
        return "action_ask_repair_form_fault_description"

    def run(self, dispatcher, tracker: Tracker, domain):
        dispatcher.utter_message(text=pack.say("ask_fault_description", hazards=hazard_hint(tracker.get_slot("product"))))
        return []


def hazard_hint(product: Optional[str]) -> str:
    """The danger signs worth asking about for ``product`` (unknown: gas too, to be safe)."""
    facts = load_facts()
    name = str(product or "")
    if name and any(name.endswith(str(w)) for w in facts.get("unpowered_products") or ()):
        return ""
    gas = not name or any(str(w) in name for w in facts.get("gas_appliance_words") or ()) \
        and not any(name.startswith(str(w)) for w in facts.get("electric_prefixes") or ())
    return pack.say("hazard_hint_gas" if gas else "hazard_hint_power")
