"""Gateway settings, all from the environment (secrets never live in code)."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    rasa_url: str = "http://127.0.0.1:5005"
    action_url: str = "http://127.0.0.1:5055"
    rasa_token: str | None = None
    rasa_timeout: float = 30.0
    max_message_chars: int = 1000
    reply_timeout: float = 8.0        # longer than this: "please wait", answer follows
    rate_per_minute: float = 60.0     # per conversation, after a burst of rate_burst
    rate_burst: int = 20
    requeue_after: float = 60.0       # a line left "processing" this long (crash) is replayed

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(
            host=env.get("KEFU_HOST", cls.host),
            port=int(env.get("KEFU_PORT", cls.port)),
            rasa_url=env.get("KEFU_RASA_URL", cls.rasa_url).rstrip("/"),
            action_url=env.get("KEFU_ACTION_URL", cls.action_url).rstrip("/"),
            rasa_token=env.get("KEFU_RASA_TOKEN") or None,
            rasa_timeout=float(env.get("KEFU_RASA_TIMEOUT", cls.rasa_timeout)),
            max_message_chars=int(env.get("KEFU_MAX_MESSAGE_CHARS", cls.max_message_chars)),
            reply_timeout=float(env.get("KEFU_REPLY_TIMEOUT", cls.reply_timeout)),
            rate_per_minute=float(env.get("KEFU_RATE_PER_MINUTE", cls.rate_per_minute)),
            rate_burst=int(env.get("KEFU_RATE_BURST", cls.rate_burst)),
            requeue_after=float(env.get("KEFU_REQUEUE_AFTER", cls.requeue_after)),
        )
