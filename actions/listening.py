"""Forms that listen: what one customer message says, judged against the question asked.

:class:`ListeningForm` is the validation action of each form (``validate_<form>``). Every
turn it

- mines every detail the message carries, whatever was asked (a phone inside a description,
  an address and a day count in the first message, an order number given early);
- judges the answer to the question asked: accepted only when it is one; otherwise the
  customer hears why and the question again (the form re-asks);
- applies corrections at any point (``电话改成…``, ``地址不对``: by entity or by naming a field);
- after two failed tries at a field, offers a way on (skip it, a landline, no order number,
  or a person);
- hands a change of mind (``不投诉了，我要退货``) to the finishing action through ``switch_to``.

Slots are all ``custom``-mapped (domain.yml): nothing is taken from a message unless a
validator here says it is the answer.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import promise_text
from bot.profile import details, mentions, pack, parsing
from bot.profile import business as profile

NO_VALUE = "无"             # a slot's value for "none given" (no order number, no phone): never said
YES = re.compile(r"^(对|对的|是|是的|确认|确定|没问题|没错|正确|提交|可以|好的?|行|嗯+|ok|OK|yes|就这样|没有问题|都对|确认提交|提交吧)[吧啊呀的了！!。～~\s]*$")
NO = re.compile(r"^(不对|不是|错了|有错|不正确|不行|要改|修改|改一下)")
NO_ORDER = re.compile(r"没有|没订单|找不到|不知道|忘了|记不得|不记得|没留|没存|查不到|无订单|^无$|没$")
SKIP = re.compile(r"跳过|不方便|不想留|不留|不给|先不")
# a product said to be fine (冰箱没事 是热水器不出热水, 冰箱那个是我妈家的): not the one meant
FINE = re.compile(r"\s*(?:的|那个|这个)?\s*(?:没事|没问题|没坏|是好的|好好的|好着|正常|不用修|不用管|不用了)")
UNSURE = 0.5               # an intent below this may be the classifier misreading an answer
# what a policy question about an item tells a form that starts right after it
QUESTION_FIELDS = ("product", "days_since_receipt")
REDIRECT = "start:"          # switch_to for a form that should never have started: the other one, silently
PERSON = "person"           # … for a form started by a line that asks for a person (冰箱坏了 帮我转人工)
INTERRUPTIONS = ("faq", "request_human", "bot_challenge", "check_ticket", "dispute")
INTENT_FORM = {"complain": "complaint_form", "request_repair": "repair_form",
               "request_return": "return_form"}
CHANGE_OF_MIND = re.compile(r"不.{0,3}了|算了|还是|改成|改为|换成|不想|不要|不用")
FILLER = re.compile(r"(我要|我想|想要|帮我|麻烦|请|你们|给我|一下|投诉|报修|维修|修理|上门|派人|师傅|来修|"
                    r"安装|申请|处理|的|了|吧|啊|呀|呢|哦|嗯|！|!|。|，|,|～|~|\s)")


def substance(text: str) -> str:
    """What is left of a message after the request words: is there a description in it?"""
    return FILLER.sub("", text or "")


NUMBERS = re.compile(r"[A-Za-z0-9+\-\s]")


# what a correction says besides the new value: the field's name, an "oops", "mine"
ASIDES = re.compile("|".join(sorted({re.escape(w) for words in details.FIELD_WORDS.values() for w in words}
                                    | {"哎呀", "哎哟", "哎", "唉", "呃", "噢", "哦", "啊", "呀", "不好意思", "抱歉", "对不起",
                                       "sorry", "我的", "我", "刚才", "刚刚", "那个", "是"}, key=len, reverse=True)))


def content(text: str) -> str:
    """What a message says besides its ids: no phone, no order number, no field's name, no
    "oops" aside (``我的手机号码是139…`` says nothing more)."""
    rest = details.PHONE_ANY.sub("", parsing.ORDER_ID_RE.sub("", details.fold(text)))
    return substance(ASIDES.sub("", rest))


def only_corrects(turn: "Turn", found: Dict[str, Any]) -> bool:
    """``错了 DD…`` / ``哎呀电话写错了，不是7711是139…``: the message corrects a detail it carries
    and says nothing else (numbers, the field's name, an "oops" aside), so it is no answer to
    the question asked (a reason, a description)."""
    if not details.is_correction(turn.text) or not any(
            name != turn.requested and value is not None for name, value in found.items()):
        return False
    rest = ASIDES.sub("", details.CORRECTION.sub("", NUMBERS.sub("", turn.folded)))
    return len(substance(rest)) < 2


class Turn:
    """The latest customer message as the validators see it."""

    def __init__(self, tracker: Tracker, form: str) -> None:
        message = tracker.latest_message or {}
        self.tracker = tracker
        self.text = (message.get("text") or "").strip()
        self.folded = details.fold(self.text)
        self.intent = (message.get("intent") or {}).get("name") or ""
        self.confidence = float((message.get("intent") or {}).get("confidence") or 0)
        self.entities = {e.get("entity"): str(e.get("value")) for e in message.get("entities", [])
                         if e.get("value")}
        self.requested = tracker.get_slot("requested_slot")
        # the product named last, but never one the customer says it is not (不是沙发)
        products = [e for e in message.get("entities", []) if e.get("entity") == "product" and e.get("value")]
        kept = [e for e in products if not self.text[max(0, (e.get("start") or 0) - 2):(e.get("start") or 0)].endswith(("不是", "是不"))
                and not FINE.match(self.text[(e.get("end") or 0):])]
        # the one affirmed (…是热水器不出热水) over one named in passing after it
        said = [e for e in kept if self.text[max(0, (e.get("start") or 0) - 1):(e.get("start") or 0)] == "是"]
        self.product = str((said or kept or products)[-1]["value"]) if products else None
        # the form's first turn (activation, or just switched to): no question asked yet
        self.starting = self.requested is None
        self.resumed = not self.starting and _interrupted(tracker, form)

    def slot(self, name: str) -> Any:
        return self.tracker.get_slot(name)

    @property
    def empty(self) -> bool:
        return not substance(self.text)


class EarlierTurn(Turn):
    """A message the customer wrote before this form started, read as if it opened the form."""

    def __init__(self, tracker: Tracker, message: Dict[str, Any]) -> None:  # noqa: D401
        self.tracker = tracker
        self.text = (message.get("text") or "").strip()
        self.folded = details.fold(self.text)
        self.intent = (message.get("intent") or {}).get("name") or ""
        self.entities = {e.get("entity"): str(e.get("value")) for e in message.get("entities", [])
                         if e.get("value")}
        products = [e for e in message.get("entities", []) if e.get("entity") == "product" and e.get("value")]
        self.product = str(products[-1]["value"]) if products else None
        self.confidence = float((message.get("intent") or {}).get("confidence") or 0)
        self.requested, self.starting, self.resumed = None, True, False


# a message these were said in was no detail for a form (a question answered, a greeting …)
NOT_DETAILS = ("greet", "goodbye", "thank", "bot_challenge", "check_ticket", "rate_service", "request_human")


def earlier_messages(tracker: Tracker, messages: int = 4, answered: bool = False) -> List[Dict[str, Any]]:
    """The customer's messages just before the current one that no form read (written while
    no form was active: answered as a FAQ the classifier was unsure of, a detail given on its
    own), oldest first; none from before a ticket was filed, a form was cancelled, or the
    session began, and (unless ``answered``) never a question answered with confidence."""
    found: List[Dict[str, Any]] = []
    inside, seen = False, 0
    for event in reversed(tracker.events or []):
        kind = event.get("event")
        if kind == "bot":
            if parsing.find_ticket_number(event.get("text") or "") or \
                    (event.get("metadata") or {}).get("utter_action") == "utter_stopped":
                break
        elif kind == "slot" and event.get("name") == "return_dispute" and event.get("value"):
            break                                   # a return refused: its details are done with
        elif kind == "action" and event.get("name") == "action_session_start":
            break
        elif kind == "active_loop":
            inside = event.get("name") is None      # going back: before a form closed, it ran
        elif kind == "user":
            seen += 1
            if seen == 1:
                continue                            # the message being read now
            if seen > messages + 1:
                break
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            if inside or intent.get("name") in NOT_DETAILS or \
                    not answered and intent.get("name") == "faq" and (intent.get("confidence") or 0) >= 0.5:
                continue
            found.append({**parse, "text": event.get("text") or parse.get("text") or ""})
    return list(reversed(found))


def _interrupted(tracker: Tracker, form: str) -> bool:
    """Back in the form after another action answered this same message (a FAQ, a ticket
    lookup): the message was not for the form."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "action" and event.get("name") not in (
                form, "action_listen", "action_extract_slots", f"validate_{form}", None):
            return True
    return False


