"""The held-out 20% split (tests/nlu/) scored on the session's model: the issue's bar."""
import pytest

from bot.training.evaluate import DEFAULT_TEST, evaluate

pytestmark = pytest.mark.e2e


def test_held_out_split_meets_the_bar(trained_model, tmp_path):
    scores = evaluate(DEFAULT_TEST, trained_model, tmp_path)
    print(scores)
    assert scores["intent_macro_f1"] >= 0.93, scores
    assert scores["faq_response_accuracy"] >= 0.90, scores
    assert scores["entity_f1_by_extractor"]["RegexEntityExtractor"] == {
        "order_id": 1.0, "phone": 1.0, "ticket_id": 1.0}, scores
