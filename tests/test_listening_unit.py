"""The listening forms' validators (actions/listening.py), run as Rasa's action server runs them."""
import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import ValidateReturnForm


@pytest.fixture(autouse=True)
def shop_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/forms.db")
    monkeypatch.setenv("KEFU_FAKE_NOW", "2026-11-27T10:00:00")


def validate(form, slots, text, intent="inform"):
    tracker = Tracker("web:x", slots, {"text": text, "intent": {"name": intent}, "entities": []},
                      [], False, None, {"name": form.form}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(form.run(dispatcher, tracker, {}))
    return {e["name"]: e["value"] for e in events}, [m.get("text") for m in dispatcher.messages]


RETURN = dict(order_id="DD889102736455", return_type="return", return_reason=None,
              days_since_receipt=None, phone=None, requested_slot="return_reason", form_tries={})


@pytest.mark.parametrize("text, order", [("错了 DD889102736456", "DD889102736456"),
                                         ("不对，应该是 390184726615", "390184726615")])
def test_a_correction_alone_is_no_answer_to_the_question_asked(text, order):
    slots, said = validate(ValidateReturnForm(), RETURN, text)
    assert slots["order_id"].upper() == order
    assert "return_reason" not in slots                 # the reason is asked again
    assert slots["form_tries"] == {}                    # and the correction is no failed try
    assert said == []


def test_a_correction_with_a_reason_gives_both():
    slots, _ = validate(ValidateReturnForm(), RETURN, "订单号错了 DD889102736456，尺寸不合适")
    assert slots["order_id"].upper() == "DD889102736456"
    assert "尺寸不合适" in slots["return_reason"]