def mine_phone(turn: Turn) -> Optional[str]:
    found = details.find_phone(turn.text)
    return found[1] if found else None


# a mobile number with a digit too many (138712605499), typed when the phone was asked
_PHONE_SLIP = re.compile(r"(?<!\d)1[3-9]\d{10}(?!\d)")


def mine_order(turn: Turn) -> Optional[str]:
    found = parsing.find_order_id(turn.entities.get("order_id") or "") or parsing.find_order_id(turn.text)
    if found and turn.requested == "phone" and _PHONE_SLIP.fullmatch(found):
        return None          # a phone mistyped, for the phone's check to refuse, not an order number
    return found


MINERS = {"phone": mine_phone, "order_id": mine_order}


def mine_ids(turn: Turn, found: Dict[str, Any], *fields: str) -> None:
    """The phone and/or order number a message carries, wherever it is in the form, into
    ``found`` in the order given (that is the order of the slot events)."""
    for field, value in [(field, MINERS[field](turn)) for field in fields]:
        if value:
            found[field] = value


def mine_told_complaint(turn: Turn, found: Dict[str, Any],
                        category_of: Callable[[str], Optional[str]]) -> bool:
    """A complaint told in the message that starts its form: its category (by the form's own
    ``category_of``) and, when there is enough of it, its description. True when it was told."""
    category = category_of(turn.text)
    if category:
        found["complaint_category"] = category
    rest = details.strip_phone(turn.text)
    if len(content(turn.text)) < 6:          # a phone, an order number, a field's name: no problem told
        return False
    found["complaint_description"] = rest[:1000]
    return True


