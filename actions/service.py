"""Reaching a human, misunderstandings, and satisfaction ratings."""
from __future__ import annotations

import re
from typing import Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (answered_misses, customer_channel, faq_ranking, follow_up_topic, latest_turn_key,
                            leaning_topic, local_time, named_topic, store, ticket_payload)
from actions.dialogue import add_to_ticket, carries_item, disputes, form_for, own_recent_ticket, refused_just_now, reset
from actions.listening import NO_VALUE
from bot.profile import details, mentions, parsing, privacy
from bot.profile import business as profile
from bot.profile import pack


def _phone(tracker: Tracker):
    """The phone the customer gave in the form, or in this very message (``转人工，电话…``)."""
    phone = tracker.get_slot("phone")
    if phone in (None, NO_VALUE):
        found = details.find_phone(tracker.latest_message.get("text", ""))
        phone = found[1] if found else None
    return details.without_extension(str(phone)) if phone else None


# a call back asked for, not a live chat (回电给我 / 打我电话 / call me back): in service hours it is
# booked as a callback ticket, not a place in the queue (after 算了不等了, the offer taken)
WANTS_CALLBACK = re.compile(r"(?<![不别没])(?:回电|回个电话|回个电|打给我|给我打个?电话|打我电话|打电话给我|致电我)|"
                            r"(?i:call me back|callback|phone me)")


def wants_callback(text: str) -> bool:
    return bool(WANTS_CALLBACK.search(details.fold(text or "")))


def hand_off(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str) -> None:
    """Never a dead end. In service hours a live handoff: the customer queues for a person and
    no ticket is opened (the gateway opens the record when an agent takes the conversation,
    bot/support/handoffs.py; a customer still queued at closing time gets a callback ticket,
    bot/support/waiting.py); a call back asked for in hours is booked as one. Out of hours a
    callback ticket; asked again right after it was booked (我电话139… 明早一上班就给我打): the
    phone and the wish go on that ticket, no second one."""
    in_hours = profile.within_service_hours()
    text = tracker.latest_message.get("text", "")
    if in_hours and not wants_callback(text):
        dispatcher.utter_message(text=pack.say("handoff_in_hours"))
        dispatcher.utter_message(json_message=ticket_payload(None, "handoff", reason=reason, in_hours=True))
        return
    number = own_recent_ticket(tracker)
    booked = store().find(number) if number else None
    if booked is not None and booked.kind == "callback" and booked.status not in ("resolved", "closed"):
        add_to_ticket(dispatcher, number, text)
        return
    ticket, _ = store().open_ticket(
        kind="callback", category=pack.say("handoff_category"), customer_id=tracker.sender_id,
        channel=customer_channel(tracker), idempotency_key=latest_turn_key(tracker, "handoff"),
        description=privacy.mask_customer_text(text)[:500],
        phone=_phone(tracker),
        details={"reason": reason, "in_hours": in_hours})
    # the business's wording (its pack's messages.yml): the shop's 人工客服, the property desk …
    text = pack.say("callback_in_hours" if in_hours else "handoff_out_of_hours",
                    due=local_time(ticket.sla_due_at), number=ticket.number)
    dispatcher.utter_message(text=text)
    # in hours a booked call back is no live handoff: the payload's in_hours stays False
    dispatcher.utter_message(json_message=ticket_payload(
        ticket, "handoff", reason=reason, in_hours=False))


