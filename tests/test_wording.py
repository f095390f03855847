"""The actions hold no wording: every text is a key of the pack's messages.yml, and make validate
reads the keys from the code (bot/business/wording.py)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from bot.business import wording
from bot.business.checks import problems
from bot.business.cli import new
from bot.profile import pack as packs
from bot.training import assemble
from bot.training.model_cache import data_hash
from tests.test_business_packs import project_copy

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
# regexes that recognise what customers write (not what the bot says): their patterns may be Chinese
REGEX_CALLS = {"compile", "sub", "split", "search", "match", "fullmatch", "findall"}
# Chinese literals that are no wording, each named: (file, value) -> why it may stay
ALLOWED = {
    ("actions/forms.py", "其它"): "a customer's spelling of 其他, accepted as an answer to the category menu",
    ("actions/forms.py", "不"): "a negation in the customer's message (不换了，退货)",
    ("actions/forms.py", "；"): "joins more about the problem onto the stored description (never said)",
    ("actions/tickets.py", "；"): "joins a later threat onto the stored complaint description (never said)",
    ("actions/forms.py", " ，,"): "punctuation stripped from the customer's reason",
    ("actions/place_forms.py", " ，,。"): "punctuation stripped from the resident's fault",
    ("actions/listening.py", "无"): "NO_VALUE, a slot's value for 'none given' (shown as summary_not_given)",
    ("actions/listening.py", "不是"): "a product the customer says it is not (不是沙发)",
    ("actions/listening.py", "是不"): "a product the customer says it is not (是不是沙发)",
    ("actions/listening.py", "是"): "a product the customer affirms (冰箱没事 是热水器不出热水)",
    ("actions/listening.py", "不"): "a negation in the customer's message (不换了，退货)",
    ("actions/listening.py", "退"): "a return's word in the customer's message",
    ("actions/listening.py", "换"): "an exchange's word in the customer's message",
}


def _docstrings(tree: ast.AST) -> set:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            found.add(id(node.body[0].value))
    return found


def _regex_patterns(tree: ast.AST) -> set:
    """The literals that are a pattern given to re.compile/re.sub/… (its first argument)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in REGEX_CALLS \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.args:
            found |= {id(n) for n in ast.walk(node.args[0]) if isinstance(n, ast.Constant)}
    return found


def chinese_literals(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree) | _regex_patterns(tree)
    rel = str(path.relative_to(ROOT))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and CJK.search(node.value) \
                and id(node) not in skip and (rel, node.value) not in ALLOWED:
            yield f"{rel}:{node.lineno}: {node.value!r}"


def test_no_customer_facing_wording_in_the_actions():
    found = [line for path in sorted((ROOT / "actions").glob("*.py")) for line in chinese_literals(path)]
    assert found == [], ("wording belongs in the pack's messages.yml (pack.say), not in the code:\n"
                         + "\n".join(found))


