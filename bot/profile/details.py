"""Reading the details a customer gives inside a form: when, how urgent, where, which phone.

Pure functions (no Rasa, no I/O), used by the form validators in ``actions/`` and tested
in tests/test_details_parsing.py. Everything here reads text through
``parsing.ascii_digits`` first, so digits in any Unicode form work.

Dates: a parser of our own. jionlp (its ``parse_time``) would install beside Rasa's pins
but pulls a tokenizer package (jiojio) and a large dictionary for what is, here, a few
dozen colloquial forms; cn2an only converts numbers, which ``parsing.chinese_number``
already does. The forms below are the ones customers write about a delivery.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from bot.profile.parsing import ascii_digits, chinese_number, first_match, pattern_table

_NUM = r"(\d{1,4}|[零〇一二两俩三仨四五六七八九十]{1,3})"


def fold(text: str) -> str:
    """Full-width forms folded (NFKC), every digit ASCII."""
    return ascii_digits(unicodedata.normalize("NFKC", text or ""))


# --- when: days since something happened ----------------------------------------------------

_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_VAGUE = pattern_table(
    (r"大前天|大前儿", 3),
    (r"前天|前儿", 2),
    (r"昨天|昨儿|昨晚|昨日|昨个", 1),
    (r"今天|今儿|今早|今晚|今日", 0),
    (r"二十多天|二十几天", 23),
    (r"三十多天|三十几天", 33),
    (r"半个多月|半月多", 18),
    (r"十几天|十多天", 15),
    (r"十来天", 10),
    (r"好几天|有几天", 5),
    (r"(?:前|这)?几天|前些天|没几天|才几天|两三天|三四天", 3),
    (r"一个?多(?:个)?礼拜|一周多|一个多星期", 9),
    (r"一个多月|个把月", 35),
    (r"好几个月|几个月|半年|很久|好久", 90),
    (r"半个?月", 15),
    (r"上个?(?:周|星期|礼拜)(?![一二三四五六日天末\d])", 7),
    (r"这个?(?:周|星期|礼拜)(?![一二三四五六日天末\d])|本周", 3),
    # "just arrived" on its own is today; "前几天刚到" is a few days ago (the rows above win)
    (r"刚刚|刚收到|刚到|刚签收|刚拿到|早上到|上午到|下午到", 0),
)
_AGO = re.compile(_NUM + r"\s*(个多?月|个月|月|个多?(?:星期|礼拜)|周|星期|礼拜|天|日)(多)?(?:前|之前|以前|了|左右)?", re.A)
_FULL = re.compile(r"(\d{4})\s*[-/年.]\s*(\d{1,2})\s*[-/月.]\s*(\d{1,2})\s*[日号]?", re.A)
_MONTH_DAY = re.compile(r"(?<!\d)(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:月|/|\.|-)\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:日|号)?", re.A)
_REL_MONTH_DAY = re.compile(r"(上上|上|这|本)个?月\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:日|号)")
# 上个月底 / 月初 (this month's when no month is said) / 上个月尾, 月头 (Cantonese, northern speech)
_REL_MONTH_PART = re.compile(r"(上上|上|这|本)?个?月(初|底|末|中旬|中|下旬|上旬|尾|头)(?!发|工资)")
_DAY_ONLY = re.compile(r"(?<![\d月])(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:日|号)(?!码|楼|线)")
_WEEKDAY = re.compile(r"(上上|上|这|本)?个?(?:周|星期|礼拜)([一二三四五六日天末])")
_PART_DAYS = {"初": 3, "头": 3, "上旬": 5, "中": 15, "中旬": 15, "下旬": 25, "底": 0, "末": 0, "尾": 0}


def _month_shift(today: dt.date, back: int) -> Tuple[int, int]:
    month = today.month - back
    year = today.year
    while month <= 0:
        month += 12
        year -= 1
    return year, month


def _last_day(year: int, month: int) -> int:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


def _num(token: str) -> Optional[int]:
    return chinese_number(token)


def _days_to(day: dt.date, today: dt.date) -> Optional[int]:
    delta = (today - day).days
    return delta if delta >= 0 else None


def days_since(text: str, today: dt.date) -> Optional[int]:
    """How many days ago the customer says it happened (received, bought), or None.

    Absolute (``11月20日``, ``2026-11-01``, ``11.20``), relative to the calendar (``上个月25号``,
    ``8号``, ``上周五``, ``上个月底``), durations (``3天前``, ``两周``, ``半个月``) and vague
    ones (``前几天`` ≈ 3, ``十几天`` ≈ 15, ``一个多月`` ≈ 35). A date in the future of this
    year means last year's; a bare day of the month after today means last month's.
    """
    text = _POLICY.sub(" ", fold(text)).strip()
    text = re.sub(r"半个月(?!多)", "15天", text)
    if not text:
        return None
    full = _FULL.search(text)
    if full:
        try:
            return _days_to(dt.date(int(full.group(1)), int(full.group(2)), int(full.group(3))), today)
        except ValueError:
            return None
    rel = _REL_MONTH_DAY.search(text)
    if rel:
        back = {"上上": 2, "上": 1}.get(rel.group(1), 0)
        year, month = _month_shift(today, back)
        day = _num(rel.group(2))
        try:
            return _days_to(dt.date(year, month, day or 0), today)
        except (ValueError, TypeError):
            return None
    part = _REL_MONTH_PART.search(text)
    if part:
        back = {"上上": 2, "上": 1}.get(part.group(1), 0)
        year, month = _month_shift(today, back)
        day = _PART_DAYS[part.group(2)] or _last_day(year, month)
        days = _days_to(dt.date(year, month, min(day, _last_day(year, month))), today)
        if days is None and part.group(1) is None:       # "月底" said before this month's end: last month's
            year, month = _month_shift(today, 1)
            day = _PART_DAYS[part.group(2)] or _last_day(year, month)
            days = _days_to(dt.date(year, month, min(day, _last_day(year, month))), today)
        return days
    md = _MONTH_DAY.search(text)
    if md and ("月" in md.group(0) or re.fullmatch(r"\s*\d{1,2}\s*[/.-]\s*\d{1,2}\s*(?:日|号)?\s*(?:收到|到的|签收)?[的了]?\s*", text)):
        month, day = _num(md.group(1)), _num(md.group(2))
        try:
            date = dt.date(today.year, month or 0, day or 0)
        except (ValueError, TypeError):
            return None
        if date > today:
            date = date.replace(year=today.year - 1)
        return _days_to(date, today)
    week = _WEEKDAY.search(text)
    if week:
        target = _WEEKDAYS[week.group(2)]
        monday = today - dt.timedelta(days=today.weekday())
        if week.group(1) in ("上", "上上"):
            monday -= dt.timedelta(days=7 * (2 if week.group(1) == "上上" else 1))
        elif week.group(1) is None and target > today.weekday():
            monday -= dt.timedelta(days=7)       # "周五" said on a Wednesday: last Friday
        return _days_to(monday + dt.timedelta(days=target), today)
    only = _DAY_ONLY.search(text)
    if only:
        day = _num(only.group(1))
        if day and 1 <= day <= 31:
            year, month = today.year, today.month
            if day > today.day:
                year, month = _month_shift(today, 1)
            try:
                return _days_to(dt.date(year, month, min(day, _last_day(year, month))), today)
            except ValueError:
                return None
    agos = list(_AGO.finditer(text))
    ago = next((m for m in agos if "前" in m.group(0)), agos[0] if agos else None)
    if ago:
        count = _num(ago.group(1))
        if count is None:
            return None
        unit = ago.group(2)
        factor = 30 if "月" in unit else 7 if any(u in unit for u in ("周", "星期", "礼拜")) else 1
        more = "多" in unit or bool(ago.group(3)) and factor > 1      # 一个多月, 一周多 (三天多: about 3)
        extra = 5 if more and factor == 30 else 2 if more else 0
        return count * factor + extra
    days = first_match(_VAGUE, text)
    if days is not None:
        return days
    english = english_days(text)
    if english is not None:
        return english
    bare = re.fullmatch(r"\s*" + _NUM + r"\s*", text)
    if bare:
        return _num(bare.group(1))
    return None


# how far a vague answer may be from the estimate days_since gives it: (lowest, highest)
_VAGUE_SPAN = pattern_table(
    (r"半个多月|半月多", (16, 25)),
    (r"二十多天|二十几天", (21, 29)),
    (r"三十多天|三十几天", (31, 39)),
    (r"十几天|十多天", (11, 19)),
    (r"十来天", (8, 12)),
    (r"好几天|有几天", (3, 9)),
    (r"(?:前|这)?几天|前些天|没几天|才几天", (2, 6)),
    (r"一个?多(?:个)?礼拜|一周多|一个多星期", (8, 13)),
    (r"(?:两|2)周多|两个多(?:星期|礼拜)", (15, 20)),
    (r"一个多月|个把月", (31, 59)),
    (r"好几个月|几个月", (60, 180)),
)


def days_range(text: str, today: dt.date) -> Optional[Tuple[int, int]]:
    """``(fewest, most)`` days ago the customer may mean: ``(3, 3)`` for ``三天前``, ``(11, 19)`` for
    ``十几天``, ``(2, 6)`` for ``前几天``; None when the text says no time (:func:`days_since`)."""
    days = days_since(text, today)
    if days is None:
        return None
    span = first_match(_VAGUE_SPAN, _POLICY.sub(" ", fold(text)))
    if span and span[0] <= days <= span[1]:
        return span
    return days, days


def straddles(span: Optional[Tuple[int, int]], limit: float) -> bool:
    """Could the vague ``span`` be on either side of ``limit`` days (``十几天`` and 15)?"""
    return bool(span) and span[0] <= limit < span[1]


_RECEIVED = r"\s*(?:才|刚|就)?(?:收到|到货|到的|到了|签收|送到|拿到|买的|买了|下单|下的单|到)?(?:的|了|啦)?"


def without_when(text: str) -> str:
    """``text`` without what says when (``前天到的``, ``11月20日签收``, ``三天前收到``), so what is
    left tells whether anything else was said (``前天到的，没拆封`` → ``，没拆封``)."""
    folded = fold(text)
    for pattern in (_FULL, _REL_MONTH_DAY, _REL_MONTH_PART, _MONTH_DAY, _WEEKDAY, _DAY_ONLY, _AGO, _EN_AGO) + \
            tuple(row[0] for row in _VAGUE) + tuple(row[0] for row in _EN_WORDS):
        core, flags = pattern.pattern, pattern.flags & ~re.U
        if core.startswith("(?i)"):
            core, flags = core[4:], flags | re.I
        folded = re.sub("(?:" + core + ")" + _RECEIVED, " ", folded, flags=flags)
    return folded


_EN_NUMBER = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
              "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "couple of": 2, "a few": 3, "few": 3}
_EN_AGO = re.compile(r"(?i)(?<![a-z])(\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|(?:a )?couple of|(?:a )?few)"
                     r"\s+(day|week|month)s?\s+(?:ago|before|back)")
_EN_WORDS = pattern_table((r"(?i)day before yesterday", 2), (r"(?i)yesterday", 1), (r"(?i)\btoday\b|just (?:got|received|arrived)", 0),
                          (r"(?i)last week", 7), (r"(?i)last month", 30))
# a policy named in the message ("七天无理由", "15天内") is no date
_POLICY = re.compile(r"(\d{1,2}|[一二三四五六七八九十]{1,3})\s*天\s*(?:无理由|内|以内|之内|包退|包换|退换|价保|保价)")


def english_days(text: str) -> Optional[int]:
    """``2 days ago`` → 2, ``a week ago`` → 7, ``yesterday`` → 1, ``last week`` → 7, or None."""
    match = _EN_AGO.search(text or "")
    if match:
        token = match.group(1).lower()
        count = int(token) if token.isdigit() else _EN_NUMBER.get(token, 1)
        return count * {"day": 1, "week": 7, "month": 30}[match.group(2).lower()]
    return first_match(_EN_WORDS, text or "")


def mentions_time(text: str) -> bool:
    """Does the text say when (so a days answer is there to read)?"""
    return days_since(text, dt.date(2026, 6, 15)) is not None and not re.fullmatch(r"\s*\d+\s*", fold(text))


# --- urgency: bot/profile/hazards.py ---------------------------------------------------------
from bot.profile.hazards import NEGATIONS, urgency  # noqa: E402,F401  (its home; this name stays)


# --- where (bot/profile/addresses.py) and which phone (bot/profile/phones.py) -------------------
from bot.profile.addresses import ADDRESS_SPAN, address_score, find_address, looks_like_address  # noqa: E402,F401
from bot.profile.phones import (EXTENSION, PHONE_ANY, PHONE_NOTE, digits_only, find_phone,  # noqa: E402,F401
                                strip_phone, without_extension)


# --- corrections and changes of mind -----------------------------------------------------------

FIELD_WORDS: Dict[str, Sequence[str]] = {
    "phone": ("手机号", "电话号码", "电话", "手机", "联系方式", "号码"),
    "address": ("地址", "住址", "门牌"),
    "order_id": ("订单号", "订单", "单号"),
    "product": ("商品", "产品", "东西", "电器"),
    "fault_description": ("故障", "问题描述", "毛病"),
    "complaint_category": ("类型", "类别", "分类", "方面"),
    "complaint_description": ("描述", "情况"),
    "return_type": ("退换", "退还是换"),
    "return_reason": ("原因", "理由"),
    "days_since_receipt": ("收货时间", "收到的时间", "日期", "时间", "天数"),
}
CORRECTION = re.compile(r"改成|改为|改一下|换成|更正|写错|说错|打错|填错|错了|不对|不是|应该是|重新|修改|更改")


def named_fields(text: str, fields: Iterable[str]) -> List[str]:
    """The form fields a correction names (``电话写错了``, ``地址不对``), in the form's order."""
    text = fold(text)
    named = []
    for field in fields:
        for word in FIELD_WORDS.get(field, ()):
            if word in text:
                named.append(field)
                break
    return named


