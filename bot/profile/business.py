"""The business profile: the one place every configurable service fact lives.

Actions, the gateway and the FAQ renderer all read facts from here, so changing a
fact in the business pack's profile (``files.profile`` of ``businesses/<KEFU_BUSINESS>/pack.yml``,
or the file named by ``KEFU_PROFILE``) changes every answer and every promise that states it.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict
from zoneinfo import ZoneInfo

import yaml

from bot.profile import pack
from bot.settings import setting

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_PROFILE = pack.load("shop").path("profile")     # the default business's profile


def profile_path() -> Path:
    return setting("KEFU_PROFILE") or pack.current().path("profile")


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_profile() -> Dict[str, Any]:
    """The profile as a dict; re-read when the file changes (reload without restart)."""
    path = profile_path()
    return _load(str(path), path.stat().st_mtime)


def shop_tz() -> ZoneInfo:
    facts = load_profile()
    identity = facts.get("business") or facts.get("shop") or {}     # who we are: name, zone
    return ZoneInfo(identity.get("timezone", "Asia/Shanghai"))


def now() -> dt.datetime:
    """Timezone-aware current time in UTC (override with KEFU_FAKE_NOW for tests/demos)."""
    fake = setting("KEFU_FAKE_NOW")
    if fake:
        value = dt.datetime.fromisoformat(fake)
        if value.tzinfo is None:
            value = value.replace(tzinfo=shop_tz())
        return value.astimezone(dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def service_window() -> tuple[dt.time, dt.time]:
    """Agents' opening and closing time of day (shop-local), e.g. (09:00, 21:00)."""
    hours = load_profile()["service_hours"]
    return _clock(hours["open"]), _clock(hours["close"])


def within_service_hours(at: dt.datetime | None = None) -> bool:
    """Whether human agents are on duty at ``at`` (shop-local opening hours)."""
    hours = load_profile()["service_hours"]
    local = (at or now()).astimezone(shop_tz()).time()
    return _clock(hours["open"]) <= local < _clock(hours["close"])


def next_opening(at: dt.datetime | None = None) -> dt.datetime:
    """The next moment agents come on duty, as an aware datetime in shop time."""
    hours = load_profile()["service_hours"]
    local = (at or now()).astimezone(shop_tz())
    opening = local.replace(hour=_clock(hours["open"]).hour, minute=_clock(hours["open"]).minute,
                            second=0, microsecond=0)
    if opening <= local:
        opening += dt.timedelta(days=1)
    return opening
