"""Training-data quality (bot/training/data_check.py): fast, no training.

The first test checks the project's real data, every business pack's; the others show each
check catches what it is meant to catch, so a green run means something.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.profile import pack as packs
from bot.training import data_check
from bot.training.data_check import Example, parse_example

ORDER_PHONE_REGEXES = {
    "order_id": [r"(?<![0-9a-z])dd\d{6,18}(?![0-9])", r"(?<![0-9a-z])\d{12,20}(?![0-9])"],
    "phone": [r"(?<![0-9])1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?![0-9])"],
}


def ex(raw: str, label: str) -> Example:
    text, entities = parse_example(raw)
    return Example(text, label, "here:1", entities)


@pytest.mark.parametrize("business", packs.names())
def test_project_nlu_data_passes_every_check(business, monkeypatch):
    monkeypatch.setenv("KEFU_BUSINESS", business)            # the running business's pack
    results = data_check.check_all()
    failed = {check: problems for check, problems in results.items() if problems}
    assert not failed, "\n".join(f"{check}:\n  " + "\n  ".join(problems[:20])
                                 for check, problems in failed.items())


def test_parse_example_strips_annotations_and_keeps_offsets():
    text, entities = parse_example('退货 [DD202611250001](order_id) 的[冰箱]{"entity": "product"}')
    assert text == "退货 DD202611250001 的冰箱"
    assert [(text[s:e], n) for s, e, n in entities] == [("DD202611250001", "order_id"),
                                                         ("冰箱", "product")]


def test_duplicates_across_intents_are_found_after_normalisation():
    problems = data_check.duplicates([ex("在吗", "greet"), ex("在吗？", "greet"),
                                      ex("ＨＩ", "greet"), ex("hi", "affirm")])
    assert len(problems) == 1 and "greet" in problems[0] and "affirm" in problems[0]


def test_test_examples_seen_in_training_are_leaks():
    assert data_check.leaks([ex("我要退货", "request_return")], [ex("我要退货", "request_return")])
    assert not data_check.leaks([ex("我要退货", "request_return")], [ex("想退个货", "request_return")])


def test_intents_and_faq_topics_under_the_minimum():
    examples = [ex(f"你好{i}", "greet") for i in range(30)] + \
               [ex(f"退货{i}", "faq/return_policy") for i in range(11)]
    problems = data_check.counts(examples, required=["greet", "goodbye"])
    assert any(p.startswith("faq/return_policy: 11") for p in problems)
    assert any(p.startswith("goodbye: 0") for p in problems)
    assert not any(p.startswith("greet") for p in problems)


def test_unannotated_order_numbers_and_phones():
    problems = data_check.unannotated([
        ex("我要退货 DD202611250001", "request_return"),
        ex("电话 138-1234-5678", "inform"),
        ex("订单[202611250001234](order_id)", "request_return"),
        ex("电话[13812345678](order_id)", "inform"),          # wrong entity type
    ], ORDER_PHONE_REGEXES)
    assert len(problems) == 3
    assert "DD202611250001" in problems[0] and "phone" in problems[1] and "phone" in problems[2]


def test_faq_topics_without_an_answer(tmp_path: Path):
    answers = tmp_path / "answers.yml"
    answers.write_text("return_policy: 七天无理由\ninvoice: ''\n", encoding="utf-8")
    problems = data_check.faq_answers([ex("能退吗", "faq/return_policy"),
                                       ex("几点上班", "faq/service_hours")], answers)
    assert any("faq/service_hours: no answer" in p for p in problems)
    assert any("'invoice' is empty" in p for p in problems)


def test_annotations_off_jieba_token_boundaries():
    aligned = ex("我的[冰箱](product)坏了", "request_repair")
    split_word = ex("我的冰[箱子](product)坏了", "request_repair")
    assert not data_check.misaligned([aligned])
    assert len(data_check.misaligned([split_word])) == 1


@pytest.mark.parametrize("path", ["tests/data/food_train.yml", "tests/data/food_test.yml"])
def test_the_generality_fixture_is_clean(path):
    root = data_check.PROJECT_ROOT
    examples, _ = data_check.load(root / path)
    assert examples and not data_check.duplicates(examples)


def test_each_business_is_checked_against_its_own_pack(monkeypatch):
    monkeypatch.setenv("KEFU_BUSINESS", "property")
    office = packs.load()
    assert "dispute" in data_check.domain_intents(packs.load("shop"))
    assert "dispute" not in data_check.domain_intents(office)       # the office drops it
    assert data_check.dictionaries(office)[-1] == office.root / "businesses" / "property" / "dictionary"
    examples, _ = data_check.load(data_check.assemble.nlu_paths(office))
    assert examples and all(ex.source.startswith("businesses/property/data/") for ex in examples)
    # its FAQ topics against its own answers, not the shop's
    assert data_check.faq_answers(examples) == []
    assert any("no answer in faq_answers.yml" in p
               for p in data_check.faq_answers(examples, packs.load("shop").path("faq_answers")))


def test_a_pack_s_own_split_and_words_are_what_is_checked(tmp_path):
    split = tmp_path / "split.yml"
    split.write_text('version: "3.1"\nnlu:\n- intent: thank\n  examples: |\n    - 太谢谢你们物业了\n', encoding="utf-8")
    train = tmp_path / "train.yml"
    train.write_text('version: "3.1"\nnlu:\n- intent: thank\n  examples: |\n    - 太谢谢你们物业了\n'
                     '- intent: request_repair\n  examples: |\n    - [3号楼电梯](location)门关不上\n', encoding="utf-8")
    office = packs.load("property")
    results = data_check.check_all(train=train, test=split, pack=office)
    assert len(results["test examples leaked from training"]) == 1
    assert results["annotations off jieba token boundaries"] == []        # the office's words: 电梯门 split
    examples, _ = data_check.load(train)
    assert data_check.misaligned(examples)                                 # the shop's words alone: not


def test_the_property_generator_never_writes_an_own_split_line():
    import importlib.util

    spec = importlib.util.spec_from_file_location("property_generate", data_check.PROJECT_ROOT / "businesses"
                                                  / "property" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    held = module.held_out()
    assert "太感谢了" in held
    generated = {data_check.normalise(ex.text) for ex in data_check.load(module.TARGET)[0]}
    assert not generated & held
