"""Render every response that states a profile fact into Rasa YAML.

``bot/faq_answers.yml`` (one template per FAQ topic) and ``bot/response_templates.yml``
are filled from the business profile and written to ``data/responses/rendered.yml``,
which training reads. Run by ``make train``; ``--check`` fails when the file is stale.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict

import yaml

from bot.profile.business import PROJECT_ROOT, load_profile

FAQ_TEMPLATES = PROJECT_ROOT / "bot" / "faq_answers.yml"
RESPONSE_TEMPLATES = PROJECT_ROOT / "bot" / "response_templates.yml"
OUTPUT = PROJECT_ROOT / "data" / "responses" / "rendered.yml"
HEADER = "# Generated from bot/business_profile.yml by `python -m bot.training.responses`.\n# Do not edit: change the profile or the templates in bot/ instead.\n"


def _fill(value: Any, facts: Dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format_map(facts)
    if isinstance(value, list):
        return [_fill(item, facts) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, facts) for key, item in value.items()}
    return value


def render() -> str:
    facts = load_profile()
    responses: Dict[str, Any] = {}
    with open(RESPONSE_TEMPLATES, encoding="utf-8") as fh:
        responses.update(_fill(yaml.safe_load(fh)["responses"], facts))
    with open(FAQ_TEMPLATES, encoding="utf-8") as fh:
        for topic, template in sorted(yaml.safe_load(fh).items()):
            responses[f"utter_faq/{topic}"] = [{"text": _fill(template, facts)}]
    body = yaml.safe_dump({"version": "3.1", "responses": responses}, allow_unicode=True,
                          sort_keys=False, width=1000)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the output is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is stale: run `python -m bot.training.responses`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
        OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
