"""Free text at rest: a masked copy in the column everyone reads, the clear text sealed.

Transcript lines (``messages.text``), ticket descriptions (``tickets.description``) and
ticket notes (``ticket_events.note``) may hold a phone, an address or an order number
written by the customer or an agent. Each is stored twice when it does: the column itself
holds the masked copy (:func:`bot.profile.privacy.mask_customer_text`), its ``*_encrypted``
sibling the clear text as a Fernet token. Text with nothing to mask is stored once, in
clear, with no token (most lines: the hot path pays a regex, not a cipher).

Every ORM insert and update of those columns is sealed here (mapper events registered by
:mod:`bot.store.schema`), whoever writes the row. Readers get the masked copy by default;
only a reader that may see the clear text (the assigned agent, the customer's own chat,
the replayer feeding Rasa) calls :func:`clear`. Rasa's tracker events are sealed by
:func:`seal_event` / :func:`unseal_event` (used by ``bot/brain/tracker_store.py``).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional, Tuple

from sqlalchemy import event, inspect

from bot.profile import privacy

# (clear column, token column) per table: the pairs the mapper events keep in step
SEALED_COLUMNS = {"messages": (("text", "text_encrypted"),),
                  "tickets": (("description", "description_encrypted"),),
                  "ticket_events": (("note", "note_encrypted"),)}


def seal(text: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """``(masked copy, token or None)``: a token only when masking changed something."""
    if not text:
        return text, None
    masked = privacy.mask_customer_text(text)
    return (text, None) if masked == text else (masked, privacy.encrypt(text))


def clear(masked: Optional[str], token: Optional[str]) -> Optional[str]:
    """The clear text of a sealed column (the masked copy when nothing was sealed)."""
    return _decrypt(token) if token else masked


@lru_cache(maxsize=4096)
def _decrypt(token: str) -> str:
    return privacy.decrypt(token)


def _seal_row(mapper, connection, target) -> None:
    state = inspect(target)
    for column, token_column in SEALED_COLUMNS.get(mapper.local_table.name, ()):
        if state.persistent:                      # an update: reseal only a changed text
            if not state.attrs[column].history.has_changes():
                continue
            if state.attrs[token_column].history.has_changes():
                continue                          # the writer set both (a migration, a copy)
        elif getattr(target, token_column) is not None:
            continue                              # inserted already sealed
        masked, token = seal(getattr(target, column))
        setattr(target, column, masked)
        setattr(target, token_column, token)


def register(*classes) -> None:
    """Seal the free-text columns of these mapped classes on every insert and update."""
    for cls in classes:
        event.listen(cls, "before_insert", _seal_row)
        event.listen(cls, "before_update", _seal_row)


# --- Rasa's tracker events -----------------------------------------------------------------

_SEALED_PREFIX = '{"kefu_sealed": "'
_EVENT_RE = re.compile(r'\{"event": "([a-z_]+)"')
# events that carry no text, slot value, entity or metadata of the customer's: kept readable
PLAIN_EVENTS = frozenset({"active_loop", "action_execution_rejected", "followup", "rewind",
                          "undo", "restart", "pause", "resume", "loop_interrupted",
                          "user_featurization", "action_reverted", "export"})


def seal_event(data: Optional[str]) -> Optional[str]:
    """Rasa's JSON of one event → the same JSON, or ``{"kefu_sealed": token}`` when it may
    hold what a customer wrote (user text, bot text, slot values, entities, metadata).
    ``action`` events stay readable unless they carry an end-to-end ``action_text``."""
    if data is None or data.startswith(_SEALED_PREFIX):
        return data
    match = _EVENT_RE.match(data)
    kind = match.group(1) if match else None
    if kind in PLAIN_EVENTS or (kind == "action" and '"action_text": null' in data):
        return data
    return _SEALED_PREFIX + privacy.encrypt(data) + '"}'


def unseal_event(data: Optional[str]) -> Optional[str]:
    """The event's JSON as Rasa wrote it (rows written before sealing are returned as is)."""
    if data is None or not data.startswith(_SEALED_PREFIX):
        return data
    return _decrypt(data[len(_SEALED_PREFIX):-2])
