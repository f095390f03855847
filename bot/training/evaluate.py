"""``make evaluate NLU=<file>``: score the current model on any Rasa NLU YAML file.

Runs ``rasa test nlu`` and prints the four numbers that matter for this assistant:
intent accuracy, intent macro-F1, FAQ response-selection accuracy and entity F1
(regex extractor for order/phone/ticket numbers, the CRF for products).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bot.brain.components.entity_filter import PATTERN_ENTITIES, PATTERN_EXTRACTOR
from bot.profile.business import PROJECT_ROOT
from bot.brain.rasa_server import rasa_env
from bot.profile import pack as packs
from bot.training.model_cache import ensure_model

# the business pack's own split (KEFU_BUSINESS: tests/nlu for the shop, tests/nlu_property …)
DEFAULT_TEST = packs.load().evaluation_path("own_split") or PROJECT_ROOT / "tests" / "nlu"


def _report(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _entity_f1(out: Path) -> dict:
    """Each entity scored on the extractor that owns it (see bot/brain/components/entity_filter.py)."""
    scores = {}
    for name in ("RegexEntityExtractor", "CRFEntityExtractor", "DIETClassifier"):
        report = _report(out / f"{name}_report.json")
        owned = (lambda e: e in PATTERN_ENTITIES) if name == PATTERN_EXTRACTOR else \
            (lambda e: e not in PATTERN_ENTITIES)
        entities = {k: v for k, v in report.items() if isinstance(v, dict) and "f1-score" in v
                    and k not in ("micro avg", "macro avg", "weighted avg", "no_entity") and owned(k)}
        if entities:
            scores[name] = {k: round(v["f1-score"], 4) for k, v in sorted(entities.items())}
    return scores


def summarise(out: Path) -> dict:
    intents = _report(out / "intent_report.json")
    responses = _report(out / "response_selection_report.json")
    per_entity = _entity_f1(out)
    flat = [f for extractor in per_entity.values() for f in extractor.values()]
    return {
        "intent_accuracy": round(intents.get("accuracy", 0.0), 4),
        "intent_macro_f1": round(intents.get("macro avg", {}).get("f1-score", 0.0), 4),
        "faq_response_accuracy": round(responses.get("accuracy", 0.0), 4),
        "entity_f1": round(sum(flat) / len(flat), 4) if flat else None,
        "entity_f1_by_extractor": per_entity,
    }


def evaluate(nlu: Path, model: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = rasa_env()
    subprocess.run([str(Path(sys.executable).with_name("rasa")), "test", "nlu", "--nlu", str(nlu),
                    "--model", str(model), "--out", str(out), "--no-plot"],
                   cwd=PROJECT_ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return summarise(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("nlu", nargs="?", default=str(DEFAULT_TEST), help="NLU YAML file or folder")
    parser.add_argument("--model", help="model archive (default: train/reuse the current one)")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "results" / "evaluate"))
    args = parser.parse_args()
    model = Path(args.model) if args.model else ensure_model()
    scores = evaluate(Path(args.nlu), model, Path(args.out))
    print(f"test data:                 {args.nlu}")
    print(f"intent accuracy:           {scores['intent_accuracy']:.4f}")
    print(f"intent macro-F1:           {scores['intent_macro_f1']:.4f}")
    print(f"FAQ response accuracy:     {scores['faq_response_accuracy']:.4f}")
    entity = scores["entity_f1"]
    print(f"entity F1 (mean):          {entity:.4f}" if entity is not None else "entity F1: no entities")
    for extractor, values in scores["entity_f1_by_extractor"].items():
        print(f"  {extractor}: " + ", ".join(f"{k}={v:.3f}" for k, v in values.items()))
    print(json.dumps({k: v for k, v in scores.items() if k != "entity_f1_by_extractor"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
