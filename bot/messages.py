"""The gateway's one internal message type, shared by every channel.

A connector parses its platform's wire format into an :class:`InboundMessage`, hands it
to the router, and renders the :class:`OutboundMessage` list back in its own format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


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
    def conversation_id(self) -> str:
        """Also Rasa's sender id: the channel is part of the customer's identity."""
        return f"{self.channel}:{self.user_id}"


@dataclass(frozen=True)
class OutboundMessage:
    """One message for the customer: text, optional buttons, and who wrote it."""

    text: str
    buttons: List[Button] = field(default_factory=list)
    author: str = "bot"   # bot | agent | system (in a turn) | notice (pushed outside a turn)

    def as_json(self) -> Dict[str, Any]:
        return {"text": self.text, "author": self.author,
                "buttons": [{"title": b.title, "payload": b.payload} for b in self.buttons]}