def tries(turn: Turn) -> Dict[str, int]:
    return dict(turn.slot("form_tries") or {})


class ListeningForm(Action):
    """One form's validation: subclasses give ``form``, ``fields`` and ``judge_<field>``."""

    form: str = ""
    kind: str = ""                      # the ticket it files (its promise: bot/profile/sla.py)
    fields: Tuple[str, ...] = ()
    optional: Tuple[str, ...] = ()

    def name(self) -> Text:
        return f"validate_{self.form}"

    # --- per-form hooks --------------------------------------------------------------------
    def mine(self, turn: Turn, found: Dict[str, Any]) -> None:
        """Details a message can carry whatever was asked (override per form)."""

    def after(self, turn: Turn, found: Dict[str, Any], dispatcher: CollectingDispatcher) -> None:
        """Checks once details are known (the return window); may set ``requested_slot``."""

    def aside(self, turn: Turn, found: Dict[str, Any], dispatcher: CollectingDispatcher) -> bool:
        """A message that settles nothing new but needs a word (not a failed try): True when
        answered, and the form asks its question again."""
        return False

    # the details an earlier message (before the form started) may give the form
    context_fields: Tuple[str, ...] = ("order_id", "phone")

    def mine_earlier(self, turn: Turn, found: Dict[str, Any]) -> None:
        """What the messages just before this form (no form read them) told it: ``换货`` answered
        as a FAQ, then ``DD…`` on its own, then ``算了，还是退货吧`` starts a return that has
        the order number. The current message, mined after, has the last word."""
        for message in earlier_messages(turn.tracker, answered=True):
            told: Dict[str, Any] = {}
            self.mine(EarlierTurn(turn.tracker, message), told)
            intent = message.get("intent") or {}
            # a policy question answered just before (我十天前收到的电饭煲…能退货吗) tells of its
            # item only what it is and when it came, never an order number or a phone for the form
            asked = intent.get("name") == "faq" and (intent.get("confidence") or 0) >= 0.5
            fields = QUESTION_FIELDS if asked else self.context_fields
            found.update({k: v for k, v in told.items() if k in fields and k in self.context_fields
                          and v not in (None, "") and turn.slot(k) in (None, "")})

    def way_out(self, field: str) -> str:
        return pack.say("way_out")

    # questions whose answers the judge checks by their form (a number, a kind, a date, an
    # address): a message it accepts is that answer, whatever intent the classifier gave it
    closed: Tuple[str, ...] = ("order_id", "phone", "return_type", "days_since_receipt", "address")
    SURE_STOP = 0.6

    def answers_anyway(self, turn: Turn) -> bool:
        """A message the classifier took for a side question that is the answer all the same: no
        question in it, and the judge takes it. For a closed question whatever the classifier's
        confidence (``还是退款吧`` to "退货还是换货?", read as the refund FAQ); for a free-text one
        only when it was unsure (``已经两周了还没收到 订单DD…``, read at 0.3 as a progress query).
        A request for a person that asks for none in words (``电话150… 今天到底能不能来人？``: 来人 is
        the engineer) is the answer to a closed question it carries."""
        if turn.intent == "request_human" and turn.requested in self.closed and turn.requested in self.fields:
            from actions.service import wants_person

            return not wants_person(turn.text) and getattr(self, f"judge_{turn.requested}")(turn)[0] is not None
        if turn.intent not in ("faq", "check_ticket") or turn.requested not in self.fields \
                or mentions.is_question(turn.text) or parsing.find_ticket_number(turn.text):
            return False
        if turn.requested not in self.closed and turn.confidence >= UNSURE:
            return self.tells_other_fields(turn)
        value, _ = getattr(self, f"judge_{turn.requested}")(turn)
        return value is not None or self.tells_other_fields(turn)

    def tells_other_fields(self, turn: Turn) -> bool:
        """The message gives the form another of its answers (``昨天到的`` while the reason is asked,
        read as a progress query): it is for the form, which takes it and asks its question again."""
        told: Dict[str, Any] = {}
        self.mine(turn, told)
        return any(name in self.fields and name != turn.requested and value not in (None, "")
                   and value != turn.slot(name) for name, value in told.items())

    def really_stops(self, turn: Turn) -> bool:
        """A stop the classifier is sure of, or one the words say (``算了``, ``不投诉了``): not
        ``内胆涂层掉了一大片`` taken, unsure, for a stop."""
        return turn.confidence >= self.SURE_STOP or mentions.says_stop(turn.text)

    def own_kind(self, turn: Turn) -> bool:
        """A "stop"-sounding message that is about this very form (``不换了，退货``)."""
        words = details.KINDS.get(self.form, ())
        folded = details.without_negated_kinds(turn.text)
        return any(w in folded for w in words) or (self.form == "return_form" and details.return_type(turn.text) is not None
                                                   and "不" in turn.folded and any(w in folded for w in ("退", "换")))

    # --- the turn ----------------------------------------------------------------------------
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain) -> List[Dict]:
        turn = Turn(tracker, self.form)
        if turn.resumed:
            return []
        if asks_for_a_person(turn):
            return [SlotSet("switch_to", PERSON), SlotSet("requested_slot", None)]
        found: Dict[str, Any] = {}
        counts = tries(turn)
        target = details.switch_target(turn.text, self.form)
        if not turn.starting:
            # Returning nothing rejects the form for this message: the rules answer it (a FAQ,
            # a person, a ticket lookup, a stop or another form) and the form resumes or ends.
            if turn.intent == "faq" and faq_with_a_statement(turn, dispatcher):
                # the question answered here, and what else it told is for the form
                turn = _Reworded(turn, statement_part(turn.text), keep_entities=True)
            elif turn.intent in INTERRUPTIONS and target and CHANGE_OF_MIND.search(turn.folded) \
                    and not mentions.is_question(turn.text) and not parsing.find_ticket_number(turn.text):
                # a switch in words the classifier took for a side question (算了 还是直接退吧, read
                # as a progress query): the switch
                return [SlotSet("switch_to", target), SlotSet("requested_slot", None)]
            elif turn.intent in INTERRUPTIONS and not self.answers_anyway(turn):
                return []
            if turn.intent == "stop" and (target or not self.own_kind(turn)) and self.really_stops(turn):
                return []
            if INTENT_FORM.get(turn.intent) not in (None, self.form) and target:
                return []
            if target and CHANGE_OF_MIND.search(turn.folded):
                return [SlotSet("switch_to", target), SlotSet("requested_slot", None)]
            if side_answer(turn, dispatcher, self.kind):
                # answered; what the message also told (洗衣机不排水 修要花钱吗) is still for the form
                told = statement_part(turn.text)
                if not told:
                    return [SlotSet("form_tries", counts)]    # the form asks again
                turn = _Reworded(turn, told, keep_entities=True)
            elif policy_question_beside(turn, dispatcher):
                turn = _Reworded(turn, statement_part(turn.text), keep_entities=True)
        elif target_instead := details.wanted_instead(turn.text, self.form):
            # the message that started this form asks for a return in words (…熏得头疼 想退货, read
            # as a complaint), or complains about one: the other form starts with it instead,
            # without a word of switching
            return [SlotSet("switch_to", REDIRECT + target_instead), SlotSet("requested_slot", None)]
        elif policy_question_beside(turn, dispatcher):
            # the message that starts the form asks a policy question too (…态度特别冲。投诉一般多久
            # 给答复？): answered, and the rest starts the form
            turn = _Reworded(turn, statement_part(turn.text), keep_entities=True, keep_intent=True)
        if turn.starting:
            self.mine_earlier(turn, found)
        self.mine(turn, found)
        requested = turn.requested if not turn.starting else None
        patched = self.patch(turn, found, dispatcher)
        if requested == "form_confirmed":
            self.confirm(turn, found, dispatcher)
        elif requested in self.fields and requested not in found and not patched and not only_corrects(turn, found) \
                and not self.aside(turn, found, dispatcher):
            value, why = getattr(self, f"judge_{requested}")(turn)
            if value is not None:
                found[requested] = value
            elif gave_other_details(turn, found, requested):
                # not this answer, but other details: taken, and the question is asked again
                acknowledge(turn, found, requested, dispatcher)
            else:
                counts[requested] = counts.get(requested, 0) + 1
                self.refuse(turn, requested, why, counts[requested], found, dispatcher)
        self.corrections(turn, found, requested)
        if requested in found:
            counts.pop(requested, None)
        self.after(turn, found, dispatcher)
        return [SlotSet(name, value) for name, value in found.items()] + [SlotSet("form_tries", counts)]

    def refuse(self, turn: Turn, field: str, why: str, count: int, found: Dict[str, Any],
               dispatcher: CollectingDispatcher) -> None:
        """Not an answer: say what was understood, why it is not one; a way on after two."""
        lead = pack.labels("social_leads").get(turn.intent, "")     # 您好～ before the hint
        if count >= 2 and field in self.optional:
            found[field] = self.skip_value(field)
            dispatcher.utter_message(text=lead + pack.say("field_skipped"))
            return
        text = lead + (why or pack.say("hint_not_understood"))
        if count >= 2:
            text += self.way_out(field)
        dispatcher.utter_message(text=text)

    def skip_value(self, field: str) -> Any:
        return NO_VALUE

    def patch(self, turn: Turn, found: Dict[str, Any], dispatcher: CollectingDispatcher) -> bool:
        """``是2栋1806 不是1808``: the part put right in a detail already given (the field named,
        else whichever holds the wrong part); True when one was. Whatever was asked is asked again."""
        if turn.starting or not details.is_correction(turn.text) and "不是" not in turn.folded:
            return False
        for field in details.named_fields(turn.text, self.fields) or self.fields:
            current = turn.slot(field)
            if field not in PATCHABLE or field in found or not isinstance(current, str) or current == NO_VALUE:
                continue
            new = details.patched(current, turn.text)
            judged = getattr(self, f"judge_{field}")(_Reworded(turn, new))[0] if new else None
            if judged is not None:
                found[field] = judged
                found["form_confirmed"] = None
                dispatcher.utter_message(text=pack.say("field_put_right", field=pack.labels("field_names")[field],
                                                       value=judged))
                return True
        return False

    def corrections(self, turn: Turn, found: Dict[str, Any], requested: Optional[str]) -> None:
        """``原因改成…`` / ``地址不对`` names a field: its new value, or ask it again."""
        if not details.is_correction(turn.text) or turn.starting:
            return
        for field in details.named_fields(turn.text, self.fields):
            if field in found and field != requested:
                continue
            new = details.after_correction(turn.text)
            judged = None
            if new:
                fake = _Reworded(turn, new)
                judged, _ = getattr(self, f"judge_{field}")(fake)
            if judged is not None:
                found[field] = judged
            elif field not in found or field == requested and found.get(field) is None:
                found[field] = None          # the form asks it again
            found["form_confirmed"] = None

    def confirm(self, turn: Turn, found: Dict[str, Any], dispatcher: CollectingDispatcher) -> None:
        changed = [f for f in self.fields if f in found]
        if changed:
            found["form_confirmed"] = None          # corrected: read back again
            return
        if turn.intent == "affirm" and not NO.match(turn.folded) or YES.match(turn.folded):
            found["form_confirmed"] = True
            return
        named = details.named_fields(turn.text, self.fields)
        if named:
            for field in named:
                found[field] = None
            dispatcher.utter_message(text=pack.say("confirm_field_again"))
            return
        if turn.intent == "deny" or NO.match(turn.folded) or details.is_correction(turn.text):
            dispatcher.utter_message(text=pack.say("confirm_which_field"))
        else:
            dispatcher.utter_message(text=pack.say("confirm_or_correct"))
        found["form_confirmed"] = None


