"""Reading the details customers type: dates, numbers, ratings, categories.

Pure functions, shared by the actions and the gateway, tested with hypothesis.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import List, Optional, Pattern, Sequence, Tuple, TypeVar

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "仨": 3, "四": 4,
           "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

# ASCII digits only (re.A): every search below runs on ascii_digits(text) first, so a digit
# in any Unicode form is found, and what is found is plain ASCII.
ORDER_ID_RE = re.compile(r"(?<![0-9a-z])(dd\d{6,18}|\d{12,20})(?![0-9])", re.I | re.A)
# ``KF`` + yymmdd + 8 random digits (new_ticket_number); numbers issued before with 4
# random digits (KF + 10 digits) stay findable.
TICKET_ID_RE = re.compile(r"(?<![a-z])kf(?:\d{14}|\d{10})(?!\d)", re.I | re.A)
MAX_NUMBER_DIGITS = 12      # longer digit runs are ids, not counts (and int() has a limit)


def ascii_digits(text: str) -> str:
    """Every Unicode digit as its ASCII digit, everything else unchanged; same length.

    Customers type digits in many forms: full-width ``１``, Arabic-Indic ``٣``, superscript
    ``³``, circled ``③``, Devanagari ``३`` … ``str.isdigit()`` is true for all of them but
    ``int()`` reads only some (not ``³`` or ``③``): read them through this instead.
    """
    if text.isascii():
        return text
    return "".join(str(unicodedata.digit(ch, 0)) if ch.isdigit() else ch for ch in text)


def _folded(text: str) -> str:
    """Compatibility forms folded (full-width ``ＤＤ``, ``³``) and every digit ASCII."""
    return ascii_digits(unicodedata.normalize("NFKC", text or ""))


def find_order_id(text: str) -> Optional[str]:
    """The order number in ``text`` (``DD…`` or 12-20 digits, any digit form), upper-case."""
    match = ORDER_ID_RE.search(_folded(text))
    return match.group(1).upper() if match else None


def find_ticket_number(text: str) -> Optional[str]:
    """The ticket number in ``text`` (``KF`` + digits, any digit form), upper-case."""
    match = TICKET_ID_RE.search(_folded(text))
    return match.group(0).upper() if match else None


def chinese_number(text: str) -> Optional[int]:
    """``"十五"`` → 15, ``"3"`` → 3, ``"２"`` / ``"²"`` → 2, ``"二十一"`` → 21; None when it
    is not a number (never an exception, whatever the text)."""
    text = ascii_digits(text.strip())
    if text.isascii() and text.isdigit():
        return int(text) if len(text) <= MAX_NUMBER_DIGITS else None
    if not text or any(ch not in _DIGITS and ch != "十" for ch in text):
        return None
    if "十" in text:
        tens, _, ones = text.partition("十")
        if len(tens) > 1 or len(ones) > 1 or ones == "十":     # "二二十", "十十": not numbers
            return None
        value = (_DIGITS[tens] if tens else 1) * 10
        return value + (_DIGITS[ones] if ones else 0)
    return _DIGITS[text] if len(text) == 1 else None


_V = TypeVar("_V")


def pattern_table(*rows: Tuple[str, _V]) -> List[Tuple[Pattern[str], _V]]:
    """``(regex, value)`` rows compiled, in order, for :func:`first_match`."""
    return [(re.compile(regex), value) for regex, value in rows]


def first_match(table: Sequence[Tuple[Pattern[str], _V]], text: str) -> Optional[_V]:
    """The value of the first row whose pattern is found in ``text``, or None."""
    for pattern, value in table:
        if pattern.search(text):
            return value
    return None


_NUM = r"(\d+|[零〇一二两俩三仨四五六七八九十]+)"
_RELATIVE = pattern_table(
    (r"今天|今儿|刚刚|刚收到|刚到", 0),
    (r"大前天", 3),
    (r"前天", 2),
    (r"昨天|昨儿|昨晚", 1),
    (r"半个?月", 15),
    (r"上个?(周|星期|礼拜)", 7),
)
_AGO = re.compile(_NUM + r"\s*(天|日|周|个星期|星期|礼拜|个月|月)", re.A)
_DATE = re.compile(r"(?:(\d{4})[-/年.])?(\d{1,2})[-/月.](\d{1,2})[日号]?", re.A)


def days_since(text: str, today: dt.date) -> Optional[int]:
    """How many days ago the customer says something happened, or None if unclear."""
    text = ascii_digits((text or "").strip())
    date = _DATE.search(text)
    if date:
        year = int(date.group(1)) if date.group(1) else today.year
        try:
            day = dt.date(year, int(date.group(2)), int(date.group(3)))
        except ValueError:
            return None
        if day > today and not date.group(1):
            day = day.replace(year=year - 1)
        delta = (today - day).days
        return delta if delta >= 0 else None
    ago = _AGO.search(text)
    if ago:
        count = chinese_number(ago.group(1))
        if count is None:
            return None
        unit = ago.group(2)
        factor = 7 if unit in ("周", "个星期", "星期", "礼拜") else 30 if "月" in unit else 1
        return count * factor
    days = first_match(_RELATIVE, text)
    if days is not None:
        return days
    bare = chinese_number(text.rstrip("天"))
    return bare


_RATING_WORDS = pattern_table(
    (r"非常不满意|很不满意|极差|太差|垃圾|差评|一星|1星", 1),
    (r"不满意|不太满意|差劲|不好", 2),
    (r"一般|还行|凑合|马马虎虎|中评", 3),
    (r"比较满意|还不错|挺好|不错", 4),
    (r"非常满意|很满意|特别满意|满意|好评|五星|超赞|很好|太好了|👍", 5),
)


# a score said with stars: "5星", "给个三星吧", "三颗星", "5 stars", "1 star", "five stars";
# a number glued to a longer one (15分钟, 4.5星), a minute count or a week count (两个星期) is none
_SCORE = re.compile(r"(?<![\d.])([1-5一二三四五两])\s*(?:分(?![钟之])|星(?!期)|颗星|个星(?!期)|(?i:stars?)(?![a-z]))"
                    r"|(?<![a-z])(?i:(one|two|three|four|five)\s+stars?)(?![a-z])")
_ENGLISH_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
# star emoji and star signs: the filled ones are the score (★★★☆☆ is 3)
_STAR_SIGNS = re.compile("[\u2b50\U0001f31f\u2605\u272a\u272d\u2730]")


def rating_score(text: str) -> Optional[int]:
    """A 1–5 satisfaction score from ``5分``, ``4星``, ``5 stars``, ``⭐⭐⭐``, ``满意``, ``差评``
    ... or None, also when it is not one score: two different ones (``3星还是4星``), stars that
    disagree with the number (``5 stars ⭐⭐⭐``), more than five star signs."""
    text = ascii_digits(text or "")
    scores = set()
    for match in _SCORE.finditer(text):
        word = match.group(2)
        scores.add(_ENGLISH_NUMBERS[word.lower()] if word else chinese_number(match.group(1)))
    if re.search(r"(?<![\d.])(?:[6-9]|\d{2,})\s*(?:颗|个)?(?:星|(?i:stars?)(?![a-z]))", text):
        return None                   # "10星", "6 stars": not on the 1–5 scale
    stars = len(_STAR_SIGNS.findall(text))
    if stars > 5:
        return None
    if stars:
        scores.add(stars)
    if len(scores) > 1:
        return None
    if scores:
        return scores.pop()
    if re.fullmatch(r"\s*([1-5])\s*", text):
        return int(text.strip())
    return first_match(_RATING_WORDS, text)


def complaint_categories() -> dict:
    """The business's complaint categories and the words that point at each, in the order a
    customer is offered them (the pack's profile.yml ``complaint_categories``)."""
    from bot.profile.business import load_profile

    return {name: tuple(str(c).lower() for c in cues)
            for name, cues in (load_profile().get("complaint_categories") or {}).items()}


OTHER_CATEGORY = "其他"


def complaint_category(text: str) -> Optional[str]:
    """The complaint category a text points at, or None if no cue is found (the business's
    categories and cue words: :func:`best_category`)."""
    return best_category(text, complaint_categories(), other=OTHER_CATEGORY)


# what the customer says it is NOT: "不是冰箱本身质量问题" up to the clause's end or the "是"
# that says what it is instead ("…，是快递磕的"); "是不是质量问题" is a question, not a denial
_NOT_THIS = re.compile(r"(?<!是)(?:并不是|不是|并非|不算是?|不属于|不怪|不关)[^，,。；;！!？?\s是]*")
# "质量倒是没问题" / "东西本身没毛病": the clause says that part is fine
_FINE = re.compile(r"[^，,。；;！!？?\s]{0,10}?(?:倒是|倒|并|都|也|本身|还)?(?:没有|没啥|没什么|没)(?:问题|毛病)(?![吗么？?])")
_CLAUSE_END = re.compile(r"[，,。；;！!？?\n]")


def without_denied(text: str) -> str:
    """``text`` (lower-cased, digits ASCII) with what the customer says is not the matter
    (``不是质量问题``, ``质量倒没问题``) blanked out, same length."""
    folded = _folded(text).lower()
    blank = lambda m: "□" * len(m.group(0))      # noqa: E731 - same length keeps positions
    return _FINE.sub(blank, _NOT_THIS.sub(blank, folded))


def best_category(text: str, categories: dict, other: str = OTHER_CATEGORY) -> Optional[str]:
    """The category of ``categories`` (name → cue words, in the business's order) a text
    points at most, or None when no cue is found.

    A category named as such wins (after a correction, the one named last). Otherwise each
    cue found counts one point for its category, except a cue inside a longer cue found
    (``快递员`` counts once, ``磕坏`` is not also ``坏``), and cues in what the customer
    denies (``不是质量问题，是快递磕的``) count nothing; the most points win, a tie goes
    to the category listed first.
    """
    folded = without_denied(text or "")
    names = [c for c in list(categories) + [other] if c and c.lower() in folded]
    if names:
        return max(names, key=lambda c: folded.rfind(c.lower()))
    found = []                                   # (start, end, category)
    for category, cues in categories.items():
        for cue in {str(c).lower() for c in cues if str(c)}:
            found += [(m.start(), m.end(), category) for m in re.finditer(re.escape(cue), folded)]
    kept = [f for f in found if not any(o[0] <= f[0] and f[1] <= o[1] and o[1] - o[0] > f[1] - f[0]
                                        for o in found)]
    if not kept:
        return None
    order = list(categories)
    points = {c: sum(1 for f in kept if f[2] == c) for c in order}
    return max(order, key=lambda c: (points[c], -order.index(c)))


def return_type(text: str) -> Optional[str]:
    """``"return"`` or ``"exchange"`` from what the customer wrote, or None."""
    text = text or ""
    if "换" in text:
        return "exchange"
    if "退" in text:
        return "return"
    return None


QUALITY_CUES = ("质量", "坏", "故障", "瑕疵", "破损", "不制冷", "漏", "异响", "不能用", "用不了",
                "开裂", "划痕", "少件", "不亮", "不转", "不加热", "有问题")


def is_quality_problem(reason: str) -> bool:
    return any(cue in (reason or "") for cue in QUALITY_CUES)


_PHONE_RUN = re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?(\d{4})(?!\d)", re.A)
_FOUR = re.compile(r"(?<!\d)(\d{4})(?!\d)", re.A)


def check_digits(text: str) -> Optional[str]:
    """The last 4 digits of a phone a customer gives to show a ticket is theirs: the end of a
    whole mobile number, else a run of exactly 4 digits (``尾号5678``), outside any ticket
    number; any digit form. None when there is none."""
    folded = re.sub(r"(?i)kf\d+", " ", _folded(text))
    phone = _PHONE_RUN.search(folded)
    if phone:
        return phone.group(1)
    runs = _FOUR.findall(folded)
    return runs[-1] if runs else None


def ascii_int(text: str, max_digits: int = 18) -> Optional[int]:
    """``text`` as a non-negative id when it is 1..``max_digits`` ASCII digits, else None.

    For ids in URLs and queries: ``str.isdigit()`` also accepts ``¹`` and ``①`` (``int()``
    fails on them), and ``int()`` refuses more than 4,300 digits (a database more than 18).
    """
    return int(text) if text and len(text) <= max_digits and text.isascii() and text.isdigit() else None
