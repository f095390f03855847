"""Candidate vs live model, scored where it is honest: both evaluated with one ``rasa test
nlu`` run each over three sets kept apart — the business's held-out split (``tests/nlu`` for
the shop), its frozen blind report set (written by people who never saw the training data, never
trained on) and the annotated inbox items (which the candidate was trained on, so its "newly
fixed" there is expected and proves little). Scores per set, per-intent F1 changes, newly broken
/ newly fixed examples (masked, each with its set), the candidate's confusion-matrix PNG, and
the verdict: worse when a score on the held-out split or the blind set drops by more than
``KEFU_COMPARE_TOLERANCE`` (the annotated items never decide it). Activation refuses a worse
model unless an admin gives a reason (audited, bot/training/activation.py). Each comparison is
kept as ``results/admin/compare-<model>/comparison.json``.

Runs in the gateway (a background thread started by the 训练 page) and in the CLI
(``python -m bot.training compare``); Rasa runs as a child process.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional

from bot.brain.rasa_server import rasa_env
from bot.profile.privacy import mask_customer_text, mask_text
from bot.profile import pack as packs
from bot.training.annotations import annotated_path
from bot.training.project import AdminError, now, project_dir, rasa_command, results_dir
from bot.settings import setting

TOLERANCE = setting("KEFU_COMPARE_TOLERANCE")
SCORES = ("intent_accuracy", "intent_macro_f1", "faq_response_accuracy")
SETS = ("own_split", "blind_report", "annotated")   # the verdict reads the first two
VERDICT_SETS = SETS[:2]


def evaluate_model(nlu: Path, model: Path, out: Path) -> Dict[str, Any]:
    """``rasa test nlu`` of one model: the summary scores, per-intent F1, every prediction."""
    from bot.training.evaluate import summarise

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    proc = subprocess.run([rasa_command(), "test", "nlu", "--nlu", str(nlu), "--model", str(model),
                           "--out", str(out), "--no-plot", "--successes"],
                          cwd=project_dir(), env=rasa_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise AdminError("rasa test nlu failed: " + mask_text(proc.stdout.decode(errors="replace")[-1500:]))
    summary = summarise(out)
    report = json.loads((out / "intent_report.json").read_text())
    summary["per_intent"] = {k: round(v["f1-score"], 4) for k, v in report.items()
                             if isinstance(v, dict) and "f1-score" in v
                             and k not in ("micro avg", "macro avg", "weighted avg")}
    predictions = {}
    for name in ("intent_successes.json", "intent_errors.json"):
        path = out / name
        for row in json.loads(path.read_text()) if path.exists() else []:
            predictions[row["text"]] = {"expected": row["intent"],
                                        "predicted": (row.get("intent_prediction") or {}).get("name")}
    summary["predictions"] = predictions
    faq = {}
    for name in ("response_selection_successes.json", "response_selection_errors.json"):
        path = out / name
        for row in json.loads(path.read_text()) if path.exists() else []:
            faq[row["text"]] = (row.get("intent_response_key_target"),
                                (row.get("intent_response_key_prediction") or {}).get("name"))
    summary["faq_predictions"] = faq
    return summary


def texts_of(folder: Path) -> set:
    """The texts of an NLU folder's examples as ``rasa test`` reports them: after the
    pipeline's normaliser (traditional → simplified, widths, case), which rewrites the text."""
    from rasa.shared.nlu.training_data.loading import load_data

    from bot.brain.components.normaliser import normalise

    return {normalise(m.get("text")) for m in load_data(str(folder)).intent_examples}


def set_scores(summary: Dict[str, Any], texts: set) -> Dict[str, Any]:
    """Intent accuracy, macro-F1 and FAQ topic accuracy of one model on one set's texts."""
    rows = [p for t, p in summary["predictions"].items() if t in texts]
    labels = {p["expected"] for p in rows} | {p["predicted"] for p in rows if p["predicted"]}
    f1s = []
    for label in labels:
        tp = sum(p["expected"] == label and p["predicted"] == label for p in rows)
        fp = sum(p["expected"] != label and p["predicted"] == label for p in rows)
        fn = sum(p["expected"] == label and p["predicted"] != label for p in rows)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    faq = [v for t, v in summary["faq_predictions"].items() if t in texts]
    return {"examples": len(rows),
            "intent_accuracy": round(sum(p["expected"] == p["predicted"] for p in rows) / len(rows), 4) if rows else None,
            "intent_macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
            "faq_response_accuracy": round(sum(a == b for a, b in faq) / len(faq), 4) if faq else None}


