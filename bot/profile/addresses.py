"""Where: a home address in a customer's words (``…科华北路118号 望江苑3栋1单元801``,
``石家庄 裕华区 槐安东路 恒大城11-2-903``), and how address-like a text is. Pure functions,
read through :func:`bot.profile.hazards.fold`; ``bot.profile.details`` re-exports them."""
from __future__ import annotations

import re
from typing import Optional

from bot.profile.hazards import fold
from bot.profile.phones import PHONE_ANY


# --- where: a home address -------------------------------------------------------------------

_ADMIN = r"(?:省|市|区|县|镇|乡|村|旗)"
_STREET = r"(?:路|街|大道|道|巷|弄|胡同|里|坊)"
_PLACE = r"(?:小区|花园|苑|公寓|大厦|广场|新村|家园|城|庄|院|湾|府|公馆|中心)"
_UNIT = r"(?:号楼|号院|号|栋|幢|座|单元|楼|层|室|户|门)"
ADDRESS_SPAN = re.compile(
    r"[\u4e00-\u9fa5A-Za-z]{0,12}?(?:" + _ADMIN + r"|" + _STREET + r"|" + _PLACE + r")"
    r"[\u4e00-\u9fa5A-Za-z0-9\-#（）()]*?\d+[A-Za-z]?\s*" + _UNIT +
    r"(?:[\u4e00-\u9fa5A-Za-z0-9\-#]*?(?:\d+[A-Za-z]?\s*" + _UNIT + r"?))*")
_VAGUE_PLACE = re.compile(r"^(在)?(我)?(家|家里|公司|单位|楼下|门口|这里|这边|那边|老地方|原地址|上次那个?地址)")


def address_score(text: str) -> int:
    """How address-like a text is: one point each for a region, a street or estate, a number
    with a unit (号/栋/室…); 0 for ``在家`` and the like."""
    text = fold(text).strip()
    if not text or _VAGUE_PLACE.match(text) and len(text) < 10:
        return 0
    score = 0
    if re.search(r"[\u4e00-\u9fa5]{1,6}" + _ADMIN, text):
        score += 1
    if re.search(r"[\u4e00-\u9fa5A-Za-z0-9]{1,12}" + "(?:" + _STREET + "|" + _PLACE + ")", text):
        score += 1
    if re.search(r"\d+[A-Za-z]?\s*" + _UNIT, text) or re.search(r"[一二三四五六七八九十]+(?:号楼|栋|单元|号)", text) \
            or _BUILDING_UNIT_ROOM.search(text):
        score += 1
    return score


# building-unit-room written with dashes (恒大城11-2-903, 8-2-301)
_BUILDING_UNIT_ROOM = re.compile(r"(?<![\d-])\d{1,3}-\d{1,2}-\d{2,5}(?![\d-])")
_ADDRESS_PART = re.compile(_ADMIN + "|" + _STREET + "|" + _PLACE + r"|\d+[A-Za-z]?\s*" + _UNIT + r"|^\d{1,5}$|"
                           + _BUILDING_UNIT_ROOM.pattern)


def _address_run(clause: str) -> Optional[str]:
    """The longest run of space-separated parts of ``clause`` that are each a piece of an address
    (石家庄 裕华区 槐安东路 恒大城11-2-903; 科华北路118号 望江苑3栋1单元801) and together look
    like one, so the building and room written after a space are kept."""
    tokens = clause.split()
    best: Optional[str] = None
    at = 0
    while at < len(tokens):
        if not _ADDRESS_PART.search(tokens[at]):
            at += 1
            continue
        end = at
        while end + 1 < len(tokens) and _ADDRESS_PART.search(tokens[end + 1]):
            end += 1
        run = re.sub(r"^(在|是|就是|我家在|我住|送到|寄到|上门到|来)", "", " ".join(tokens[at:end + 1]))
        if looks_like_address(run) and (best is None or len(run) > len(best)):
            best = run
        at = end + 1
    return best


def looks_like_address(text: str) -> bool:
    return address_score(text) >= 2 and len(fold(text).strip()) >= 6


def find_address(text: str) -> Optional[str]:
    """An address inside a longer message (``地址是…，电话…``), or the whole text if it is one."""
    folded = fold(text)
    marked = re.search(r"(?:地址|住在|住址|家在|地点)(?:是|在|:|：|改成|改为|换成)?\s*([^，,。；;！!？?\n]+)", folded)
    if marked:
        value = re.split(r"(?i)电话|手机|联系|phone|tel|\s(?=[^\d\s]*\d{7,})", marked.group(1))[0]
        value = PHONE_ANY.sub("", value).strip()
        if looks_like_address(value):
            return value
    for clause in re.split(r"[，,。；;！!？?\n]", folded):
        clause = re.split(r"(?i)电话|手机|联系|phone|tel", PHONE_ANY.sub(" ", clause))[0].strip()
        run = _address_run(clause)
        if run:
            return run
    for chunk in re.split(r"[，,。；;！!？?\n]| (?=\D)", folded):
        chunk = re.sub(r"^(在|是|就是|我家在|我住|送到|寄到|上门到|来)", "", chunk.strip())
        chunk = re.split(r"(?i)电话|手机|联系|phone|tel", PHONE_ANY.sub("", chunk))[0].strip()
        if looks_like_address(chunk):
            return chunk
    return None