def is_correction(text: str) -> bool:
    return bool(CORRECTION.search(fold(text)))


_PATCHES = (
    re.compile(r"(?:应该是|是|改成|改为|换成)\s*(?P<new>[^\s，,。！!？?]{1,20}?)\s*[，,]?\s*(?:而)?不是\s*(?P<old>[^\s，,。！!？?]{1,20})"),
    re.compile(r"不是\s*(?P<old>[^\s，,。！!？?]{1,20}?)\s*[，,]?\s*(?:而)?(?:应该)?是\s*(?P<new>[^\s，,。！!？?]{1,20})"),
)


def _bare(part: str) -> str:
    return re.sub(r"^[\W_]+|[\W_]+$", "", part or "")


def patched(current: str, text: str) -> Optional[str]:
    """``是2栋1806 不是1808`` (or ``不是1808，是1806``) said of a detail already given: that detail
    with the part put right (``…阳明国际2栋1808`` → ``…阳明国际2栋1806``), or None when the wrong
    part is not in it. The new part may repeat what stands before the wrong one (``2栋``)."""
    folded, current = fold(text), str(current or "")
    for pattern in _PATCHES:
        for match in pattern.finditer(folded):
            old, new = _bare(match.group("old")), _bare(match.group("new"))
            at = current.rfind(old) if old and new and old != new else -1
            if at < 0:
                continue
            before = current[:at]
            overlap = next((n for n in range(min(len(before), len(new) - 1), 0, -1) if before.endswith(new[:n])), 0)
            return before[:len(before) - overlap] + new + current[at + len(old):]
    return None