def help_without_a_number(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """``工单号我忘了`` from a customer with no open ticket here (filed on another channel, by
    phone): a person looks it up by the customer's phone, never "send the number" again. True
    when handed off."""
    text = (tracker.latest_message or {}).get("text", "")
    if not mentions.forgot_ticket(text) or store().for_customer(tracker.sender_id):
        return False
    dispatcher.utter_message(text=pack.say("lookup_forgot"))
    hand_off(dispatcher, tracker, "lookup")
    return True


# agreeing with the ticket just read back, in the same breath as the thanks (对的 谢谢你们啊)
_AGREES = re.compile(r"对|是的|没错|没问题|就这样|确认|(?i:correct|yes)")


class Thank(Action):
    """Thanks: you are welcome; said with a yes right after a ticket was filed (对的 谢谢你们啊),
    the ticket is confirmed with its promise first, as a plain 对 would be."""

    def name(self) -> Text:
        return "action_thank"

    def run(self, dispatcher, tracker: Tracker, domain):
        text = (tracker.latest_message or {}).get("text", "")
        number = own_recent_ticket(tracker) if _AGREES.search(text) else None
        ticket = store().find(number) if number else None
        if ticket is not None and ticket.status not in ("resolved", "closed"):
            from actions.tickets import ticket_when

            dispatcher.utter_message(text=pack.say("ticket_confirmed", when=ticket_when(ticket)))
        dispatcher.utter_message(response="utter_you_are_welcome")
        return []


class RequestHuman(Action):
    def name(self) -> Text:
        return "action_request_human"

    def run(self, dispatcher, tracker, domain):
        hand_off(dispatcher, tracker, "request_human")
        # a person takes over: the form and what it collected are gone (a later complaint
        # starts afresh, not with this one's category)
        return reset()


class HandleFallback(Action):
    """First misunderstanding: ask to rephrase. Second in a row: bring in a human."""

    def name(self) -> Text:
        return "action_handle_fallback"

    def run(self, dispatcher, tracker: Tracker, domain):
        if parsing.find_ticket_number(tracker.latest_message.get("text", "")):
            from actions.tickets import CheckTicket     # a bare ticket number: its progress
            return CheckTicket().run(dispatcher, tracker, domain)
        from actions.dialogue import asked_for_a_person
        from actions.tickets import promise_answer

        promised = promise_answer(tracker)               # "什么时候有人给我回话" about the ticket just filed
        if promised:
            dispatcher.utter_message(text=promised)
            return []
        person = asked_for_a_person(dispatcher, tracker, reset())   # 让客服明天给我打个电话 +86 139…
        if person is not None:
            return person
        # the details a message carries start their form (``…漏水能不能给我换一台新的``)
        target = form_for(tracker.latest_message or {}, profile.load_profile().get("high_priority_complaint_keywords", []))
        if target and target in ((domain or {}).get("forms") or {}):     # this business's forms only
            return reset() + [FollowupAction(target)]
        from actions.dialogue import ask_about_product, carries_details, form_of_fragments, route_by_context

        target = form_of_fragments(tracker)              # a request told in pieces (电视 / 黑屏了)
        if target and target in ((domain or {}).get("forms") or {}):
            return reset() + [FollowupAction(target)]
        routed = route_by_context(tracker, domain)       # details after a request (换货 … DD…)
        if routed:
            return routed
        text = tracker.latest_message.get("text", "")
        if (refused := refused_just_now(tracker)) and disputes(text, refused):   # "我不同意…要个说法" after a refused return
            return [FollowupAction("action_record_dispute")]
        if help_without_a_number(dispatcher, tracker):     # 工单号我忘了
            return reset()
        number = own_recent_ticket(tracker) if carries_details(text) else None
        if number:                                       # a phone for the ticket just filed, misread
            add_to_ticket(dispatcher, number, text)
            return []
        if ask_about_product(dispatcher, tracker):       # "冰相" alone: what about it?
            return []
        # a follow-up to the answer just given, or a question the classifier was unsure of:
        # the topic just answered, or the FAQ answer it leans to, when it leans
        topic = named_topic(text, domain) or follow_up_topic(tracker) or leaning_topic(tracker, 0.35)
        if topic:
            dispatcher.utter_message(response=f"utter_{topic}")
            return []
        misses = answered_misses(tracker, ("nlu_fallback",))
        if misses >= 2:
            dispatcher.utter_message(text=pack.say("handoff_after_misses"))
            hand_off(dispatcher, tracker, "fallback")
            return reset()
        elif answered_misses(tracker, ("nlu_fallback", "out_of_scope")) >= 2:
            # off topic, then not understood: the offer of a person or a call, as off topic twice
            dispatcher.utter_message(text=pack.say("out_of_scope_again"), buttons=pack.buttons("buttons_out_of_scope_again"))
        else:
            dispatcher.utter_message(response="utter_please_rephrase")
        # the dashboard's "not understood" list (bot/support/return_calls.py keeps it masked)
        confidence = (tracker.latest_message.get("intent") or {}).get("confidence")
        from bot.support import events

        dispatcher.utter_message(json_message={"kefu": {"event": events.BOT_FALLBACK,
                                                        "confidence": confidence}})
        return []


class RateService(Action):
    """Stores a 1–5 satisfaction score on the customer's most recent ticket."""

    def name(self) -> Text:
        return "action_rate_service"

    def run(self, dispatcher, tracker: Tracker, domain):
        score = parsing.rating_score(tracker.latest_message.get("text", ""))
        if score is None:
            dispatcher.utter_message(text=pack.say("ask_rating"))
            return []
        # A person just closed a handoff and asked for this score: it belongs to that ticket.
        from bot.store.handoffs import HandoffStore

        handoffs = HandoffStore(store().engine)
        # Only the ticket a rating was asked for takes it: a stray "差评" rates nothing.
        number = handoffs.rating_ticket(tracker.sender_id)
        if number:
            store().record_rating(number, score, actor="customer")
            handoffs.rated(tracker.sender_id)
            dispatcher.utter_message(text=pack.say("rating_recorded", number=number, score=score))
        else:
            dispatcher.utter_message(text=pack.say("feedback_thanks"))
        return []


# asking for a person, not about one ("人工客服回消息要多久"); "不用转" / "别转人工" is no request
WANTS_PERSON = re.compile(r"(?<![不别没])(?:我要|要|找|转|接|叫|给我|帮我|需要)个?(?:人工|真人)|转接客服|"
                          # a call back asked for (安排人工明天回电给我, 让客服给我回个电话)
                          r"(?<![不别没])(?:安排|让|请|叫)(?:人工|真人|客服|人)[^，,。？?]{0,6}(?:回电|回个电话|打给我|给我打|打电话给我|联系我)|"
                          # where is the person? (人呢？？, 客服呢, 人都去哪了) said on its own
                          r"^\W*(?:人呢|人工呢|客服呢|真人呢|(?:你们的?)?人都?(?:去)?哪(?:儿|里)?了|有活人吗)\W*$|"
                          r"(?i:real person|human agent|talk to a human|call me back)")
NO_PERSON = re.compile(r"(不用|不要|别|不需要|无需|没必要)(帮我)?(?:(转|找|接|叫|安排)|让(?:人工|客服|真人|人)|人工|真人)|问问而已|随便问问")


RETURN_TOPICS = ("faq/return_policy", "faq/exchange_policy")


def window_told(text: str, topic: str) -> Optional[str]:
    """A return question that tells when the item came (``半个多月前收到的…还能退吗``): whether
    those days are past the no-reason window, and what is left (an exchange for a quality
    problem, or a repair), or None when the days are not told, inside the window or unclear."""
    from actions.forms import today

    if topic not in RETURN_TOPICS:
        return None
    rules = profile.load_profile().get("returns") or {}
    span = details.days_range(text, today())
    if not span or not rules or span[0] <= rules.get("no_reason_days", 0):
        return None
    past_exchange = span[0] > rules.get("quality_exchange_days", 0)
    return pack.say("faq_window_passed_repair" if past_exchange else "faq_window_passed_exchange")


def wants_person(text: str) -> bool:
    """The message asks for a person (``…我要人工服务``), and does not say not to."""
    return bool(WANTS_PERSON.search(text or "")) and not NO_PERSON.search(text or "")


class BotIdentity(Action):
    """``你是机器人吗``: what the assistant is. Read as the same question, ``人呢？？`` asks for a
    person (the handoff), and an elliptical follow-up the classifier was unsure of (``那是每个月交吗``
    after the fee was answered) gets the topic just answered."""

    UNSURE = 0.5

    def name(self) -> Text:
        return "action_bot_identity"

    def run(self, dispatcher, tracker: Tracker, domain):
        from actions.dialogue import asked_for_a_person

        person = asked_for_a_person(dispatcher, tracker, reset())     # 人呢？？ / 机器人真笨
        if person is not None:
            return person
        about_the_bot = ABOUT_THE_BOT.search(tracker.latest_message.get("text", "")) is not None
        sure = (tracker.latest_message.get("intent") or {}).get("confidence") or 0
        topic = follow_up_topic(tracker) if sure < self.UNSURE or not about_the_bot else None
        if not topic and not about_the_bot:
            topic = leaning_topic(tracker, 0.4)   # no word about what the assistant is: a misread question
        dispatcher.utter_message(response=f"utter_{topic}" if topic else "utter_iamabot")
        return []


# what a question about the assistant itself names (你是机器人吗, 是真人吗, 你是谁, are you a bot)
ABOUT_THE_BOT = re.compile(r"机器|機器|机械|機械|人机|真人|真的人|人工|活人|自动|智能|程序|脚本|客服|电脑|電腦|助手|小爱|打字|"
                           r"你是谁|你是什么|你是哪|人还是|是人|个人[吗不嘛么？?]|有血有肉|"
                           r"(?i:ai|gpt|siri|bot|robot|human|real|who are you)")


class AnswerFaq(Action):
    """A policy question outside any form: the answer the response selector chose, or, for a
    short follow-up it is unsure of, the topic just answered (``发票…`` then ``多久能开出来``);
    ``多久给我答复`` right after a ticket: that ticket's promise. When the same message also
    asks for a person (``你们晚上有人吗我要人工``), the handoff too; when it asks for a form's
    service with its details (``前几天到的洗衣机 一用就漏水 要换货``), that form starts."""

    def name(self) -> Text:
        return "action_answer_faq"

    def run(self, dispatcher, tracker: Tracker, domain):
        from actions.tickets import promise_answer

        text = tracker.latest_message.get("text", "")
        if (refused := refused_just_now(tracker)) and disputes(text, refused):
            return [FollowupAction("action_record_dispute")]     # 凭什么不给换？… right after a refusal
        promised = promise_answer(tracker)
        topic = None if promised else named_topic(text, domain) or follow_up_topic(tracker) \
            or next(iter(faq_ranking(tracker)), (None, 0))[0]
        if promised:
            dispatcher.utter_message(text=promised)
        elif topic:
            dispatcher.utter_message(response=f"utter_{topic}")
            window = window_told(text, topic)
            if window:                  # 半个多月前收到的…还能退吗: the answer for those days
                dispatcher.utter_message(text=window)
        if wants_person(text):
            hand_off(dispatcher, tracker, "request_human")
            return reset()
        # asking for the service (要换货), or naming it with its details (退货 沙发 定制的 不合适)
        named = not mentions.is_question(text) and (details.switch_target(text, None) or details.return_type(text)) \
            and carries_item(tracker.latest_message or {})
        target = form_for(tracker.latest_message or {}) if mentions.asks_for_service(text) or named else None
        if target and target in ((domain or {}).get("forms") or {}):
            return reset() + [FollowupAction(target)]
        if not (promised or topic):
            dispatcher.utter_message(response="utter_how_can_help")
        return []
