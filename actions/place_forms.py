"""Forms about a place: a repair or a complaint located by building/unit/room or a shared place.

The forms a business pack picks when its customers are residents rather than buyers (the
property pack's ``place_repair_form`` and ``place_complaint_form``): no product, no order,
no street address, but a ``location``. Their questions are the pack's ``utter_ask_*``
responses; everything they say is the pack's ``messages.yml``; categories, urgent words and
shared places are the pack's profile. The fields are the domain's required slots.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (customer_channel, first_aid_text, form_run_key, local_time, promise_text, store,
                            ticket_payload)
from actions.listening import (CHANGE_OF_MIND, INTENT_FORM, NO_VALUE, PERSON, SKIP, Turn, asks_for_a_person,
                               mine_told_complaint, substance)
from actions.tickets import CheckTicket, with_threats
from bot.profile import business as profile
from bot.profile import details, mentions, pack, parsing, places, privacy

NOT_AN_ANSWER = ("affirm", "deny", "greet", "thank", "goodbye", "bot_challenge", "out_of_scope",
                 "nlu_fallback", "check_ticket", "rate_service")
INTERRUPTIONS = ("faq", "request_human", "bot_challenge", "check_ticket", "request_return", "stop")
BOOKKEEPING = ("form_tries", "form_confirmed", "switch_to", "urgency", "location")


def facts() -> Dict[str, Any]:
    return profile.load_profile()


def shared_places() -> List[str]:
    return [str(p) for p in facts().get("shared_places") or []]


def location_in(turn: Turn) -> Optional[places.Location]:
    """The location a message names: the parser's reading, else the NLU's entity."""
    found = places.find_location(turn.text, shared_places())
    if found is None and turn.entities.get("location"):
        value = turn.entities["location"]
        found = places.find_location(value, shared_places()) or places.Location(value, "shared", {"place": value})
    return found


def category_of(text: str) -> Optional[str]:
    """The complaint category a text names or points at (the pack's ``complaint_categories``)."""
    folded = details.fold(text or "").strip()
    cues: Dict[str, List[str]] = facts().get("complaint_categories") or {}
    other = facts().get("other_category", parsing.OTHER_CATEGORY)
    names = list(cues) + [other]
    options = {str(n + 1): name for n, name in enumerate(names)}
    if folded in options:
        return options[folded]
    # a category named wins (after a correction, the later one); else the most cue words,
    # never those in what the resident denies (不是噪音的事，是垃圾没人收)
    return parsing.best_category(folded, cues, other=other)


def phone_of(turn: Turn) -> Optional[str]:
    found = details.find_phone(turn.text)
    return found[1] if found else None


def form_slots(domain: Dict[str, Any]) -> Tuple[str, ...]:
    forms = (domain or {}).get("forms") or {}
    names = [s for f in forms.values() for s in (f or {}).get("required_slots") or []]
    return tuple(dict.fromkeys(names + list(BOOKKEEPING)))


def reset(domain: Dict[str, Any]) -> List[Dict[Text, Any]]:
    """Every slot of the domain's forms forgotten, and no question pending."""
    known = set(((domain or {}).get("slots") or {}).keys())
    return [SlotSet(n, None) for n in form_slots(domain) if not known or n in known] + [
        SlotSet("requested_slot", None)]


# the shop's form names switch_target speaks in, and this pack's forms for them
SURE_ASKED = 0.7          # the classifier sure a message asks for the other form
PLACE_FORMS = {"repair_form": "place_repair_form", "complaint_form": "place_complaint_form"}
SHOP_FORM = {place: shop for shop, place in PLACE_FORMS.items()}
# what a change of mind takes from one form to the other
CARRIED = ("phone", "location", "fault_description", "complaint_description")


def switched(tracker: Tracker, domain: Dict[str, Any]) -> Optional[List[Dict[Text, Any]]]:
    """The form just ended by a change of mind: the other form starts with what was carried
    (the filing action files nothing), else None."""
    target = tracker.get_slot("switch_to")
    if target == PERSON:                  # the line that started the form asked for a person
        return reset(domain) + [FollowupAction("action_request_human")]
    if target not in SHOP_FORM:
        return None
    return [SlotSet(n, None) for n in form_slots(domain) if n not in CARRIED] + [
        SlotSet("requested_slot", None), FollowupAction(target)]


class PlaceForm(Action):
    """One form's validation (``validate_<form>``): mine every detail a message carries, judge
    the answer to the question asked, say why when it is not one."""

    form = ""

    def name(self) -> Text:
        return f"validate_{self.form}"

    def fields(self, domain: Dict[str, Any]) -> Tuple[str, ...]:
        return tuple(((domain or {}).get("forms") or {}).get(self.form, {}).get("required_slots") or ())

    def mine(self, turn: Turn, found: Dict[str, Any]) -> None:
        phone = phone_of(turn)
        if phone:
            found["phone"] = phone
        location = location_in(turn)
        if location and (turn.starting or not turn.slot("location") or details.is_correction(turn.text)
                         or turn.requested == "location"):
            found["location"] = location.text

    def judge_phone(self, turn: Turn):
        phone = phone_of(turn)
        if phone:
            return phone, None
        if SKIP.search(turn.folded) and int((turn.slot("form_tries") or {}).get("phone", 0)) >= 1:
            return NO_VALUE, None
        return None, pack.say("hint_phone")

    def judge_location(self, turn: Turn):
        location = location_in(turn)
        if location:
            return location.text, None
        return None, pack.say("hint_location")

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain) -> List[Dict]:
        turn = Turn(tracker, self.form)
        if turn.resumed:
            return []
        if asks_for_a_person(turn):
            return [SlotSet("switch_to", PERSON), SlotSet("requested_slot", None)]
        target = PLACE_FORMS.get(details.switch_target(turn.text, SHOP_FORM.get(self.form)) or "")
        # only a change of mind in words (算了，不投诉了…), never a question or a mention (维修师傅态度太差了)
        # or the other form asked for outright (哦不对 不是房子坏了 … 我要投诉噪音, read as a complaint)
        asked = PLACE_FORMS.get(INTENT_FORM.get(turn.intent) or "") == target and turn.confidence >= SURE_ASKED \
            and mentions.asks_for_service(turn.text)
        changes = (CHANGE_OF_MIND.search(turn.folded) or asked) and not mentions.is_question(turn.text)
        if not turn.starting and target and changes and target != self.form \
                and target in ((domain or {}).get("forms") or {}):
            # 算了，不投诉了，直接帮我报修吧 / 我不报修了 我要投诉: the other form, with what applies
            return self.switch(turn, target, dispatcher)
        if not turn.starting and turn.intent in INTERRUPTIONS:
            return []                  # the rules answer it; the form resumes or ends
        found: Dict[str, Any] = {}
        counts = dict(turn.slot("form_tries") or {})
        self.mine(turn, found)
        fields = self.fields(domain)
        requested = turn.requested if not turn.starting else None
        if requested in fields and found.get(requested) is None:
            value, why = getattr(self, f"judge_{requested}")(turn)
            if value is not None:
                found[requested] = value
                counts.pop(requested, None)
            else:
                counts[requested] = counts.get(requested, 0) + 1
                text = why + (pack.say("way_out") if counts[requested] >= 2 else "")
                dispatcher.utter_message(text=text)
        self.after(turn, found)
        self.first_aid(turn, found, fields, dispatcher)
        return [SlotSet(k, v) for k, v in found.items() if k in fields or k in BOOKKEEPING] + [
            SlotSet("form_tries", counts)]

    def after(self, turn: Turn, found: Dict[str, Any]) -> None:
        """Checks once details are known (overridden per form)."""

    def switch(self, turn: Turn, target: str, dispatcher) -> List[Dict]:
        """The form ends (``requested_slot`` None) handing ``switch_to`` to its filing action,
        which starts ``target``; the phone, the location and what was told of the problem go
        with it (the complaint's description is the repair's fault, and back)."""
        carried: Dict[str, Any] = {}
        self.mine(turn, carried)
        told = turn.slot("complaint_description") or turn.slot("fault_description")
        if told:
            carried["fault_description" if target == "place_repair_form" else "complaint_description"] = told
        for name in ("phone", "location"):
            if name not in carried and turn.slot(name):
                carried[name] = turn.slot(name)
        names = pack.labels("form_names")
        dispatcher.utter_message(text=pack.say("switch_form", source=names.get(self.form, ""),
                                               target=names.get(target, "")))
        return [SlotSet(k, v) for k, v in carried.items() if k in CARRIED] + [
            SlotSet("switch_to", target), SlotSet("requested_slot", None)]

    def first_aid(self, turn: Turn, found: Dict[str, Any], fields: Tuple[str, ...], dispatcher) -> None:
        """The moment a repair turns out urgent and something is still to ask: what to do now
        (close the water valve, stay calm in the lift) and the on-site promise, before the next
        question (the pack's ``safety_advice``, kinds from the profile's ``urgent_safety_advice``).
        When nothing is left to ask, the filed ticket's own message says it."""
        if found.get("urgency") != "urgent" or turn.slot("urgency") == "urgent":
            return
        if all(found.get(f) if f in found else turn.slot(f) for f in fields):
            return
        rules = facts()
        fault = f"{turn.text} {found.get('fault_description') or turn.slot('fault_description') or ''}"
        _, words = details.urgency(fault, rules.get("urgent_repair_keywords") or (),
                                   rules.get("urgent_repair_not_urgent_when_leaking_from") or ())
        dispatcher.utter_message(text=first_aid_text(words))