# the fields a form asks (the pack's messages.yml names each: field_names)
FIELDS = ("complaint_category", "complaint_description", "order_id", "phone", "product", "fault_description",
          "address", "return_type", "return_reason", "days_since_receipt")


def gave_other_details(turn: Turn, found: Dict[str, Any], requested: str) -> bool:
    """The message brought details for other questions (new ones, not what the form has)."""
    return any(name in FIELDS and name != requested and value not in (None, "")
               and value != turn.slot(name) for name, value in found.items())


def acknowledge(turn: Turn, found: Dict[str, Any], requested: str, dispatcher: CollectingDispatcher) -> None:
    names = pack.labels("field_names")
    told = [names[n] for n, v in found.items() if n in FIELDS and n != requested and v not in (None, "")
            and v != turn.slot(n)]
    kind = found.get("return_type") if found.get("return_type") != turn.slot("return_type") else None
    if kind in ("return", "exchange") and requested != "return_type":
        # 不换了 退货: the way chosen, by name (按退货办理), not "退换方式已记下"
        label = pack.say("return_type_return") if kind == "return" else pack.say("return_type_exchange")
        others = [t for t in told if t != names["return_type"]]
        dispatcher.utter_message(text=pack.say("noted_return_type", kind=label) + (
            pack.say("noted_details_more", fields=pack.say("list_separator").join(dict.fromkeys(others)))
            if others else ""))
        return
    dispatcher.utter_message(text=pack.say("noted_details",
                                           fields=pack.say("list_separator").join(dict.fromkeys(told))))


