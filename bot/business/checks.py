"""What makes a pack complete (``make validate``): each problem as ``file: key: what is wrong``.

* every file pack.yml names exists and parses;
* every intent the pack lists has training examples, and every example's intent is in the domain;
* every FAQ topic in the data has an answer template, and every template a topic in the data;
* every fact a template or message uses (``{section[key]}``) is in the profile;
* every message the actions this pack runs can say is in messages.yml, of the right shape, with
  only the ``{name}`` values the code gives (read from the code: bot/business/wording.py);
* the merged domain: every form's required slot is a slot with an ``utter_ask_`` question,
  every entity the data annotates is a domain entity, every action a rule or story runs
  is an action or a response of the domain.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Set

import yaml

from bot.business import wording
from bot.profile import pack as packs
from bot.training import assemble

FACT = re.compile(r"\{([a-z_]+)\[([a-z_]+)\]\}")
BUILTIN_ACTIONS = {"action_listen", "action_deactivate_loop", "action_restart", "action_back",
                   "action_default_fallback", "action_session_start", "utter_faq"}
EXAMPLE_ENTITY = re.compile(r"\]\(([a-z_]+)\)")


def _rel(pack: packs.Pack, path: Path) -> str:
    try:
        return str(path.relative_to(pack.root))
    except ValueError:
        return str(path)


def _yaml(pack: packs.Pack, path: Path, out: List[str]) -> Any:
    if not path.exists():
        out.append(f"{_rel(pack, path)}: missing")
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        out.append(f"{_rel(pack, path)}: not YAML ({str(exc).splitlines()[0]})")
        return None


def _facts_used(value: Any) -> Set[tuple]:
    if isinstance(value, str):
        return set(FACT.findall(value))
    if isinstance(value, list):
        return set().union(*[_facts_used(v) for v in value]) if value else set()
    if isinstance(value, dict):
        return set().union(*[_facts_used(v) for v in value.values()]) if value else set()
    return set()


def _examples(pack: packs.Pack, out: List[str]) -> Dict[str, List[str]]:
    by_intent: Dict[str, List[str]] = {}
    for file in assemble.nlu_paths(pack):
        body = _yaml(pack, file, out) or {}
        for block in body.get("nlu") or []:
            if "intent" in block:
                texts = [line[2:] for line in (block.get("examples") or "").splitlines() if line.startswith("- ")]
                by_intent.setdefault(block["intent"], []).extend(texts)
    return by_intent


def _rule_steps(pack: packs.Pack) -> List[tuple]:
    steps = []
    for entry in pack.data:
        for file in assemble.yaml_files(pack.root / entry):
            body = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            for flow in (body.get("rules") or []) + (body.get("stories") or []):
                for step in (flow.get("steps") or []) + (flow.get("condition") or []):
                    steps.append((file, flow.get("rule") or flow.get("story"), step))
    return steps


def problems(pack: packs.Pack) -> List[str]:
    out: List[str] = []
    manifest = _rel(pack, pack.manifest_path())
    loaded = {key: _yaml(pack, pack.path(key), out) for key in packs.FILE_KEYS if key != "rendered"}
    profile = loaded["profile"] or {}
    for key in ("faq_answers", "response_templates", "messages"):
        for section, fact in sorted(_facts_used(loaded[key] or {})):
            if not isinstance(profile.get(section), dict) or fact not in profile[section]:
                out.append(f"{pack.files[key]}: uses {{{section}[{fact}]}} but {pack.files['profile']} "
                           f"has no {section}.{fact}")
    examples = _examples(pack, out)
    for intent in pack.manifest.get("intents") or []:
        if intent == "faq":
            if not any(k.startswith("faq/") for k in examples):
                out.append(f"{manifest}: intents: faq has no faq/<topic> examples")
        elif not examples.get(intent):
            out.append(f"{manifest}: intents: {intent} has no training examples in {', '.join(pack.data)}")
    topics = {k.split("/", 1)[1] for k in examples if k.startswith("faq/")}
    answers = set((loaded["faq_answers"] or {}).keys())
    for topic in sorted(topics - answers):
        out.append(f"{pack.files['faq_answers']}: {topic}: FAQ topic in the data without an answer")
    for topic in sorted(answers - topics):
        out.append(f"{pack.files['faq_answers']}: {topic}: answer without training examples (faq/{topic})")
    messages = loaded["messages"] or {}
    try:        # the components the pack adds to config.yml's pipeline, each after a step it has
        config = yaml.safe_load((pack.root / "config.yml").read_text(encoding="utf-8")) or {}
        assemble.with_pack_components(pack, config.get("pipeline") or [])
    except (packs.PackError, OSError, yaml.YAMLError) as exc:
        out.append(str(exc))
    try:
        domain = assemble.domain_of(pack)
    except (packs.PackError, OSError, yaml.YAMLError) as exc:
        out.append(str(exc))
        return out
    forms = domain.get("forms") or {}
    runs = list(domain.get("actions") or []) + [f"validate_{f}" for f in forms]
    try:
        uses = wording.scan().uses_of(runs) + wording.service_uses()
    except (wording.WordingError, OSError, SyntaxError) as exc:
        out.append(f"actions: {exc}")
    else:
        out += wording.problems(messages if isinstance(messages, dict) else {}, uses, pack.files["messages"])
    slots = domain.get("slots") or {}
    responses = set((domain.get("responses") or {}).keys())
    templates = loaded["response_templates"] or {}
    responses |= set((templates.get("responses") or {}).keys())
    responses |= {f"utter_faq/{t}" for t in answers}
    for form, spec in sorted(forms.items()):
        for slot in (spec or {}).get("required_slots") or []:
            if slot not in slots:
                out.append(f"domain ({', '.join(pack.domain) or 'domain.yml'}): forms.{form}: {slot} is not a slot")
            if f"utter_ask_{slot}" not in responses and f"utter_ask_{form}_{slot}" not in responses:
                out.append(f"domain ({', '.join(pack.domain) or 'domain.yml'}): forms.{form}: no utter_ask_{slot}")
    entities = {assemble.entry_name(e) for e in domain.get("entities") or []}
    intents = {assemble.entry_name(i) for i in domain.get("intents") or []}
    for intent, texts in sorted(examples.items()):
        if intent.split("/")[0] not in intents:
            out.append(f"{manifest}: data: intent {intent} is not in the domain")
        for entity in sorted({e for t in texts for e in EXAMPLE_ENTITY.findall(t)} - entities):
            out.append(f"{manifest}: data: {intent} annotates {entity}, not a domain entity")
    actions = set(domain.get("actions") or []) | responses | set(forms) | BUILTIN_ACTIONS
    for file, name, step in _rule_steps(pack):
        if "action" in step and step["action"] not in actions:
            out.append(f"{_rel(pack, file)}: {name}: action {step['action']} is not in the domain")
        if "intent" in step and step["intent"] not in intents:
            out.append(f"{_rel(pack, file)}: {name}: intent {step['intent']} is not in the domain")
    return out