class ValidatePlaceRepairForm(PlaceForm):
    form = "place_repair_form"

    def mine(self, turn: Turn, found: Dict[str, Any]) -> None:
        super().mine(turn, found)
        # (a fault carried over from a complaint switched from is kept: this message says "报修吧")
        if (turn.starting and not turn.slot("fault_description")) or \
                (turn.requested in ("location", "phone") and not turn.slot("fault_description")):
            rest = self.fault_text(turn.text, found.get("location"))
            if len(substance(rest)) >= 3 and turn.intent not in NOT_AN_ANSWER:
                found["fault_description"] = rest[:1000]

    @staticmethod
    def fault_text(text: str, location: Optional[str]) -> str:
        rest = details.strip_phone(text or "")
        if location:
            rest = details.fold(rest).replace(location, " ")
        return re.sub(r"\s+", " ", rest).strip(" ，,。")

    def judge_fault_description(self, turn: Turn):
        rest = self.fault_text(turn.text, turn.slot("location"))
        if len(substance(rest)) < 2 or (turn.intent in NOT_AN_ANSWER and len(substance(rest)) < 6):
            return None, pack.say("hint_fault_description")
        return rest[:1000], None

    def after(self, turn: Turn, found: Dict[str, Any]) -> None:
        fault = found.get("fault_description") or turn.slot("fault_description")
        if fault is None:
            return
        rules = facts()
        urgent, _ = details.urgency(f"{turn.text if turn.starting else ''} {fault}",
                                    rules.get("urgent_repair_keywords") or (),
                                    rules.get("urgent_repair_not_urgent_when_leaking_from") or ())
        if "fault_description" in found or turn.slot("urgency") is None:
            found["urgency"] = "urgent" if urgent else "normal"


