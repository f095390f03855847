"""What every action needs: the shared ticket store, who the customer is, promises as text."""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Tracker

from bot.messages import ConversationId
from bot.profile import mentions, pack
from bot.profile.business import shop_tz
from bot.store.tickets import TicketStore, TicketView


@lru_cache(maxsize=1)
def store() -> TicketStore:
    return TicketStore()


def customer_channel(tracker: Tracker) -> str:
    """The channel is the sender id's prefix, set by the gateway (``web:…``, ``wechat:…``)."""
    sender = tracker.sender_id or ""
    return ConversationId(sender).channel


def form_run_key(tracker: Tracker, form: str) -> str:
    """An idempotency key for one run of ``form`` in this conversation.

    The timestamp of the event that activated the form is the same however often the
    submit action is retried, so a replayed submission finds the ticket it made.
    """
    started: Optional[float] = None
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == form:
            started = event.get("timestamp")
            break
    return f"{tracker.sender_id}:{form}:{started}"


def latest_turn_key(tracker: Tracker, what: str) -> str:
    """An idempotency key for a one-turn action: the latest customer message's time."""
    stamp = None
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            stamp = event.get("timestamp")
            break
    return f"{tracker.sender_id}:{what}:{stamp}"


def local_time(value: dt.datetime) -> str:
    """``11月28日 14:30`` in the shop's time zone, how a customer reads a promise."""
    local = value.astimezone(shop_tz())
    return pack.say("time_of_day", month=local.month, day=local.day, time=f"{local:%H:%M}")


def ticket_payload(ticket: Optional[TicketView], event: str, **extra: Any) -> Dict[str, Any]:
    """The structured note the gateway acts on (see ARCHITECTURE: no side channel); ``ticket``
    None for a handoff that has none yet (in service hours the record opens when an agent takes it)."""
    return {"kefu": {"event": event, "ticket": ticket.number if ticket else None,
                     "kind": ticket.kind if ticket else None,
                     "priority": ticket.priority if ticket else "normal", **extra}}


def latest_entity(tracker: Tracker, name: str) -> Optional[str]:
    for entity in (tracker.latest_message or {}).get("entities", []):
        if entity.get("entity") == name and entity.get("value"):
            return str(entity["value"])
    return None


# --- what a ticket promises ---------------------------------------------------------------------
def promise_text(kind: str, priority: str) -> str:
    """How soon, in the pack's words: ``30分钟`` under an hour, else ``24 小时``."""
    from bot.profile import sla

    hours = float(sla.promised_hours(kind, priority))
    if hours < 1:
        return pack.say("promise_minutes", minutes=int(round(hours * 60)))
    return pack.say("promise_hours", hours=f"{hours:g}")


def first_aid_text(hazard_words) -> str:
    """What to do now for an urgent repair (close the gas valve, cut the power, stay calm in the
    lift) and the on-site promise: the pack's ``safety_advice``, its kind the first of the
    profile's ``urgent_safety_advice`` the urgency's words belong to (``other`` when none)."""
    from bot.profile import business, hazards

    kind = hazards.safety_kind(hazard_words, business.load_profile().get("urgent_safety_advice") or {}) or "other"
    advice = pack.labels("safety_advice")
    return (advice.get(kind) or advice["other"]).format(promise=promise_text("repair", "urgent"))


# --- which FAQ answer: the classifier's, or the topic a follow-up leans on --------------------
FAQ_SURE = 0.5          # a topic this likely is the answer whatever was said before
# … and for a follow-up that leans on the answer in words (那收货以后多久能开出来 after the invoice
# answer, ranked 0.58 as the shipping time): questions of a new topic so worded ranked 0.7
# (那要是过了保修期再坏了 修要多少钱, after the warranty) to ≥ 0.88 (那运费呢, 那几点下班)
FAQ_SURE_LEANING = 0.65
# the general answers about how soon someone replies: right after a ticket, its own promise
PROMISE_TOPICS = ("faq/response_time", "faq/complaint_process")


def faq_ranking(tracker: Tracker) -> List[Tuple[str, float]]:
    """The response selector's FAQ topics for the latest message, likeliest first:
    ``[("faq/shipping_fee", 0.43), …]``."""
    selector = ((tracker.latest_message or {}).get("response_selector") or {}).get("faq") or {}
    ranking = [(str(r["intent_response_key"]), float(r.get("confidence") or 0))
               for r in selector.get("ranking") or [] if r.get("intent_response_key")]
    chosen = selector.get("response") or {}
    if not ranking and chosen.get("intent_response_key"):
        ranking = [(str(chosen["intent_response_key"]), float(chosen.get("confidence") or 0))]
    return ranking