def after_correction(text: str) -> str:
    """What follows ``改成`` / ``是`` in ``电话改成139…`` / ``地址不对，是…``: the new value."""
    folded = fold(text)
    match = re.search(r"(?:改成|改为|换成|更正为|应该是|不对[，,\s]*是|错了[，,\s]*是|是)\s*[:：]?\s*(.+)$", folded)
    return match.group(1).strip() if match else ""


KINDS = {
    "return_form": ("退货", "退款", "退掉", "退了吧", "退钱", "换货", "换一个", "换个新", "退换", "换新",
                    "换一台", "换台新", "换个好的", "refund", "return", "exchange"),
    "repair_form": ("报修", "维修", "修一下", "修理", "上门修", "来修", "修好", "安装", "repair", "fix"),
    "complaint_form": ("投诉", "举报", "差评", "complain"),
}
_NEG_KIND = re.compile(r"(不|别|不用|不要|不想|不打算)(再)?(投诉|报修|修|维修|退|换|退货|换货|退换)了?")
_STILL = re.compile(r"(还是|改成|改为|换成|直接|那就|那|我要|我想|帮我)")


def without_negated_kinds(text: str) -> str:
    """The text with every negated kind (``不投诉了``, ``不换``) blanked out, same length."""
    return _NEG_KIND.sub(lambda m: "□" * len(m.group(0)), fold(text))


