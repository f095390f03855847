"""The gateway's one internal message type, shared by every channel.

A connector parses its platform's wire format into an :class:`InboundMessage`, hands it
to the router, and renders the :class:`OutboundMessage` list back in its own format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


class ConversationId(str):
    """``"<channel>:<platform user id>"``: one customer on one channel, also Rasa's sender id.

    Built and taken apart only here, so the format has one definition.
    """

    SEPARATOR = ":"

    @classmethod
    def of(cls, channel: str, user_id: str) -> "ConversationId":
        return cls(f"{channel}{cls.SEPARATOR}{user_id}")

    @property
    def channel(self) -> str:
        """The channel part ("rest" for a bare id with no channel, as Rasa's REST channel)."""
        return self.split(self.SEPARATOR, 1)[0] if self.SEPARATOR in self else "rest"

    @property
    def user_id(self) -> str:
        return self.split(self.SEPARATOR, 1)[1] if self.SEPARATOR in self else str(self)

    def parts(self) -> tuple[str, str]:
        return self.channel, self.user_id


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class InboundMessage:
    """What a customer sent, on which channel, as which platform user."""

    channel: str                       # web | wechat | telegram
    user_id: str                       # the platform's id for the customer
    text: str
    delivery_id: Optional[str] = None  # the platform's message id (dedup)
    metadata: Dict[str, Any] = field(default_factory=dict)

    @property
    def conversation_id(self) -> ConversationId:
        """Also Rasa's sender id: the channel is part of the customer's identity."""
        return ConversationId.of(self.channel, self.user_id)


@dataclass(frozen=True)
class OutboundMessage:
    """One message for the customer: text, optional buttons, and who wrote it."""

    text: str
    buttons: List[Button] = field(default_factory=list)
    author: str = "bot"   # bot | agent | system (in a turn) | notice (pushed outside a turn)

    def as_json(self) -> Dict[str, Any]:
        return {"text": self.text, "author": self.author,
                "buttons": [{"title": b.title, "payload": b.payload} for b in self.buttons]}


def clean_text(text: str) -> str:
    """Strip control characters and surrounding whitespace; keep emoji and CJK as is."""
    kept = "".join(ch for ch in (text or "") if ch in "\n\t" or ch.isprintable())
    return kept.strip()
