"""Candidate vs live model: both evaluated with ``rasa test nlu`` on the same data (the
held-out split ``tests/nlu`` plus the annotated inbox items), scores, per-intent F1 changes,
newly broken / newly fixed examples (masked), the candidate's confusion-matrix PNG, and the
verdict (worse when a score drops by more than ``KEFU_COMPARE_TOLERANCE``). Each comparison
is kept as ``results/admin/compare-<model>/comparison.json``; activation reads it.

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
from bot.training.annotations import ANNOTATED
from bot.training.project import AdminError, now, project_dir, rasa_command, results_dir
from bot.settings import setting

TOLERANCE = setting("KEFU_COMPARE_TOLERANCE")
SCORES = ("intent_accuracy", "intent_macro_f1", "faq_response_accuracy")


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
    return summary


def test_data(root: Path, into: Path) -> Path:
    """The test split plus the annotated inbox items, as one folder for `rasa test nlu`."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    for path in sorted((root / "tests" / "nlu").glob("*.yml")):
        shutil.copy(path, into / path.name)
    if (root / ANNOTATED).exists():
        shutil.copy(root / ANNOTATED, into / "annotated.yml")
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
    data = test_data(root, work / "data")
    new = evaluate_model(data, Path(candidate), work / "candidate")
    old = evaluate_model(data, Path(live), work / "live")
    per_intent = {}
    for intent in sorted(set(new["per_intent"]) | set(old["per_intent"])):
        a, b = old["per_intent"].get(intent), new["per_intent"].get(intent)
        per_intent[intent] = {"live": a, "candidate": b,
                              "change": round((b or 0) - (a or 0), 4)}
    broken = [{"text": mask_customer_text(t), "expected": p["expected"],
               "live": old["predictions"].get(t, {}).get("predicted"), "candidate": p["predicted"]}
              for t, p in sorted(new["predictions"].items())
              if p["predicted"] != p["expected"]
              and old["predictions"].get(t, {}).get("predicted") == p["expected"]]
    fixed = [{"text": mask_customer_text(t), "expected": p["expected"],
              "live": old["predictions"].get(t, {}).get("predicted"), "candidate": p["predicted"]}
             for t, p in sorted(new["predictions"].items())
             if p["predicted"] == p["expected"]
             and old["predictions"].get(t, {}).get("predicted") != p["expected"]]
    confusion_png(new["predictions"], work / "confusion.png")
    worse = [s for s in SCORES if new[s] < old[s] - TOLERANCE]
    result = {
        "candidate": str(candidate), "live": str(live), "at": now().isoformat(),
        "examples": len(new["predictions"]), "tolerance": TOLERANCE,
        "scores": {"candidate": {s: new[s] for s in SCORES}, "live": {s: old[s] for s in SCORES}},
        "per_intent": per_intent, "newly_broken": broken, "newly_fixed": fixed,
        "worse": worse, "verdict": "worse" if worse else "not_worse",
        "confusion_png": str(work / "confusion.png"),
    }
    (work / "comparison.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    return result


def comparison_for(candidate: str | Path) -> Optional[Dict[str, Any]]:
    key = Path(candidate).name.replace(".tar.gz", "")
    path = results_dir() / f"compare-{key}" / "comparison.json"
    return json.loads(path.read_text()) if path.exists() else None
