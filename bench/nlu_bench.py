"""``make nlu-bench [TRAIN=… TEST=…] [FOLDS=k]``: the project's NLU against two baselines.

On one Rasa NLU YAML train set (file or folder) and one test set, trains and scores in
one run:

* ``stock``   – Rasa's stock Chinese recipe (``bench/nlu_bench_stock.yml``: JiebaTokenizer,
  CountVectors word + char_wb 1–4, DIETClassifier 100 epochs, ResponseSelector 100 epochs);
* ``tfidf``   – character 1–3-gram TF-IDF + logistic regression (scikit-learn);
* ``project`` – the project's ``config.yml`` (its NLU pipeline).

and prints intent accuracy, intent macro-F1, FAQ response accuracy (where the data has
retrieval intents), training seconds (wall clock of ``rasa train nlu`` in a subprocess,
so Rasa's ~10 s start-up is included; in-process fit for tf-idf) and median inference
milliseconds per message (one message at a time, as a live assistant parses them), plus
the project's macro-F1 ratio to the best other system. Intents are scored as
``rasa test nlu`` does: retrieval intents collapse to their base intent (``faq``), and a
FallbackClassifier prediction is undone so the intent it shadowed is scored.

With ``--folds k`` (``FOLDS=k``) each system is also cross-validated: k stratified folds
of the train set, mean ± standard deviation of macro-F1.

Artefacts, under ``results/nlu_bench/<train-name>/``: ``report.md`` (the table),
``per_intent_<system>.md`` (precision/recall/F1/support per intent),
``confusion_<system>.png`` and ``scores.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from bot.profile.business import PROJECT_ROOT
from bot.brain.rasa_server import rasa_env

STOCK_CONFIG = PROJECT_ROOT / "bot" / "nlu_bench_stock.yml"
PROJECT_CONFIG = PROJECT_ROOT / "config.yml"
DEFAULT_TRAIN = PROJECT_ROOT / "data" / "nlu"
DEFAULT_TEST = PROJECT_ROOT / "tests" / "nlu"
RESPONSES = PROJECT_ROOT / "data" / "responses" / "rendered.yml"
SYSTEMS = ("stock", "tfidf", "project")


@dataclass
class Example:
    text: str
    intent: str                  # base intent, e.g. "faq"
    key: Optional[str] = None    # full retrieval key, e.g. "faq/return_policy"

    @property
    def label(self) -> str:
        return self.key or self.intent


@dataclass
class Prediction:
    intent: str
    key: Optional[str] = None


@dataclass
class Score:
    system: str
    accuracy: float
    macro_f1: float
    response_accuracy: Optional[float]
    train_s: float
    infer_ms: float
    per_intent: Dict[str, Dict[str, float]] = field(default_factory=dict)
    cv_f1: Optional[Tuple[float, float]] = None


# ---------------------------------------------------------------- data

def load_examples(path: Path) -> List[Example]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [Example(m.get("text"), m.get("intent"), m.get("intent_response_key"))
            for m in data.intent_examples]


def write_nlu(examples: Sequence[Example], target: Path) -> None:
    """Examples as Rasa NLU YAML (plain text: entity annotations are not needed here)."""
    import yaml

    by_label: Dict[str, List[str]] = {}
    for ex in examples:
        by_label.setdefault(ex.label, []).append(ex.text)
    body = [{"intent": label, "examples": "".join(f"- {t}\n" for t in texts)}
            for label, texts in by_label.items()]
    target.write_text(yaml.safe_dump({"version": "3.1", "nlu": body}, allow_unicode=True,
                                     sort_keys=False), encoding="utf-8")


def stage_training_data(train: Path, work: Path, examples: Optional[Sequence[Example]] = None) -> Path:
    """A folder ``rasa train nlu`` can read: the train data (as given, or ``examples``),
    plus the project's rendered FAQ responses when the data has retrieval intents and
    carries no responses of its own."""
    stage = work / "nlu"
    stage.mkdir(parents=True)
    if examples is not None:
        write_nlu(examples, stage / "train.yml")
    elif train.is_dir():
        for file in sorted(train.rglob("*.yml")) + sorted(train.rglob("*.yaml")):
            shutil.copy(file, stage / f"{len(list(stage.iterdir())):02d}_{file.name}")
    else:
        shutil.copy(train, stage / train.name)
    texts = "".join(p.read_text(encoding="utf-8") for p in stage.iterdir())
    exs = examples if examples is not None else load_examples(train)
    if any(e.key for e in exs) and "responses:" not in texts and RESPONSES.exists():
        shutil.copy(RESPONSES, stage / "zz_responses.yml")
    return stage


# ---------------------------------------------------------------- systems

def train_rasa(config: Path, stage: Path, out: Path) -> Tuple[Path, float]:
    env = rasa_env()
    cmd = [str(Path(sys.executable).with_name("rasa")), "train", "nlu", "--config", str(config),
           "--nlu", str(stage), "--out", str(out), "--fixed-model-name", "nlu"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:])
        raise RuntimeError(f"rasa train nlu failed for {config}")
    return out / "nlu.tar.gz", took


def predict_rasa(model: Path, tests: Sequence[Example]) -> Tuple[List[Prediction], List[float]]:
    from rasa.core.agent import Agent
    from rasa.nlu.classifiers import fallback_classifier
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)      # no per-message debug lines in the timings
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(agent.parse_message("你好"))       # warm-up
        predictions, times = [], []
        for ex in tests:
            started = time.perf_counter()
            result = loop.run_until_complete(agent.parse_message(ex.text))
            times.append((time.perf_counter() - started) * 1000)
            if fallback_classifier.is_fallback_classifier_prediction(result):
                result = fallback_classifier.undo_fallback_prediction(result)
            intent = (result.get("intent") or {}).get("name") or "None"
            key = None
            selectors = {k: v for k, v in (result.get("response_selector") or {}).items()
                         if k != "all_retrieval_intents"}
            if selectors:
                selector = selectors.get(ex.intent) or next(iter(selectors.values()))
                key = (selector.get("response") or {}).get("intent_response_key")
            predictions.append(Prediction(intent, key))
        return predictions, times
    finally:
        loop.close()


def run_rasa(config: Path, train: Path, tests: Sequence[Example], work: Path,
             examples: Optional[Sequence[Example]] = None):
    stage = stage_training_data(train, work, examples)
    model, took = train_rasa(config, stage, work / "model")
    predictions, times = predict_rasa(model, tests)
    return predictions, times, took


def run_tfidf(train: Sequence[Example], tests: Sequence[Example]):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from bot.brain.components.normaliser import normalise

    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True,
                        preprocessor=normalise),
        LogisticRegression(C=10.0, max_iter=3000))
    started = time.perf_counter()
    model.fit([e.text for e in train], [e.label for e in train])
    took = time.perf_counter() - started
    predictions, times = [], []
    for ex in tests:
        started = time.perf_counter()
        label = model.predict([ex.text])[0]
        times.append((time.perf_counter() - started) * 1000)
        intent, _, rest = label.partition("/")
        predictions.append(Prediction(intent, label if rest else None))
    return predictions, times, took


# ---------------------------------------------------------------- scoring

def score(system: str, tests: Sequence[Example], predictions: Sequence[Prediction],
          times: Sequence[float], train_s: float) -> Score:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    truth = [e.intent for e in tests]
    guess = [p.intent for p in predictions]
    labels = sorted(set(truth))
    keyed = [(e, p) for e, p in zip(tests, predictions) if e.key]
    response = (sum(e.key == p.key for e, p in keyed) / len(keyed)) if keyed else None
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, guess, labels=labels, zero_division=0)
    per_intent = {label: {"precision": float(precision[i]), "recall": float(recall[i]),
                          "f1": float(f1[i]), "support": int(support[i])}
                  for i, label in enumerate(labels)}
    return Score(system, accuracy_score(truth, guess),
                 f1_score(truth, guess, labels=labels, average="macro", zero_division=0),
                 response, train_s, statistics.median(times) if times else 0.0, per_intent)


def run_system(system: str, train_path: Path, train: Sequence[Example],
               tests: Sequence[Example], work: Path, configs: Dict[str, Path],
               examples: Optional[Sequence[Example]] = None):
    if system == "tfidf":
        return run_tfidf(examples if examples is not None else train, tests)
    return run_rasa(configs[system], train_path, tests, work, examples)


def cross_validate(system: str, train_path: Path, train: Sequence[Example], folds: int,
                   work: Path, configs: Dict[str, Path]) -> Tuple[float, float]:
    from sklearn.model_selection import StratifiedKFold

    labels = [e.label for e in train]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=7)
    scores = []
    for i, (fit_idx, held_idx) in enumerate(splitter.split(labels, labels)):
        fit = [train[j] for j in fit_idx]
        held = [train[j] for j in held_idx]
        predictions, times, took = run_system(system, train_path, train, held,
                                              work / f"cv{i}", configs, examples=fit)
        scores.append(score(system, held, predictions, times, took).macro_f1)
    return statistics.mean(scores), (statistics.stdev(scores) if len(scores) > 1 else 0.0)


# ---------------------------------------------------------------- report

def table(scores: Sequence[Score]) -> str:
    best_other = max((s.macro_f1 for s in scores if s.system in ("stock", "tfidf")), default=None)
    has_response = any(s.response_accuracy is not None for s in scores)
    has_cv = any(s.cv_f1 for s in scores)
    head = ["system", "intent acc", "macro-F1"] + (["FAQ resp. acc"] if has_response else []) \
        + (["CV macro-F1"] if has_cv else []) + ["train s", "infer ms/msg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in scores:
        row = [s.system, f"{s.accuracy:.3f}", f"{s.macro_f1:.3f}"]
        if has_response:
            row.append("–" if s.response_accuracy is None else f"{s.response_accuracy:.3f}")
        if has_cv:
            row.append(f"{s.cv_f1[0]:.3f} ± {s.cv_f1[1]:.3f}" if s.cv_f1 else "–")
        row += [f"{s.train_s:.1f}", f"{s.infer_ms:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    project = next((s for s in scores if s.system == "project"), None)
    if project and best_other:
        lines.append("")
        lines.append(f"project macro-F1 / best other = {project.macro_f1:.3f} / "
                     f"{best_other:.3f} = **{project.macro_f1 / best_other:.3f}**")
    return "\n".join(lines)


def per_intent_table(s: Score) -> str:
    lines = [f"# per-intent scores: {s.system}", "",
             "| intent | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, v in s.per_intent.items():
        lines.append(f"| {label} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1']:.2f} "
                     f"| {v['support']} |")
    return "\n".join(lines) + "\n"


def confusion_png(system: str, tests: Sequence[Example], predictions: Sequence[Prediction],
                  target: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    truth = [e.intent for e in tests]
    guess = [p.intent for p in predictions]
    labels = sorted(set(truth) | set(guess))
    matrix = confusion_matrix(truth, guess, labels=labels)
    size = max(6, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("true intent")
    ax.set_title(f"{system}: intent confusion ({len(tests)} test messages)")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default=str(DEFAULT_TRAIN), help="NLU YAML train file or folder")
    parser.add_argument("--test", default=str(DEFAULT_TEST), help="NLU YAML test file or folder")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of "
                        + ",".join(SYSTEMS))
    parser.add_argument("--config", default=str(PROJECT_CONFIG), help="the project config to bench")
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=CONFIG",
                        help="also bench another Rasa config (repeatable), e.g. trial=/tmp/x.yml")
    parser.add_argument("--folds", type=int, default=0, help="k-fold cross-validation (0: off)")
    parser.add_argument("--out", help="results folder (default: results/nlu_bench/<train name>)")
    args = parser.parse_args(argv)

    logging.disable(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    train_path, test_path = Path(args.train).resolve(), Path(args.test).resolve()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    configs = {"stock": STOCK_CONFIG, "project": Path(args.config)}
    for candidate in args.candidate:
        name, _, config = candidate.partition("=")
        configs[name] = Path(config).resolve()
        systems.append(name)
    unknown = set(systems) - set(SYSTEMS) - set(configs)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    name = train_path.stem if train_path.is_file() else train_path.name
    out = Path(args.out) if args.out else PROJECT_ROOT / "results" / "nlu_bench" / name
    out.mkdir(parents=True, exist_ok=True)

    train, tests = load_examples(train_path), load_examples(test_path)
    print(f"train: {train_path} ({len(train)} examples), test: {test_path} ({len(tests)})",
          flush=True)
    scores: List[Score] = []
    with tempfile.TemporaryDirectory(prefix="nlu-bench-") as tmp:
        for system in systems:
            print(f"[{system}] training and scoring …", flush=True)
            predictions, times, took = run_system(system, train_path, train, tests,
                                                  Path(tmp) / system, configs)
            result = score(system, tests, predictions, times, took)
            if args.folds > 1:
                print(f"[{system}] {args.folds}-fold cross-validation …", flush=True)
                result.cv_f1 = cross_validate(system, train_path, train, args.folds,
                                              Path(tmp) / f"{system}-cv", configs)
            scores.append(result)
            (out / f"per_intent_{system}.md").write_text(per_intent_table(result), encoding="utf-8")
            confusion_png(system, tests, predictions, out / f"confusion_{system}.png")
            print(f"[{system}] macro-F1 {result.macro_f1:.3f}, accuracy {result.accuracy:.3f}",
                  flush=True)

    report = table(scores)
    header = (f"train `{os.path.relpath(train_path, PROJECT_ROOT)}` ({len(train)} examples), "
              f"test `{os.path.relpath(test_path, PROJECT_ROOT)}` ({len(tests)} examples)")
    (out / "report.md").write_text(f"# NLU benchmark\n\n{header}\n\n{report}\n", encoding="utf-8")
    (out / "scores.json").write_text(json.dumps(
        [{k: v for k, v in vars(s).items()} for s in scores], indent=2, ensure_ascii=False))
    print()
    print(header)
    print(report)
    print(f"\nartefacts: {os.path.relpath(out, PROJECT_ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