def test_sets(root: Path) -> Dict[str, Path]:
    """The business's held-out split, blind report set and annotations (those that exist)."""
    pack = packs.load(root=root)
    found = {}
    own = pack.evaluation.get("own_split")
    blind = pack.evaluation.get("blind")
    for name, path in (("own_split", root / own if own else None),
                       ("blind_report", root / blind / "report" if blind else None),
                       ("annotated", root / annotated_path(root))):
        if path is not None and path.exists():
            found[name] = path
    return found


def test_data(sets: Dict[str, Path], into: Path) -> Path:
    """The sets' files in one folder, for one `rasa test nlu` run per model."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    for name, path in sets.items():
        for n, file in enumerate(sorted(path.glob("*.yml")) if path.is_dir() else [path]):
            shutil.copy(file, into / f"{name}_{n:02d}_{file.name}")
    return into


def confusion_png(predictions: Dict[str, Dict[str, str]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({p["expected"] for p in predictions.values()} |
                    {p["predicted"] or "None" for p in predictions.values()})
    index = {label: i for i, label in enumerate(labels)}
    grid = [[0] * len(labels) for _ in labels]
    for p in predictions.values():
        grid[index[p["expected"]]][index[p["predicted"] or "None"]] += 1
    size = max(6, len(labels) * 0.32)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i, row in enumerate(grid):
        for j, count in enumerate(row):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=6,
                        color="white" if count > 5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("expected")
    ax.set_title("candidate: confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def compare(candidate: Path, live: Path) -> Dict[str, Any]:
    root = project_dir()
    key = Path(candidate).name.replace(".tar.gz", "")
    work = results_dir() / f"compare-{key}"
    sets = test_sets(root)
    if not any(name in sets for name in VERDICT_SETS):
        raise AdminError("no held-out or blind evaluation set for this business (pack.yml evaluation:)")
    data = test_data(sets, work / "data")
    members = {name: texts_of(path) for name, path in sets.items()}
    new = evaluate_model(data, Path(candidate), work / "candidate")
    old = evaluate_model(data, Path(live), work / "live")
    by_set = {name: {"candidate": set_scores(new, texts), "live": set_scores(old, texts)}
              for name, texts in members.items()}
    judged = set().union(*(members[n] for n in VERDICT_SETS if n in members))
    scores = {"candidate": set_scores(new, judged), "live": set_scores(old, judged)}
    per_intent = {}
    for intent in sorted(set(new["per_intent"]) | set(old["per_intent"])):
        a, b = old["per_intent"].get(intent), new["per_intent"].get(intent)
        per_intent[intent] = {"live": a, "candidate": b,
                              "change": round((b or 0) - (a or 0), 4)}

    def where(text: str) -> str:
        return next((name for name in SETS if text in members.get(name, ())), "")

    def row(text: str, p: Dict[str, str]) -> Dict[str, Any]:
        return {"text": mask_customer_text(text), "set": where(text), "expected": p["expected"],
                "live": old["predictions"].get(text, {}).get("predicted"), "candidate": p["predicted"]}
    broken = [row(t, p) for t, p in sorted(new["predictions"].items())
              if p["predicted"] != p["expected"]
              and old["predictions"].get(t, {}).get("predicted") == p["expected"]]
    fixed = [row(t, p) for t, p in sorted(new["predictions"].items())
             if p["predicted"] == p["expected"]
             and old["predictions"].get(t, {}).get("predicted") != p["expected"]]
    confusion_png(new["predictions"], work / "confusion.png")
    worse = sorted({s for name in VERDICT_SETS if name in by_set for s in SCORES
                    if by_set[name]["candidate"][s] is not None and by_set[name]["live"][s] is not None
                    and by_set[name]["candidate"][s] < by_set[name]["live"][s] - TOLERANCE})
    worse_on = [name for name in VERDICT_SETS if name in by_set and any(
        by_set[name]["candidate"][s] is not None and by_set[name]["live"][s] is not None
        and by_set[name]["candidate"][s] < by_set[name]["live"][s] - TOLERANCE for s in SCORES)]
    result = {
        "candidate": str(candidate), "live": str(live), "at": now().isoformat(),
        "examples": len(new["predictions"]), "tolerance": TOLERANCE,
        "scores": {side: {s: v[s] for s in SCORES} for side, v in scores.items()},
        "by_set": by_set, "verdict_sets": [n for n in VERDICT_SETS if n in by_set],
        "per_intent": per_intent, "newly_broken": broken, "newly_fixed": fixed,
        "worse": worse, "worse_on": worse_on, "verdict": "worse" if worse else "not_worse",
        "confusion_png": str(work / "confusion.png"),
    }
    (work / "comparison.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    return result


def comparison_for(candidate: str | Path) -> Optional[Dict[str, Any]]:
    key = Path(candidate).name.replace(".tar.gz", "")
    path = results_dir() / f"compare-{key}" / "comparison.json"
    return json.loads(path.read_text()) if path.exists() else None
