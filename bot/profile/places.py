"""Where a repair or complaint is: a home (building / unit / floor / room) or a shared place.

Pure functions used by the actions of a business whose forms ask for a ``location``
(``3栋2单元1201``, ``5号楼801``, ``B座12楼``, ``8-2-301``, ``3号楼电梯``, ``地下车库``). The
grammar of Chinese estate addresses is code; which shared places an estate has is the
business profile's ``shared_places`` list.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from bot.profile.details import fold

_N = r"(?:\d{1,3}|[一二三四五六七八九十]{1,3})"
BUILDING = r"(?P<building>[A-Za-z]|\d{1,3}|[一二三四五六七八九十]{1,3})\s*(?:号楼|栋|幢|座|号院|#楼?|号(?=\s*\d{1,2}\s*单元))"
UNIT = r"(?P<unit>" + _N + r")\s*单元"
FLOOR = r"(?P<floor>\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:楼|层)(?!道|梯|下|上|顶)"
ROOM = r"(?P<room>\d{3,4})\s*(?:室|号|房)?"
HOME = re.compile(r"(?<![\dA-Za-z])" + BUILDING + r"\s*(?:" + UNIT + r")?\s*(?:" + FLOOR + r")?\s*(?:" + ROOM + r")?", re.A)
DASHED = re.compile(r"(?<![\d-])(?P<building>\d{1,3})-(?P<unit>\d{1,2})-(?P<room>\d{3,4})(?![\d-])", re.A)
# a unit and room with no building (``2单元501``), a building then unit-room (``8栋2-301``)
UNIT_ROOM = re.compile(r"(?<![\dA-Za-z])" + UNIT + r"\s*" + ROOM, re.A)
BUILDING_DASHED = re.compile(r"(?<![\dA-Za-z])" + BUILDING + r"\s*(?P<unit>\d{1,2})-(?P<room>\d{3,4})(?![\d-])", re.A)


@dataclass
class Location:
    text: str                                   # as the resident wrote it
    kind: str                                   # "home" or "shared"
    parts: Dict[str, str] = field(default_factory=dict)   # building, unit, floor, room, place

    @property
    def complete_home(self) -> bool:
        """A home precise enough to visit: a room, or a floor of a building."""
        return self.kind == "home" and bool(self.parts.get("room") or self.parts.get("floor"))


def _place(text: str, places: Iterable[str]) -> Optional[re.Match]:
    words = sorted({str(p) for p in places if p}, key=len, reverse=True)
    if not words:
        return None
    pattern = r"(?:小区|中心|地下|\d{1,3}\s*(?:号楼|栋|幢|座)|[A-Za-z]\s*座)?(?:" + "|".join(map(re.escape, words)) + ")"
    found = list(re.finditer(pattern, text))
    return max(found, key=lambda m: len(m.group(0))) if found else None     # the most qualified


def find_location(text: str, places: Iterable[str] = ()) -> Optional[Location]:
    """The most precise location in ``text``: a home when it names a building, else a shared
    place of ``places`` (optionally with its building: ``3号楼电梯``), else None."""
    folded = fold(text or "")
    dashed = DASHED.search(folded) or BUILDING_DASHED.search(folded)
    if dashed:
        return Location(dashed.group(0), "home", {k: v for k, v in dashed.groupdict().items() if v})
    best = None
    for match in HOME.finditer(folded):
        parts = {k: v for k, v in match.groupdict().items() if v}
        if best is None or len(parts) > len(best[1]):
            best = (match, parts)
    unit_room = UNIT_ROOM.search(folded)
    if unit_room and best is None:
        return Location(unit_room.group(0).strip(), "home",
                        {k: v for k, v in unit_room.groupdict().items() if v})
    place = _place(folded, places)
    if best and (len(best[1]) > 1 or not place):
        match, parts = best
        # a building followed by a shared place is that place (``3号楼电梯``)
        if place and place.start() <= match.end() and len(parts) == 1 and place.end() > match.end():
            return Location(place.group(0), "shared", {"building": parts["building"],
                                                       "place": place.group(0)[len(match.group(0)):].strip()})
        return Location(match.group(0).strip(), "home", parts)
    if place:
        building = HOME.match(place.group(0))
        parts = {"place": place.group(0)}
        if building and building.group("building"):
            parts = {"building": building.group("building"),
                     "place": place.group(0)[building.end():].strip()}
        return Location(place.group(0), "shared", parts)
    return None


# --- where in a message: the span an NLU extractor annotates -------------------------------

BUILDING_ONLY = re.compile(r"(?<![\dA-Za-z])" + BUILDING, re.A)
ROOM_WORD = re.compile(r"\s*(?:室|号|房)")
PLACE_QUALIFIER = r"(?:小区|中心)?"      # 小区东门, 中心花园: the estate's own name for the place


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    location: Location
    rank: int                  # 3 a home with more than a building, 2 a building's place, 1 a place or a building


def place_words(words: Iterable[str]) -> List[str]:
    """Shared-place words, longest first (the most qualified match wins at a position)."""
    return sorted({str(w).strip() for w in words if str(w).strip()}, key=len, reverse=True)


def location_spans(text: str, places: Iterable[str] = ()) -> List[Span]:
    """Every location ``text`` names, as spans of ``text`` itself (no folding: the NLU
    pipeline has normalised it already): homes, a building's shared place (``3号楼电梯``),
    a building alone (``A座``) and shared places (``小区东门``, ``地下车库``)."""
    text = text or ""
    words = place_words(places)
    place_re = re.compile(PLACE_QUALIFIER + "(?:" + "|".join(map(re.escape, words)) + ")") if words else None
    found: List[Span] = []
    taken: List[Tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return not any(a < end and start < b for a, b in taken)

    def home(match: re.Match, end: int) -> None:
        end = match.start() + len(text[match.start():end].rstrip())
        parts = {k: v for k, v in match.groupdict().items() if v}
        word = ROOM_WORD.match(text, end)
        if word and parts.get("room"):
            end = word.end()                              # 8-2-301室
        found.append(Span(match.start(), end, Location(text[match.start():end], "home", parts), 3))
        taken.append((match.start(), end))

    for pattern in (BUILDING_DASHED, DASHED):
        for match in pattern.finditer(text):
            if free(*match.span()):
                home(match, match.end())
    for match in HOME.finditer(text):
        if not free(*match.span()):
            continue
        parts = {k: v for k, v in match.groupdict().items() if v}
        end = len(match.group(0).rstrip()) + match.start()
        place = place_re.match(text, end) if place_re else None
        if len(parts) > 1 and (parts.get("room") or parts.get("floor") or not place):
            home(match, end)
            continue
        if len(parts) > 1:                                # 3栋2单元楼道
            found.append(Span(match.start(), place.end(), Location(
                text[match.start():place.end()], "shared", {**parts, "place": place.group(0)}), 3))
            taken.append((match.start(), place.end()))
            continue
        if place:
            whole = text[match.start():place.end()]
            found.append(Span(match.start(), place.end(), Location(
                whole, "shared", {"building": parts["building"], "place": place.group(0)}), 2))
            taken.append((match.start(), place.end()))
        else:
            found.append(Span(match.start(), end, Location(text[match.start():end], "home", parts), 1))
            taken.append((match.start(), end))
    for match in UNIT_ROOM.finditer(text):
        if free(*match.span()):
            home(match, match.end())
    if place_re:
        for match in place_re.finditer(text):
            if any(a < match.end() and match.start() < b for a, b in taken):
                continue
            found.append(Span(match.start(), match.end(), Location(match.group(0), "shared",
                                                                   {"place": match.group(0)}), 1))
    return sorted(found, key=lambda s: s.start)


def best_span(text: str, places: Iterable[str] = ()) -> Optional[Span]:
    """The one location a message is about: the most precise, and the first of equals."""
    spans = location_spans(text, places)
    return max(spans, key=lambda s: (s.rank, -s.start)) if spans else None
