"""The business profile drives every stated fact; Rasa's own validator accepts the data."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.training import responses as render_responses
from bot.profile.business import DEFAULT_PROFILE, PROJECT_ROOT, load_profile
from bot.brain.rasa_server import rasa_env


def test_rendered_responses_are_up_to_date():
    assert render_responses.main(["--check"]) == 0, "run: python -m bot.training.responses"


def test_changing_a_fact_changes_every_answer_that_states_it(tmp_path, monkeypatch):
    facts = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    facts["returns"]["no_reason_days"] = 10
    facts["shop"]["name"] = "测试家居旗舰店"
    changed = tmp_path / "profile.yml"
    changed.write_text(yaml.safe_dump(facts, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("KEFU_PROFILE", str(changed))
    responses = yaml.safe_load(render_responses.render())["responses"]
    assert "10天" in responses["utter_faq/return_policy"][0]["text"]
    assert "7天" not in responses["utter_faq/return_policy"][0]["text"]
    assert "测试家居旗舰店" in responses["utter_greet"][0]["text"]
    assert load_profile()["returns"]["no_reason_days"] == 10


def test_every_faq_topic_of_the_contract_has_an_answer():
    topics = {"return_policy", "exchange_policy", "refund_time", "shipping_time", "shipping_fee",
              "invoice", "warranty", "repair_fee", "service_hours", "response_time",
              "payment_methods", "order_change", "installation", "complaint_process", "privacy",
              "contact_channels"}
    answers = yaml.safe_load((PROJECT_ROOT / "businesses" / "shop" / "faq_answers.yml").read_text(encoding="utf-8"))
    assert topics <= set(answers)


def test_faq_answers_state_no_fact_literally():
    """Facts come from the profile: a digit written into a template would not follow it."""
    answers = yaml.safe_load((PROJECT_ROOT / "businesses" / "shop" / "faq_answers.yml").read_text(encoding="utf-8"))
    for topic, template in answers.items():
        stripped = "".join(part.split("}", 1)[-1] for part in template.split("{"))
        assert not any(ch.isdigit() for ch in stripped), f"{topic} states a number literally"


@pytest.mark.e2e
def test_rasa_data_validate_is_clean():
    env = rasa_env()
    result = subprocess.run([str(Path(sys.executable).with_name("rasa")), "data", "validate",
                             "--data", "data", "--domain", "domain.yml", "--config", "config.yml"],
                            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ERROR" not in result.stdout + result.stderr
