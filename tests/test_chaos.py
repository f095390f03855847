"""Faults injected into the real processes (the scenarios of ``make chaos``)."""
import pytest

from bench.chaos import SCENARIOS, run

pytestmark = pytest.mark.e2e


def test_no_message_lost_and_no_ticket_duplicated_under_faults(trained_model, stack_env):
    outcomes = run(trained_model, list(SCENARIOS))
    assert [o.scenario for o in outcomes] and len(outcomes) == len(SCENARIOS)
    for outcome in outcomes:
        assert outcome.sent > 0, outcome
        assert outcome.lost == 0, outcome
        assert outcome.duplicated_tickets == 0, outcome
        assert outcome.duplicated == 0 and outcome.out_of_order == 0, outcome
        assert not [n for n in outcome.notes if "tickets" in n], outcome   # no ticket missing
        assert outcome.answered >= outcome.sent, outcome
