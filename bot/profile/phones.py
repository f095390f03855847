"""Which phone: a mainland mobile (+86, spaces, dashes, full-width digits) or a landline with
its area code and extension, found in a customer's words; and a description kept free of them.
Pure functions, read through :func:`bot.profile.hazards.fold`; ``bot.profile.details`` re-exports
them."""
from __future__ import annotations

import re
from typing import Optional, Tuple

from bot.profile.hazards import fold


# --- which phone: mobile (+86, spaces, dashes, full-width) or a landline ----------------------

PHONE_ANY = re.compile(r"(?:\+?\s*86[\s-]*|0086[\s-]*)?1[3-9]\d(?:[\s-]*\d){8}(?!\d)|"
                       r"(?<![\dA-Za-z])0[1-9]\d{1,2}[\s-]*\d{7,8}(?:\s*(?:转|-|ext)\s*\d{1,5})?(?!\d)")
_MOBILE_SPACED = re.compile(r"(?<![\dA-Za-z])(?:\+?86[\s-]?|0086[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86|0086)?(1[3-9]\d{9})(?!\d)")
_LANDLINE_SPACED = re.compile(r"(?<![\dA-Za-z])(0[1-9]\d{1,2})[\s-]+(\d{3,4}[\s-]?\d{4})(?:\s*(?:转|-|ext)\s*(\d{1,5}))?(?!\d)")
_LANDLINE = re.compile(r"(?<![\dA-Za-z])(0[1-9]\d{1,2})(\d{7,8})(?:(?:转|-|ext)(\d{1,5}))?(?!\d)")

EXTENSION = "转"            # how find_phone writes a landline's extension: 021-66668888转123


def without_extension(phone: str) -> str:
    """The number to dial, without the extension find_phone kept (``021-66668888转123``)."""
    return str(phone).split(EXTENSION)[0]


def find_phone(text: str, *, landline: bool = True) -> Optional[Tuple[str, str]]:
    """``("mobile", "13800000000")`` or ``("landline", "021-66668888")`` from a message, or None.

    Spaces, dashes, dots and brackets between digits are ignored; ``+86`` / ``0086`` and
    full-width digits are fine; an order number (12-20 digits) is not a phone.
    """
    folded = re.sub(r"\+\s*86", "+86", fold(text))
    mobiles = [m for m in _MOBILE_SPACED.finditer(folded)]
    if mobiles:                  # the last one: "138…0, sorry typo, 是138…1" is a correction
        return "mobile", "".join(mobiles[-1].group(1, 2, 3))
    folded = re.sub(r"(?<=\d)[\s\-.()（）]+(?=\d)", "", folded)
    if landline:
        spaced = fold(text)
        match = _LANDLINE_SPACED.search(spaced)
        if match:
            extension = match.group(3)
            return "landline", f"{match.group(1)}-{re.sub(r'[^0-9]', '', match.group(2))}" + (f"转{extension}" if extension else "")
        for match in _LANDLINE.finditer(folded):
            run = re.match(r"\d+", folded[match.start():])
            if run and len(run.group(0)) > 12 and not match.group(3):
                continue
            digits = match.group(1) + match.group(2)
            code = 3 if digits[:2] in ("01", "02") else 4
            number = f"{digits[:code]}-{digits[code:]}"
            return "landline", number + (f"转{match.group(3)}" if match.group(3) else "")
    return None


def digits_only(text: str) -> str:
    return re.sub(r"\D", "", fold(text))


PHONE_NOTE = "（电话已单独记录）"     # where a description had a phone number (the ticket keeps it apart)


def strip_phone(text: str) -> str:
    """The text without any phone number in it (a description keeps no phone in clear)."""
    return PHONE_ANY.sub(PHONE_NOTE, fold(text)) if PHONE_ANY.search(fold(text)) else text
