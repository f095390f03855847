"""Urgency: what is dangerous in a repair request, and whether the customer says it is not
(``燃气灶点不着火 没漏气 没味`` is an ignition fault; ``有股煤气味`` a gas leak). Driven by the
business profile's words (``urgent_repair_keywords``, ``urgent_repair_not_urgent_when_leaking_from``);
``bot.profile.details.urgency`` is this module's :func:`urgency`."""
from __future__ import annotations

import re
import unicodedata
from typing import Dict, Iterable, List, Optional, Tuple

from bot.profile.parsing import ascii_digits


def fold(text: str) -> str:
    """Full-width forms folded (NFKC), every digit ASCII (as ``details.fold``)."""
    return ascii_digits(unicodedata.normalize("NFKC", text or ""))


# --- urgency: what is dangerous, and whether the customer says it is not ----------------------

NEGATIONS = ("没有", "没", "不", "无", "未", "并无", "别")
# Hazards: a safety risk or a home that cannot be lived in. Each entry: its words; a hazard
# word inside "没有…" / "不…" is not a hazard ("没有漏气", "不冒烟").
_IGNITION_FAULT = re.compile(r"(?:打|点)火?(?:不|没)(?:着|燃|起|上)(?:火|来)?|着不了火|不打火|(?:打|点)不了火|点火(?:失败|不着)|不出火")
# a sign of a gas leak the customer denies: 没漏气, 没味, 没(有)啥子味道, 闻不到(什么)味, 味道都没有;
# a doubt (不知道有没有漏气, 是不是漏气) denies nothing
_LEAK_SIGN = "漏|味|泄|闻|呛|嘶"
_DENIED_SIGN = re.compile(
    # 没闻着煤气味儿, 没闻到什么味: the smell denied, up to the end of the phrase
    r"(?<!知道有)(?<!是不是)(?:没有|没得|木有|没|未|冇)闻(?:着|到|见|出)?[^，,。！!？?；;\s但却可]{0,5}|"
    r"(?<!知道有)(?<!是不是)(?<!清楚有)(?<!确定有)(?:没有|没得|木有|没|无|未|不|冇)(?:[^，,。！!？?；;\s但却可有]{0,3}?)(?:" + _LEAK_SIGN + r")[漏泄露气味道儿]*"
    r"|闻(?:不|没)(?:到|出|见|着)?[^，,。！!？?；;\s但却可]{0,4}|(?:" + _LEAK_SIGN + r")[气道儿]?(?:都|也)(?:没有|没|无)")
# words that mean water from the appliance itself: a leaking fridge is a fault, not a flood
_CONTAINED = re.compile(r"滴水|有水珠|结冰|积水盘|排水")
_PIPE_WORDS = ("水管", "管道", "管子", "阀门", "水龙头", "爆管", "地暖", "暖气片", "天花板", "楼下", "淹", "满地", "一地", "止不住", "喷")


def _flooding(text: str) -> bool:
    """Beside a leaking appliance, a pipe or a flooded home named (水管, 满地, 渗到楼下); water
    that only drips onto the balcony below (空调漏水 滴到楼下阳台) floods nothing."""
    named = [p for p in _PIPE_WORDS if p in text]
    if named == ["楼下"] and "滴" in text and not re.search(r"渗|淹|满地|一地|屋里|家里", text):
        return False
    return bool(named)


def _negated(text: str, start: int) -> bool:
    window = text[max(0, start - 4):start]
    return any(window.endswith(n) or (n in window and not window.endswith("了")) for n in NEGATIONS) \
        and not re.search(r"(不|没)(知道|清楚|确定)|是不是|有没有|会不会", text[max(0, start - 6):start])


def urgency(text: str, keywords: Iterable[str], contained_products: Iterable[str] = (),
            product: str | None = None) -> Tuple[bool, List[str]]:
    """(urgent?, the hazard words that made it so), from the profile's words.

    A word counts only when it is not negated just before it (``没有漏气``, ``不冒烟``), an
    ignition fault (``打不着火``) is not a fire, and water leaking from an appliance in
    ``contained_products`` (a fridge, an air conditioner) is not a home flood unless pipes
    or a flooded floor are named.
    """
    text = fold(text or "")
    cleaned = _IGNITION_FAULT.sub("□□□", text)
    found: List[str] = []
    contained = [p for p in contained_products if p and (p in text or p == product)]
    words = sorted({str(w) for w in keywords}, key=len, reverse=True)
    # what the customer says is not happening (没有漏气) is no sign of a leak either
    affirmed = cleaned
    for word in words:
        for match in re.finditer(re.escape(word), cleaned):
            if _negated(cleaned, match.start()):
                affirmed = affirmed[:match.start()] + "□" * len(word) + affirmed[match.end():]
    affirmed = _DENIED_SIGN.sub(lambda m: "□" * len(m.group(0)), affirmed)
    for word in words:
        for match in re.finditer(re.escape(word), cleaned):
            if _negated(cleaned, match.start()):
                continue
            if word in ("燃气", "煤气", "瓦斯") and not re.search(r"漏|味|泄|闻|呛|嘶", affirmed):
                continue        # a gas appliance named, no leak: "燃气灶打不着火", "燃气灶没有漏气"
            if "水" in word and "漏" in word or word == "跑水":
                if contained and not _flooding(cleaned):
                    continue
            if word not in found and not any(word in f for f in found):
                found.append(word)
    return bool(found), found


# --- what to do first, and what is at fault, in an emergency -----------------------------------

def safety_kind(hazard_words: Iterable[str], kinds: Dict[str, Iterable[str]]) -> Optional[str]:
    """Which first aid an urgent report needs: the first of ``kinds`` (the profile's
    ``urgent_safety_advice``, in its order: gas, sparks, fire, water) one of whose words is
    among ``hazard_words`` (what :func:`urgency` found); None for a home without heating."""
    found = [str(w) for w in hazard_words]
    for kind, words in (kinds or {}).items():
        if any(str(k) in w or w in str(k) for w in found for k in words or ()):
            return str(kind)
    return None


def hazard_object(text: str, objects: Iterable[str]) -> Optional[str]:
    """What an emergency is in when no product is named (``燃气管道好像漏气了`` → 燃气管道,
    ``插座冒火花`` → 插座): the longest of the profile's ``urgent_repair_objects`` in ``text``,
    the earliest when two are as long."""
    text = fold(text or "")
    hits = [(-len(str(o)), text.find(str(o)), str(o)) for o in objects or () if str(o) and str(o) in text]
    return min(hits)[2] if hits else None
