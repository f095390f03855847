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


def test_training_runs_every_node_without_rasas_node_cache(monkeypatch):
    from rasa.engine.training import graph_trainer

    monkeypatch.setattr(graph_trainer, "TrainingHook", graph_trainer.TrainingHook)
    monkeypatch.setattr(graph_trainer.GraphTrainer, "train", graph_trainer.GraphTrainer.train)
    seen = {}
    monkeypatch.setattr(graph_trainer.GraphTrainer, "train",
                        lambda self, *a, **k: seen.update(k) or "trained")
    rasa_server.install_training()
    rasa_server.install_training()              # twice: installed once
    assert graph_trainer.GraphTrainer.train(None, "config", force_retraining=False) == "trained"
    assert seen["force_retraining"] is True     # no fingerprint run
    hook = graph_trainer.TrainingHook(cache=None, model_storage=None, pruned_schema=None)
    assert hook.on_before_node("n", None, {}, {}) == {}
    assert hook.on_after_node("n", None, {}, object(), {}) is None   # nothing fingerprinted
    assert rasa_server.train_command()[-3:] == ["-m", "bot.brain.rasa_server", "train"]