def side_answer(turn: Turn, dispatcher: CollectingDispatcher, kind: str = "") -> bool:
    """A message mid-form that is no answer but something to answer: a bare ticket number (its
    progress), a question the classifier was unsure of (the FAQ answer it leans to), why a
    phone is needed, how soon (``那得多长时间能来人啊``: the promise of the ticket this form files).
    True when answered (the form then repeats its question, no failed try)."""
    number = parsing.find_ticket_number(turn.text)
    if number and len(substance(re.sub(r"(?i)kf\d+", "", turn.folded))) < 6:
        from actions.tickets import answer_ticket_number      # the lookup, with its privacy check
        dispatcher.utter_message(text=answer_ticket_number(turn.tracker, number, turn.text))
        return True
    if mentions.asks_why_phone(turn.text) and not details.find_phone(turn.text):    # whatever was asked
        dispatcher.utter_message(text=pack.say("why_phone"))
        return True
    if turn.intent not in ("nlu_fallback", "out_of_scope") or not mentions.is_question(turn.text):
        return False
    if details.find_phone(turn.text) or mine_order(turn) or details.find_address(turn.text):
        return False
    if kind and mentions.asks_when(turn.text) and not statement_part(turn.text):
        dispatcher.utter_message(text=promise_before_filing(turn, kind))
        return True
    selected = (((turn.tracker.latest_message or {}).get("response_selector") or {}).get("faq") or {}).get("response") or {}
    key, confidence = selected.get("intent_response_key"), selected.get("confidence") or 0
    if key and confidence >= (0.1 if turn.intent == "nlu_fallback" else 0.4):
        dispatcher.utter_message(response=f"utter_{key}")
        return True
    return False