def answered_topic(tracker: Tracker) -> Optional[str]:
    """The FAQ topic (``faq/invoice``) the assistant's answer to the previous message gave, if any."""
    users = 0
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            users += 1
            if users == 2:
                return None
        elif users == 1 and event.get("event") == "bot":
            action = str((event.get("metadata") or {}).get("utter_action") or "")
            if action.startswith("utter_faq/"):
                return action[len("utter_"):]
    return None


def follow_up_topic(tracker: Tracker, near: int = 3) -> Optional[str]:
    """For a short follow-up (``沙发呢``, ``多久能开出来``, ``不满99呢``) the classifier is unsure
    of, the topic just answered, when the classifier still ranks it among its first ``near``."""
    from bot.profile import mentions

    previous = answered_topic(tracker)
    if not previous or not mentions.is_follow_up((tracker.latest_message or {}).get("text", "")):
        return None
    ranking = faq_ranking(tracker)
    message = tracker.latest_message or {}
    # "and this item?" (沙发这种大件呢 after the shipping fee): the same question, of another item,
    # whatever topic the item's words lean to on their own
    same_asked = mentions.what_about(message.get("text", "")) is not None and (
        any(e.get("entity") == "product" for e in message.get("entities") or [])
        or mentions.named_product(message.get("text", "")) is not None)
    sure = FAQ_SURE_LEANING if mentions.leans_on_answer(message.get("text", "")) else FAQ_SURE
    if ranking and ranking[0][1] >= sure and ranking[0][0] != previous and not same_asked:
        return None                       # a new question, clearly about something else
    return previous if previous in [key for key, _ in ranking[:near]] else None


def leaning_topic(tracker: Tracker, least: float) -> Optional[str]:
    """The FAQ topic the classifier leans to for a question it did not take as one (a typo,
    a dialect): the likeliest, when at least ``least``."""
    from bot.profile import mentions

    ranking = faq_ranking(tracker)
    if ranking and ranking[0][1] >= least and mentions.is_question((tracker.latest_message or {}).get("text", "")):
        return ranking[0][0]
    return None


def answered_misses(tracker: Tracker, intents: tuple) -> int:
    """How many of the latest customer messages in a row had one of ``intents`` and got no
    FAQ answer either (a misread question answered from the classifier's leaning is no miss).
    A message of no words (👋, ？, 🙏) is no miss: there was nothing to understand."""
    count, answered = 0, False
    for event in reversed(tracker.events or []):
        if event.get("event") == "bot":
            answered = answered or str((event.get("metadata") or {}).get("utter_action") or "").startswith("utter_faq/")
        elif event.get("event") == "user":
            if ((event.get("parse_data") or {}).get("intent") or {}).get("name") not in intents or answered:
                break
            count += 0 if wordless(event.get("text") or "") else 1
            answered = False
    return count


_WORD = re.compile(r"[\w\u4e00-\u9fff]")


def wordless(text: str) -> bool:
    """Emoji and punctuation only (👋, ？, 👌🙏): no words to understand."""
    return not _WORD.search(text or "")


# topics a message names in words whatever the selector ranks first: a worry that data was sold
# (…把我电话卖给装修公司了), the cost after the warranty (过保呢), water and power bills (电费是交给
# 物业的吗); the first the pack answers
TOPIC_CUES = ((mentions.fears_for_data, ("faq/privacy",)),
              (mentions.out_of_warranty, ("faq/repair_fee", "faq/repair_scope")),
              (mentions.names_utility_bill, ("faq/utilities",)))


def named_topic(text: str, domain) -> Optional[str]:
    """The FAQ topic the message names in words (:data:`TOPIC_CUES`), when the pack answers it."""
    topics = faq_topics(domain)
    for cue, wanted in TOPIC_CUES:
        if cue(text):
            return next((t for t in wanted if t in topics), None)
    return None


def faq_topics(domain) -> set:
    """The FAQ topics the pack answers (``faq/privacy``, …): its ``utter_faq/…`` responses."""
    return {name[len("utter_"):] for name in ((domain or {}).get("responses") or {}) if name.startswith("utter_faq/")}


def threats(text: str) -> List[str]:
    """The profile's ``high_priority_complaint_keywords`` the text says (12315, 曝光, 业委会…):
    what makes a complaint high priority, wherever in the complaint it was said."""
    from bot.profile.business import load_profile

    return [w for w in (str(k) for k in load_profile().get("high_priority_complaint_keywords") or ()) if w in (text or "")]
