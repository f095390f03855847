"""Personal data: encryption at rest and masking for display and logs.

Phones and addresses are stored as Fernet tokens (key from ``KEFU_DATA_KEY``, or a key
file created once under ``var/``), and shown masked to everyone but the agent handling
the ticket. :class:`RedactingFilter` keeps phone numbers out of every log line.
"""
from __future__ import annotations

import logging
import os
import re
from functools import lru_cache

from cryptography.fernet import Fernet

from bot.profile.business import PROJECT_ROOT
from bot.profile.parsing import ascii_digits
from bot.settings import setting

PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
# order numbers (``DD`` + digits, or 12-20 digits) and street addresses, masked in what
# customers wrote before admins see it (the training inbox, annotated examples)
ORDER_RE = re.compile(r"(?i)(?<![A-Za-z0-9])(DD\d{4,}|\d{12,20})(?![0-9])")
ADDRESS_RE = re.compile(
    r"[\u4e00-\u9fa5]{0,8}(?:省|市|区|县|镇|乡)[\u4e00-\u9fa5A-Za-z0-9\-#]*?"
    r"(?:路|街|道|巷|弄|小区|花园|村|大厦)[\u4e00-\u9fa5A-Za-z0-9\-#]*?"
    r"(?:\d+\s*(?:号|栋|幢|单元|室|楼|层)[\u4e00-\u9fa5A-Za-z0-9\-#]*)?")


def normalise_phone(text: str) -> str | None:
    """The 11 digits of a mainland mobile number found in ``text`` (any digit form: ``１３８…``
    full-width, ``١٣٨…`` Arabic-Indic), as ASCII digits, or None."""
    match = PHONE_RE.search(ascii_digits(text or ""))
    return "".join(match.groups()) if match else None


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_address(address: str | None) -> str | None:
    if not address:
        return address
    keep = max(2, min(6, len(address) // 3))
    return address[:keep] + "****"


def mask_text(text: str) -> str:
    """Mask every phone number inside free text (transcripts, logs), in any digit form.

    Phones are found in the digits-as-ASCII copy (same length, so same positions); the
    rest of the text is kept as written.
    """
    text = text or ""
    folded = ascii_digits(text)
    out, last = [], 0
    for match in PHONE_RE.finditer(folded):
        out += [text[last:match.start()], match.group(1), "****", match.group(3)]
        last = match.end()
    return "".join(out) + text[last:] if out else text


def mask_customer_text(text: str) -> str:
    """Phones, order numbers and addresses masked in free text (what admins see of customers)."""
    text = ADDRESS_RE.sub(lambda m: m.group(0)[:2] + "****" if len(m.group(0)) > 4 else m.group(0),
                          text or "")
    text = ORDER_RE.sub(lambda m: m.group(1)[:4] + "****" + m.group(1)[-2:], text)
    return mask_text(text)


@lru_cache(maxsize=1)
def _fernet() -> Fernet:
    key = setting("KEFU_DATA_KEY")
    if not key:
        path = PROJECT_ROOT / "var" / "data.key"
        if not path.exists():
            # written whole under another name, then linked into place: of processes starting
            # together (gateway, Rasa, action server) one creates it, all read the same key
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".data.key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
            try:
                os.link(tmp, path)              # fails if another process was first
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        key = path.read_text().strip()
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt(value: str | None) -> str | None:
    return None if value is None else _fernet().encrypt(value.encode()).decode()


def decrypt(token: str | None) -> str | None:
    return None if token is None else _fernet().decrypt(token.encode()).decode()


class RedactingFilter(logging.Filter):
    """Rewrites log records so no phone number reaches a handler in clear."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_redaction() -> None:
    root = logging.getLogger()
    for handler in root.handlers or []:
        handler.addFilter(RedactingFilter())
    root.addFilter(RedactingFilter())