class ValidatePlaceComplaintForm(PlaceForm):
    form = "place_complaint_form"

    def mine(self, turn: Turn, found: Dict[str, Any]) -> None:
        super().mine(turn, found)
        if turn.starting:
            mine_told_complaint(turn, found, category_of)

    def judge_complaint_category(self, turn: Turn):
        category = category_of(turn.text)
        if category:
            return category, None
        if turn.intent not in NOT_AN_ANSWER and len(substance(turn.text)) >= 6:
            return facts().get("other_category", parsing.OTHER_CATEGORY), None
        return None, pack.say("hint_complaint_category", menu=pack.say("list_separator").join(
            facts().get("complaint_categories") or {}), other=facts().get("other_category", parsing.OTHER_CATEGORY))

    def judge_complaint_description(self, turn: Turn):
        rest = details.strip_phone(turn.text)
        if len(substance(rest)) < 4:
            return None, pack.say("hint_complaint_description")
        return rest[:1000], None


def _phone(tracker: Tracker) -> Optional[str]:
    phone = tracker.get_slot("phone")
    return None if phone in (None, NO_VALUE) else details.without_extension(str(phone))


class SubmitPlaceRepair(Action):
    """Files the repair at its location: urgent = on site within the pack's promise."""

    def name(self) -> Text:
        return "action_submit_place_repair"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        moved = switched(tracker, domain)
        if moved is not None:
            return moved
        urgent = tracker.get_slot("urgency") == "urgent"
        priority = "urgent" if urgent else "normal"
        where = tracker.get_slot("location") or ""
        location = places.find_location(where, shared_places()) or places.Location(where, "shared", {"place": where})
        description = details.strip_phone(tracker.get_slot("fault_description") or "")
        rules = facts()
        _, words = details.urgency(description, rules.get("urgent_repair_keywords") or ())
        kept = {"building": location.parts.get("building"), "place": location.parts.get("place")}
        ticket, _ = store().open_ticket(
            kind="repair", category=pack.say("repair_category_home" if location.kind == "home"
                                             else "repair_category_shared"),
            description=description, customer_id=tracker.sender_id,
            channel=customer_channel(tracker), priority=priority,
            idempotency_key=form_run_key(tracker, self.form_name), phone=_phone(tracker),
            address=location.text,
            details={"location_kind": location.kind, **{k: v for k, v in kept.items() if v},
                     "urgent_words": words})
        dispatcher.utter_message(text=pack.say(
            "repair_urgent" if urgent else "repair_normal", number=ticket.number,
            promise=promise_text("repair", priority), due=local_time(ticket.sla_due_at), location=location.text,
            phone=privacy.mask_phone(_phone(tracker)) or pack.say("phone_as_left")))
        dispatcher.utter_message(json_message=ticket_payload(ticket, "ticket_created"))
        return reset(domain)

    form_name = "place_repair_form"