# any clear request to send it back, not only the set phrases: 直接给我退了, 还是直接退吧, 钱退回来就行,
# just refund me (never 退出, 不退了: negated kinds are blanked first)
_ASKS_RETURN = re.compile(r"(?:直接|还是|那就|干脆|给我|帮我|我要|我想|要)(?:给我|帮我|直接)?退(?!出|休|步|役|烧|换)|"
                          r"(?:钱|款)(?:给我)?退(?:回来|回|给我)|把钱退|(?i:refund me|money back|give me a refund|"
                          r"i want a refund|want my money|send it back)")
# a bare 修 asked for (还是修吧, 那就修一下, 帮我修): a repair, never 修改 (changing a detail)
_ASKS_REPAIR = re.compile(r"(?:还是|那就|干脆|给我|帮我|我要|我想)(?:给我|帮我|直接|上门)?修(?!改|正|了|过|好了)")


# a return or an exchange asked for in so many words (想退货, 可以换新的嘛, 申请退款), not told
# about (退款到现在还没到, 不给退): the form a message that starts another one really wants
_WANTS_RETURN = re.compile(r"(?:想|要|申请|办理?|帮我|给我|能不能|可不可以|可以|能)(?:办理?|申请|给我|帮我)?"
                           r"(?:退货|退掉|退款|退了|换货|换(?:个|一个|一台|台)?新的?)")