def test_the_allow_list_names_only_literals_that_are_there():
    present = set()
    for path in sorted((ROOT / "actions").glob("*.py")):
        rel = str(path.relative_to(ROOT))
        present |= {(rel, n.value) for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert set(ALLOWED) <= present


def runs(name: str):
    domain = assemble.domain_of(packs.load(name))
    return list(domain.get("actions") or []) + [f"validate_{f}" for f in domain.get("forms") or {}]


def test_the_keys_are_read_from_the_code_per_business():
    scan = wording.scan()
    assert scan.actions["validate_complaint_form"] == ("actions.forms", "ValidateComplaintForm")
    assert scan.actions["action_submit_return"] == ("actions.tickets", "SubmitReturn")
    shop = {u.key for u in scan.uses_of(runs("shop"))}
    office = {u.key for u in scan.uses_of(runs("property"))}
    assert {"return_refused_window", "hint_order_id", "summary_labels", "ask_rating", "lookup_not_found"} <= shop
    assert "hint_location" not in shop                       # the shop runs no location form
    # the property office runs the shared ticket lookup, handoff, rating and off-topic actions …
    assert {"hint_location", "lookup_limited", "handoff_in_hours", "ask_rating", "out_of_scope_again"} <= office
    # … but none of the shop's order, return or product forms
    assert not {"return_refused_window", "hint_order_id", "hint_product", "summary_labels"} & office
    for name in ("shop", "property"):
        messages = yaml.safe_load(packs.load(name).path("messages").read_text(encoding="utf-8"))
        assert wording.problems(messages, scan.uses_of(runs(name)) + wording.service_uses(), name) == []


def test_what_a_waiting_customer_is_told_is_each_packs_own():
    told = {u.key: u.where for u in wording.service_uses()}
    assert {"handoff_queued", "handoff_waiting", "handoff_cancelled", "queue_position", "shift_end_callback"} <= set(told)
    assert told["queue_position"].startswith("bot/support/waiting.py:")
    messages = yaml.safe_load(packs.load("property").path("messages").read_text(encoding="utf-8"))
    for key in ("handoff_queued", "handoff_waiting", "handoff_cancelled", "shift_end_callback"):
        assert "客服" not in messages[key] and "前台" in messages[key] + messages["handoff_queued"], key


def test_the_property_office_words_the_shared_actions_as_its_desk():
    messages = yaml.safe_load(packs.load("property").path("messages").read_text(encoding="utf-8"))
    for key in ("lookup_limited", "out_of_scope_again", "handoff_in_hours", "handoff_after_misses"):
        assert "客服" not in messages[key] and "售后" not in messages[key], key
    assert [b["title"] for b in messages["buttons_out_of_scope_again"]][0] == "转前台"


def test_a_missing_key_a_wrong_shape_and_an_unknown_placeholder_are_named(tmp_path):
    copy = project_copy(tmp_path)
    path = copy / "businesses" / "shop" / "messages.yml"
    messages = yaml.safe_load(path.read_text(encoding="utf-8"))
    del messages["return_refused_window"]
    messages["buttons_out_of_scope_again"] = "转人工"
    messages["ask_rating"] = "请给工单 {ticket} 打个分"
    del messages["handoff_waiting"]                 # said by the gateway, not an action
    path.write_text(yaml.safe_dump(messages, allow_unicode=True), encoding="utf-8")
    found = problems(packs.load("shop", root=copy))
    assert any(line.startswith("businesses/shop/messages.yml: handoff_waiting: missing (the actions say it: "
                               "bot/support/handoffs.py:") for line in found), found
    found = [line for line in found if "handoff_waiting" not in line]
    assert any(line.startswith("businesses/shop/messages.yml: return_refused_window: missing (the actions "
                               "say it: actions/tickets.py:") for line in found), found
    assert any(line.startswith("businesses/shop/messages.yml: buttons_out_of_scope_again: must be a list of "
                               "buttons") for line in found), found
    assert any(line.startswith("businesses/shop/messages.yml: ask_rating: uses {ticket} but actions/service.py:")
               for line in found), found
    assert len(found) == 3


def test_a_new_pack_copies_every_key_of_its_source(tmp_path):
    copy = project_copy(tmp_path)
    for source in ("shop", "property"):
        folder = new(f"copy_{source}", source, root=copy)
        assert (folder / "messages.yml").read_text(encoding="utf-8") == \
            packs.load(source).path("messages").read_text(encoding="utf-8")
        assert problems(packs.load(f"copy_{source}", root=copy)) == []


def test_the_scan_refuses_keys_it_cannot_read(tmp_path):
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "x.py").write_text(
        "from bot.profile import pack\n\ndef f(kind):\n    return pack.say(f'hint_{kind}')\n", encoding="utf-8")
    with pytest.raises(wording.WordingError, match="actions/x.py:4: a message key must be a literal"):
        wording.scan(tmp_path)
    (tmp_path / "actions" / "x.py").write_text(
        "from bot.profile import pack\n\ndef f(v):\n    return pack.say('a', **v)\n", encoding="utf-8")
    with pytest.raises(wording.WordingError, match="by name"):
        wording.scan(tmp_path)


def test_the_scan_follows_calls_across_modules_and_inherited_names(tmp_path):
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "a.py").write_text(
        "from bot.profile import pack\n\n"
        "def helper():\n    return pack.say('helped', n=1)\n\n"
        "def unused():\n    return pack.say('never')\n\n"
        "class Base:\n    form = ''\n    def name(self):\n        return f'validate_{self.form}'\n"
        "    def run(self):\n        return pack.say('base_said' if 1 else 'other')\n", encoding="utf-8")
    (tmp_path / "actions" / "b.py").write_text(
        "from actions.a import Base\n\n"
        "class Form(Base):\n    form = 'my_form'\n    def go(self):\n"
        "        from actions.a import helper\n        return helper()\n", encoding="utf-8")
    scan = wording.scan(tmp_path)
    assert scan.actions["validate_my_form"] == ("actions.b", "Form")
    uses = scan.uses_of(["validate_my_form"])
    assert sorted(u.key for u in uses) == ["base_said", "helped", "other"]
    assert [u.values for u in uses if u.key == "helped"] == [frozenset({"n"})]


def test_rewording_a_pack_retrains_nothing(tmp_path):
    copy = project_copy(tmp_path)
    before = data_hash(copy, business="shop"), data_hash(copy, business="property")
    for name in ("shop", "property"):
        path = copy / "businesses" / name / "messages.yml"
        path.write_text(path.read_text(encoding="utf-8") + "extra: 新的说法\n", encoding="utf-8")
    assert (data_hash(copy, business="shop"), data_hash(copy, business="property")) == before
    profile = copy / "businesses" / "shop" / "profile.yml"
    profile.write_text(profile.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert data_hash(copy, business="shop") != before[0]          # the profile is a training input
