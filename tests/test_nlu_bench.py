"""Smoke test of the NLU benchmark (bench/nlu_bench.py) on the small hand-written fixture.

Only the TF-IDF baseline runs here (seconds, no Rasa training); the Rasa systems are
exercised by `make nlu-bench`. No timing assertions.
"""
from __future__ import annotations

import json

from bench import nlu_bench
from bot.profile.business import PROJECT_ROOT

FIXTURE = PROJECT_ROOT / "tests" / "data"


def test_bench_tfidf_on_the_fixture_writes_table_and_artefacts(tmp_path, capsys):
    code = nlu_bench.main(["--train", str(FIXTURE / "food_train.yml"),
                           "--test", str(FIXTURE / "food_test.yml"),
                           "--systems", "tfidf", "--folds", "2", "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| tfidf |" in printed and "macro-F1" in printed
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores[0]["system"] == "tfidf" and 0.5 < scores[0]["macro_f1"] <= 1.0
    assert scores[0]["response_accuracy"] is None          # no retrieval intents here
    assert len(scores[0]["cv_f1"]) == 2
    assert (tmp_path / "confusion_tfidf.png").stat().st_size > 1000
    per_intent = (tmp_path / "per_intent_tfidf.md").read_text()
    assert "| where_is_order |" in per_intent and "precision" in per_intent


def test_score_collapses_retrieval_intents_and_scores_responses():
    tests = [nlu_bench.Example("能退吗", "faq", "faq/return_policy"),
             nlu_bench.Example("运费多少", "faq", "faq/shipping_fee"),
             nlu_bench.Example("你好", "greet")]
    predictions = [nlu_bench.Prediction("faq", "faq/return_policy"),
                   nlu_bench.Prediction("faq", "faq/invoice"),
                   nlu_bench.Prediction("greet")]
    result = nlu_bench.score("x", tests, predictions, [1.0, 2.0, 3.0], 0.0)
    assert result.accuracy == 1.0 and result.macro_f1 == 1.0
    assert result.response_accuracy == 0.5
    assert result.infer_ms == 2.0


def test_entity_f1_matches_values_after_normalisation_and_synonyms():
    tests = [nlu_bench.Example("电冰箱坏了 电话138 1234 5678", "request_repair",
                               entities=(("product", "电冰箱"), ("phone", "138 1234 5678"))),
             nlu_bench.Example("订单ＤＤ２０２６１１２７０００１", "inform",
                               entities=(("order_id", "ＤＤ２０２６１１２７０００１"),))]
    predictions = [nlu_bench.Prediction("request_repair", entities=(("product", "冰箱"),
                                                                    ("phone", "13812345678"))),
                   nlu_bench.Prediction("inform", entities=(("order_id", "dd2026112700"),
                                                            ("product", "订单")))]
    f1 = nlu_bench.entity_f1(tests, predictions, {"电冰箱": "冰箱"})
    assert f1["phone"] == 1.0
    assert f1["product"] == 2 / 3                 # one right, one invented
    assert f1["order_id"] == 0.0                  # a truncated number is wrong
    assert nlu_bench.entity_f1(tests, [nlu_bench.Prediction("x")] * 2) == {}   # no entities


def test_default_test_sets_are_own_split_and_blind_sets():
    tests = nlu_bench.parse_tests([])
    assert tests["own split"] == PROJECT_ROOT / "tests" / "nlu"
    assert set(tests) <= {"own split", "blind dev", "blind dev2", "blind dev3", "blind report"}
    named = nlu_bench.parse_tests(["x=tests/data/food_test.yml"])
    assert list(named) == ["x"] and named["x"].name == "food_test.yml"