_RETURN_TROUBLE = re.compile(r"(?:还没|没有|不给|拒绝|一直|迟迟|到现在|怎么还|不让)[^，,。！!？?]{0,6}(?:退|换)|"
                             r"(?:退|换)[^，,。！!？?]{0,6}(?:还没|没到|不给|被拒|拒绝)")


def wanted_instead(text: str, current: str) -> Optional[str]:
    """The form the message that started ``current`` asks for instead (``…塑料味 熏得头疼 想退货``
    read as a complaint, ``…不出热水了 质量问题可以换新的嘛`` as a repair: the return form; a
    return read from ``退款到现在还没退给我``: the complaint form), or None: only a return or
    exchange asked for in words, never one complained about, and never when the message names
    ``current``'s own kind (投诉, 报修)."""
    folded = without_negated_kinds(text)
    wants, trouble = _WANTS_RETURN.search(folded), _RETURN_TROUBLE.search(folded)
    if current == "return_form":
        # 退款申请了半个月到现在还没退给我: a complaint about a return, not a new one
        return "complaint_form" if trouble and not wants else None
    if any(w in folded for w in KINDS.get(current, ())):
        return None
    return "return_form" if wants and not trouble else None


def switch_target(text: str, current: str | None) -> Optional[str]:
    """The other form a customer switches to (``不投诉了，我要退货`` → ``return_form``,
    ``算了，还是报修吧`` → ``repair_form``, ``投诉有什么用，直接给我退了`` → ``return_form``), or
    None. Negated kinds never count; the kind said last wins."""
    # "修来修去的麻烦" tells why not to repair, it asks for no repair
    folded = _BACK_AND_FORTH.sub(lambda m: "□" * len(m.group(0)), without_negated_kinds(text))
    best: Optional[Tuple[int, str]] = None
    for form, words in KINDS.items():
        for word in words:
            pos = folded.rfind(word)
            if pos >= 0 and (best is None or pos > best[0]):
                best = (pos, form)
    for match in _ASKS_RETURN.finditer(folded):
        if best is None or match.start() > best[0]:
            best = (match.start(), "return_form")
    for match in _ASKS_REPAIR.finditer(folded):
        if best is None or match.start() > best[0]:
            best = (match.start(), "repair_form")
    if best is None or best[1] == current:
        return None
    return best[1]


_BACK_AND_FORTH = re.compile(r"换来换去|退来退去|退了又换|换了又换|来回换|来回退|反复换|换个没完|修来修去|修了又修|"
                             r"来回修|反复修|修了好几次|修过好几次|修好几次|修了几次|修不好|修了[两二三四五六几多]次|修过[两二三四五六几多]次")


def return_type(text: str) -> Optional[str]:
    """``return`` or ``exchange``, reading negation: ``不换了，退货`` is a return,
    ``不退了换个新的`` an exchange; the last non-negated one wins."""
    folded = fold(text).lower()
    # "换来换去麻烦" tells why not to exchange, it asks for nothing
    folded = _BACK_AND_FORTH.sub(lambda m: "□" * len(m.group(0)), folded)
    folded = re.sub(r"(不|别|不用|不要|不想)(想)?(换|换货|退|退货)(了)?|(?:don't|do not|not|no)\s+(?:want to\s+)?(?:exchange|return|refund)",
                    lambda m: "□" * len(m.group(0)), folded)
    ex = max(folded.rfind(w) for w in ("换", "调换", "exchange", "replace"))
    ret = max(folded.rfind(w) for w in ("退", "不要了", "退钱", "return", "refund", "money back"))
    if ex < 0 and ret < 0:
        return None
    return "exchange" if ex > ret else "return"


CUSTOM_MADE = re.compile(r"定制|订做|订制|定做|訂製|定製|訂做|专门做的|量身")


def is_custom_made(text: str, excluded: str = "定制类商品") -> bool:
    """Is the item custom-made (the profile's exclusion, e.g. ``定制类商品``)?"""
    folded = fold(text)
    core = re.sub(r"(类)?(商品|产品)$", "", excluded or "")
    return bool(CUSTOM_MADE.search(folded)) or (len(core) >= 2 and core in folded)
