"""bot/brain/rasa_server.py: the cached action-response check accepts and refuses what Rasa's does."""
from __future__ import annotations

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from bot.brain import rasa_server

VALID = {"events": [{"event": "slot", "name": "product", "value": "空调"}],
         "responses": [{"text": "好的", "buttons": [{"title": "是", "payload": "/affirm"}]}]}
INVALID = [
    {"events": [{"event": 3}]},              # event name must be a string
    {"events": "slot"},                       # events must be a list
    {"events": [{"name": "product", "value": "空调"}]},   # an event needs its "event"
    {"events": [{"event": "no_such_event"}]},          # unknown event type
]


def rasa_verdict(result) -> str | None:
    """What Rasa's own check (jsonschema.validate on every call) says."""
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
        return None
    except jsonschema.ValidationError as exc:
        return exc.message


@pytest.fixture
def patched(monkeypatch):
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    rasa_server.install()
    return RemoteAction("action_x", None)


def test_install_replaces_rasas_check(patched):
    assert RemoteAction._validate_action_result is rasa_server._validate_action_result


def test_valid_answer_passes(patched):
    assert rasa_verdict(VALID) is None
    assert patched._validate_action_result(VALID) is True


@pytest.mark.parametrize("result", INVALID)
def test_invalid_answer_refused_with_rasas_error(patched, result):
    expected = rasa_verdict(result)
    assert expected is not None
    with pytest.raises(jsonschema.ValidationError) as caught:
        patched._validate_action_result(result)
    assert caught.value.message.startswith(expected)
    assert "Failed to validate Action server response" in caught.value.message


def test_schema_checked_once():
    first = rasa_server.action_result_validator()
    assert rasa_server.action_result_validator() is first