class SubmitPlaceComplaint(Action):
    """Files the complaint in its category; a trigger word or a repeat makes it high priority."""

    def name(self) -> Text:
        return "action_submit_place_complaint"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        moved = switched(tracker, domain)
        if moved is not None:
            return moved
        description, reasons = with_threats(tracker, details.strip_phone(tracker.get_slot("complaint_description") or ""))
        rules = facts()
        earlier = [t for t in store().for_customer(tracker.sender_id) if t.kind == "complaint"]
        priority = "high" if reasons or earlier else "normal"
        where = tracker.get_slot("location")
        category = tracker.get_slot("complaint_category") or rules.get("other_category", parsing.OTHER_CATEGORY)
        ticket, _ = store().open_ticket(
            kind="complaint", category=category, description=description,
            customer_id=tracker.sender_id, channel=customer_channel(tracker), priority=priority,
            idempotency_key=form_run_key(tracker, "place_complaint_form"), phone=_phone(tracker),
            address=where, details={"trigger_words": reasons, "repeat": bool(earlier)})
        dispatcher.utter_message(text=pack.say(
            "complaint_filed", number=ticket.number, category=ticket.category,
            promise=promise_text("complaint", priority), due=local_time(ticket.sla_due_at)))
        dispatcher.utter_message(json_message=ticket_payload(ticket, "ticket_created", handoff=priority == "high"))
        return reset(domain)


def routed_form(text: str) -> Optional[str]:
    """The form a message given outside any form belongs to (``5号楼801 厨房下水道堵了 电话…``
    is a repair, ``楼上天天半夜蹦迪`` a complaint), or None: a fault the pack's words name is
    a repair, a complaint category's cue or a trigger word a complaint."""
    rules = facts()
    location = places.find_location(text, shared_places())
    rest = ValidatePlaceRepairForm.fault_text(text, location.text if location else None)
    faults = [str(w) for w in (rules.get("repair_fault_words") or []) + (rules.get("urgent_repair_keywords") or [])]
    if len(substance(rest)) >= 2 and any(w in rest for w in faults):
        return "place_repair_form"
    triggers = [str(w) for w in rules.get("high_priority_complaint_keywords") or []]
    if category_of(rest) or any(w in rest for w in triggers):
        return "place_complaint_form"
    return None


class PlaceRouteDetail(Action):
    """Details given outside any form (``inform``): a ticket number gets its progress, a fault
    or a grievance starts the form it belongs to, which takes them all; anything else gets
    the usual "how can I help"."""

    def name(self) -> Text:
        return "action_place_route_detail"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        from actions.dialogue import answer_beside_forms, asked_for_a_person

        text = (tracker.latest_message or {}).get("text") or ""
        if parsing.find_ticket_number(text):
            return CheckTicket().run(dispatcher, tracker, domain)
        person = asked_for_a_person(dispatcher, tracker, reset(domain))
        if person is not None:
            return person
        target = routed_form(text)
        if target:
            return reset(domain) + [FollowupAction(target)]
        answered = answer_beside_forms(dispatcher, tracker, reset(domain), domain)   # 对 / 那多久 / 工单号忘了 …
        if answered is not None:
            return answered
        dispatcher.utter_message(response="utter_how_can_help")
        return []


class RefuseReturn(Action):
    """A business that sells nothing: a return request gets a polite no, and no ticket."""

    def name(self) -> Text:
        return "action_refuse_return"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        dispatcher.utter_message(response="utter_return_not_served")
        return []


class PlaceStop(Action):
    """Stop: the form just left (or nothing running) and every detail it took forgotten."""

    def name(self) -> Text:
        return "action_place_stop"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        stopped = False
        for event in reversed(tracker.events):
            if event.get("event") == "user":
                break
            if event.get("event") == "active_loop" and event.get("name") is None:
                stopped = True
        dispatcher.utter_message(text=pack.say("stopped" if stopped else "nothing_to_stop"))
        return reset(domain)
