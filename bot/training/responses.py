"""Render every response that states a profile fact into Rasa YAML.

The business pack's FAQ answer templates (one per FAQ topic) and response templates are
filled from its profile and written to the pack's ``rendered`` file (the shop:
``data/responses/rendered.yml``), which training reads. Run by ``make train``; ``--check``
fails when the file is stale; ``--business`` renders another pack than ``KEFU_BUSINESS``'s.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict

import yaml

from bot.profile import pack as packs
from bot.profile.business import load_profile

_PACK = packs.load()
FAQ_TEMPLATES = _PACK.path("faq_answers")
RESPONSE_TEMPLATES = _PACK.path("response_templates")
OUTPUT = _PACK.path("rendered")
HEADER = ("# Generated from {profile} by `python -m bot.training.responses`.\n"
          "# Do not edit: change the profile or the templates of businesses/{name}/pack.yml instead.\n")


def _fill(value: Any, facts: Dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format_map(facts)
    if isinstance(value, list):
        return [_fill(item, facts) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, facts) for key, item in value.items()}
    return value


def _facts(pack: packs.Pack | None) -> Dict[str, Any]:
    if pack is None or pack.name == _PACK.name:
        return load_profile()
    return yaml.safe_load(pack.path("profile").read_text(encoding="utf-8"))


def render(pack: packs.Pack | None = None) -> str:
    """The rendered responses of ``pack`` (default: this process's business)."""
    facts = _facts(pack)
    templates = pack.path("response_templates") if pack else RESPONSE_TEMPLATES
    faq = pack.path("faq_answers") if pack else FAQ_TEMPLATES
    responses: Dict[str, Any] = {}
    with open(templates, encoding="utf-8") as fh:
        responses.update(_fill(yaml.safe_load(fh)["responses"], facts))
    with open(faq, encoding="utf-8") as fh:
        for topic, template in sorted(yaml.safe_load(fh).items()):
            responses[f"utter_faq/{topic}"] = [{"text": _fill(template, facts)}]
    body = yaml.safe_dump({"version": "3.1", "responses": responses}, allow_unicode=True,
                          sort_keys=False, width=1000)
    which = pack or _PACK
    profile = which.files["profile"]
    return HEADER.format(profile=profile, name=which.name) + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the output is stale")
    parser.add_argument("--business", help="the pack to render (default: KEFU_BUSINESS)")
    args = parser.parse_args(argv)
    pack = packs.load(args.business) if args.business and args.business != _PACK.name else None
    text = render(pack)
    output = pack.path("rendered") if pack else OUTPUT
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is stale: run `python -m bot.training.responses`", file=sys.stderr)
            return 1
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    if not output.exists() or output.read_text(encoding="utf-8") != text:
        output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
