"""Where a repair or complaint is: a home (building / unit / floor / room) or a shared place.

Pure functions used by the actions of a business whose forms ask for a ``location``
(``3栋2单元1201``, ``5号楼801``, ``B座12楼``, ``8-2-301``, ``3号楼电梯``, ``地下车库``). The
grammar of Chinese estate addresses is code; which shared places an estate has is the
business profile's ``shared_places`` list.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, Optional

from bot.profile.details import fold

_N = r"(?:\d{1,3}|[一二三四五六七八九十]{1,3})"
BUILDING = r"(?P<building>[A-Za-z]|\d{1,3}|[一二三四五六七八九十]{1,3})\s*(?:号楼|栋|幢|座|号院|#楼?|号(?=\s*\d{1,2}\s*单元))"
UNIT = r"(?P<unit>" + _N + r")\s*单元"
FLOOR = r"(?P<floor>\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:楼|层)(?!道|梯|下|上|顶)"
ROOM = r"(?P<room>\d{3,4})\s*(?:室|号|房)?"
HOME = re.compile(r"(?<![\dA-Za-z])" + BUILDING + r"\s*(?:" + UNIT + r")?\s*(?:" + FLOOR + r")?\s*(?:" + ROOM + r")?", re.A)
DASHED = re.compile(r"(?<![\d-])(?P<building>\d{1,3})-(?P<unit>\d{1,2})-(?P<room>\d{3,4})(?![\d-])", re.A)


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
    dashed = DASHED.search(folded)
    if dashed:
        return Location(dashed.group(0), "home", {k: v for k, v in dashed.groupdict().items() if v})
    best = None
    for match in HOME.finditer(folded):
        parts = {k: v for k, v in match.groupdict().items() if v}
        if best is None or len(parts) > len(best[1]):
            best = (match, parts)
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