def asks_for_a_person(turn: "Turn") -> bool:
    """The line that starts a form asks for a person in words (``冰箱坏了 帮我转人工``, ``让客服明天
    给我打个电话``): the handoff, not the form's questions. Never for an emergency (``燃气泄漏了
    转人工``): the urgent repair is dispatched first, its promise told."""
    from actions.service import wants_person

    if not (turn.starting and wants_person(turn.text)):
        return False
    rules = load_facts()
    urgent, _ = details.urgency(turn.text, rules.get("urgent_repair_keywords") or (),
                                rules.get("urgent_repair_not_urgent_when_leaking_from") or ())
    return not urgent


# the details a customer puts right in part (是2栋1806 不是1808, 不是冰箱 是洗碗机)
PATCHABLE = ("address", "product")


class _Reworded(Turn):
    """A turn whose text is the new value in a correction (``…改成 <value>``)."""

    def __init__(self, turn: Turn, text: str, keep_entities: bool = False,  # noqa: D401 - a copy with new text
                 keep_intent: bool = False) -> None:
        self.__dict__.update(turn.__dict__)
        self.original = getattr(turn, "original", turn.text)     # the whole message, question and all
        self.text, self.folded = text, details.fold(text)
        self.intent = turn.intent if keep_intent else "inform"
        if not keep_entities:
            self.entities = {}


