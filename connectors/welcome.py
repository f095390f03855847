"""The welcome every channel shows a new customer: the business pack's ``utter_greet``.

Shown by the channel (web page, widget, 微信客服 enter_session, a WeChat follow, Telegram
/start), never sent to Rasa as an intent: only payloads of buttons the bot offered pass as
intents (bot/gateway/router.py), so no platform event needs a "/greet" of its own.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from bot.messages import Button, OutboundMessage
from bot.profile.business import PROJECT_ROOT

RESPONSES = PROJECT_ROOT / "data" / "responses" / "rendered.yml"    # the business pack's texts
GREETING_FALLBACK = "您好，请问有什么可以帮您？"


@lru_cache(maxsize=2)
def _greeting(path: str, mtime: float) -> OutboundMessage:
    with open(path, encoding="utf-8") as fh:
        variants = (yaml.safe_load(fh) or {}).get("responses", {}).get("utter_greet") or [{}]
    first = variants[0] if isinstance(variants[0], dict) else {}
    return OutboundMessage(str(first.get("text") or GREETING_FALLBACK), [
        Button(str(b.get("title", "")), str(b.get("payload", "")))
        for b in first.get("buttons") or [] if isinstance(b, dict)])


def welcome(path: Path | None = None) -> OutboundMessage:
    """The greeting with its buttons (re-read when the rendered responses change)."""
    path = path or RESPONSES
    try:
        return _greeting(str(path), path.stat().st_mtime)
    except (OSError, yaml.YAMLError):
        return OutboundMessage(GREETING_FALLBACK)