def promise_before_filing(turn: Turn, kind: str) -> str:
    """How soon, for the ticket this form is about to file (an urgent repair's own promise)."""
    what = pack.labels("ticket_when_what")
    urgent = kind == "repair" and turn.slot("urgency") == "urgent"
    return pack.say("when_before_filing", promise=promise_text(kind, "urgent" if urgent else "normal"),
                    what=what.get(f"{kind}_urgent" if urgent else kind, what["other"]))


def faq_with_a_statement(turn: Turn, dispatcher: CollectingDispatcher) -> bool:
    """A policy question that also tells the form something (``冰箱不制冷了 保修期内免费吗``):
    the FAQ answer is given here (the rules would drop the statement); True when it was."""
    told = statement_part(turn.text)
    selected = (((turn.tracker.latest_message or {}).get("response_selector") or {}).get("faq") or {}).get("response") or {}
    if not told or not selected.get("intent_response_key"):
        return False
    dispatcher.utter_message(response=f"utter_{selected['intent_response_key']}")
    return True


# the selector's confidence that makes a question beside a statement a policy question to
# answer (the message's intent being the form's or ``inform``); questions that vent (到底有没有人管,
# 这是怎么回事) ask for no policy
ASIDE_BAR = 0.55
RHETORICAL = re.compile(r"到底|有没有人管|管不管|怎么回事|搞什么|什么意思|凭什么|还让不让|有没有搞错|像话|"
                        r"(?i:what the|are you kidding)")


def policy_question_beside(turn: Turn, dispatcher: CollectingDispatcher) -> bool:
    """A statement with a policy question beside it, read as the form's own intent or as an
    answer (``…态度特别冲。投诉一般多久给答复？``, ``通电没反应 修要不要钱啊``): the question is
    answered from the FAQ topic the selector is sure of; True when it was (the statement is
    still for the form). FAQ-read messages are ``faq_with_a_statement``'s."""
    if turn.intent == "faq" or not statement_part(turn.text):
        return False
    asked = [c for c in re.split(r"[，,。！!？?；;\s]+", details.fold(turn.text)) if c and mentions.is_question(c)]
    if not asked or RHETORICAL.search("".join(asked)):
        return False
    selected = (((turn.tracker.latest_message or {}).get("response_selector") or {}).get("faq") or {}).get("response") or {}
    key, confidence = selected.get("intent_response_key"), selected.get("confidence") or 0
    if not key or confidence < ASIDE_BAR:
        return False
    dispatcher.utter_message(response=f"utter_{key}")
    return True


def statement_part(text: str) -> str:
    """The clauses of a message that are not questions (``洗衣机不排水 修要花钱吗`` → ``洗衣机不排水``),
    or "" when nothing but questions (and fillers) is left."""
    clauses = [c for c in re.split(r"[，,。！!？?；;\s]+", details.fold(text)) if c]
    kept = [c for c in clauses if not mentions.is_question(c)]
    if len(kept) == len(clauses):
        return ""                    # no question in it to set apart: the answer was all it said
    rest = " ".join(kept)
    # a phone or an order number beside the question (电话136…，另外问下退款多久到账) is for the form too
    carries_id = details.find_phone(rest) is not None or parsing.find_order_id(rest) is not None
    return rest if carries_id or len(content(SOCIAL_WORDS.sub("", rest))) >= 3 else ""


# greetings, thanks and asking words: no statement for a form (你好 请问保修几年)
SOCIAL_WORDS = re.compile(r"你好|您好|在吗|在不在|请问|问一下|问下|想问|麻烦|谢谢|多谢|打扰|那个|还有|另外|对了|"
                          r"(?i:hi|hello|hey|thanks|please|btw)")


def load_facts() -> Dict[str, Any]:
    return profile.load_profile()
