"""``make nlu-bench [TRAIN=… TEST=…] [FOLDS=k]``: the project's NLU against two baselines.

On one Rasa NLU YAML train set (file or folder) and one or more test sets (by default
the project's own split ``tests/nlu``, the blind dev sets ``tests/nlu_blind/dev``,
``tests/nlu_blind/dev2`` and ``tests/nlu_blind/dev3`` and the frozen blind report set ``tests/nlu_blind/report``: scored,
never read for tuning; those of the pack that exist), trains
each system once and scores it on every test set:

* ``stock``   – Rasa's stock Chinese recipe (``bench/nlu_bench_stock.yml``: JiebaTokenizer,
  CountVectors word + char_wb 1–4, DIETClassifier 100 epochs, ResponseSelector 100 epochs);
* ``tfidf``   – character 1–3-gram TF-IDF + logistic regression (scikit-learn);
* ``project`` – the project's ``config.yml`` (its NLU pipeline).

and prints intent accuracy, intent macro-F1, FAQ response accuracy (where the data has
retrieval intents), training seconds (wall clock of ``rasa train nlu`` in a subprocess, as
the project trains: ``python -m bot.brain.rasa_server train nlu``, every node trained, no
Rasa node cache; Rasa's ~10 s start-up is included; in-process fit for tf-idf) and median inference
milliseconds per message (one message at a time, as a live assistant parses them), plus
the project's macro-F1 ratio to the best other system, and per-entity F1 (Rasa systems:
an entity counts when type and value match after normalisation, spaces and dashes
removed and the train data's synonyms applied, so 电冰箱 = 冰箱 and 138 1234 5678 =
13812345678). Intents are scored as
``rasa test nlu`` does: retrieval intents collapse to their base intent (``faq``), and a
FallbackClassifier prediction is undone so the intent it shadowed is scored.

With ``--folds k`` (``FOLDS=k``) each system is also cross-validated: k stratified folds
of the train set, mean ± standard deviation of macro-F1.

Artefacts, under ``results/nlu_bench/<train-name>/``: ``report.md`` (the table),
``per_intent_<system>.md`` (precision/recall/F1/support per intent),
``confusion_<system>.png`` and ``scores.json`` (with several test sets, one sub-folder per
test set). ``--systems tfidf,project`` (``SYSTEMS=…``) skips the minutes-long stock DIET.
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

from bot.profile import pack as packs
from bot.profile.business import PROJECT_ROOT
from bot.training import assemble
from bot.brain.rasa_server import rasa_env, train_command

# The business pack (KEFU_BUSINESS) says what its NLU trains on and where its own split and
# blind sets are; its config is config.yml with the pack's jieba words (bot/training/assemble.py).
PACK = packs.load()
STOCK_CONFIG = PROJECT_ROOT / "bench" / "nlu_bench_stock.yml"
PROJECT_CONFIG = PROJECT_ROOT / assemble.assemble(PACK).config
DEFAULT_TRAIN = PACK.evaluation_path("train") or PROJECT_ROOT / "data" / "nlu"
DEFAULT_TEST = PACK.evaluation_path("own_split") or PROJECT_ROOT / "tests" / "nlu"
BLIND = PACK.evaluation_path("blind") or PROJECT_ROOT / "tests" / "nlu_blind"
DEFAULT_TESTS = {"own split": DEFAULT_TEST, "blind dev": BLIND / "dev", "blind dev2": BLIND / "dev2",
                 "blind dev3": BLIND / "dev3", "blind report": BLIND / "report"}
RESPONSES = PACK.path("rendered")
SYSTEMS = ("stock", "tfidf", "project")


@dataclass
class Example:
    text: str
    intent: str                  # base intent, e.g. "faq"
    key: Optional[str] = None    # full retrieval key, e.g. "faq/return_policy"
    entities: Tuple[Tuple[str, str], ...] = ()   # (type, value as written)

    @property
    def label(self) -> str:
        return self.key or self.intent


@dataclass
class Prediction:
    intent: str
    key: Optional[str] = None
    entities: Optional[Tuple[Tuple[str, str], ...]] = None    # None: system has no entities


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
    entity_f1: Dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- data

def load_training_data(path: Path):
    """Rasa's reading of an NLU file, or of a folder's YAML files (a README beside them is
    not data: Rasa's own folder reader refuses any file it cannot parse)."""
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData

    if not path.is_dir():
        return load_data(str(path))
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml"))
    return TrainingData().merge(*[load_data(str(f)) for f in files])


def load_examples(path: Path) -> List[Example]:
    data = load_training_data(path)
    return [Example(m.get("text"), m.get("intent"), m.get("intent_response_key"),
                    tuple((e["entity"], m.get("text")[e["start"]:e["end"]])
                          for e in m.get("entities") or []))
            for m in data.intent_examples]


def load_synonyms(path: Path) -> Dict[str, str]:
    return {canonical_value(k): canonical_value(v)
            for k, v in load_training_data(path).entity_synonyms.items()}


def canonical_value(value) -> str:
    from bot.brain.components.normaliser import normalise

    return "".join(ch for ch in normalise(str(value)) if not ch.isspace() and ch != "-")


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
    cmd = [*train_command(), "nlu", "--config", str(config),
           "--nlu", str(stage), "--out", str(out), "--fixed-model-name", "nlu"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:])
        raise RuntimeError(f"rasa train nlu failed for {config}")
    return out / "nlu.tar.gz", took


def predict_rasa(agent, tests: Sequence[Example]) -> Tuple[List[Prediction], List[float]]:
    from rasa.nlu.classifiers import fallback_classifier

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
            entities = tuple((e.get("entity"), str(e.get("value")))
                             for e in result.get("entities") or [])
            predictions.append(Prediction(intent, key, entities))
        return predictions, times
    finally:
        loop.close()


def run_rasa(config: Path, train: Path, test_sets: Sequence[Sequence[Example]], work: Path,
             examples: Optional[Sequence[Example]] = None):
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    stage = stage_training_data(train, work, examples)
    model, took = train_rasa(config, stage, work / "model")
    configure_structlog(logging.WARNING)      # no per-message debug lines in the timings
    agent = Agent.load(str(model))
    return [predict_rasa(agent, tests) for tests in test_sets], took


def run_tfidf(train: Sequence[Example], test_sets: Sequence[Sequence[Example]]):
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
    results = []
    for tests in test_sets:
        predictions, times = [], []
        for ex in tests:
            started = time.perf_counter()
            label = model.predict([ex.text])[0]
            times.append((time.perf_counter() - started) * 1000)
            intent, _, rest = label.partition("/")
            predictions.append(Prediction(intent, label if rest else None))
        results.append((predictions, times))
    return results, took


# ---------------------------------------------------------------- scoring

def entity_f1(tests: Sequence[Example], predictions: Sequence[Prediction],
              synonyms: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """Per entity type: F1 of (type, canonical value) pairs, counted per message."""
    from collections import Counter

    synonyms = synonyms or {}

    def canon(pairs):
        return Counter((t, synonyms.get(canonical_value(v), canonical_value(v))) for t, v in pairs)

    tp: Counter = Counter()
    fp: Counter = Counter()
    fn: Counter = Counter()
    for ex, p in zip(tests, predictions):
        if p.entities is None:
            return {}
        gold, guess = canon(ex.entities), canon(p.entities)
        for (t, _), n in (gold & guess).items():
            tp[t] += n
        for (t, _), n in (guess - gold).items():
            fp[t] += n
        for (t, _), n in (gold - guess).items():
            fn[t] += n
    return {t: (2 * tp[t] / (2 * tp[t] + fp[t] + fn[t])) for t in sorted(set(tp) | set(fn))}


def score(system: str, tests: Sequence[Example], predictions: Sequence[Prediction],
          times: Sequence[float], train_s: float,
          synonyms: Optional[Dict[str, str]] = None) -> Score:
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
                 response, train_s, statistics.median(times) if times else 0.0, per_intent,
                 entity_f1=entity_f1(tests, predictions, synonyms))


def run_system(system: str, train_path: Path, train: Sequence[Example],
               test_sets: Sequence[Sequence[Example]], work: Path, configs: Dict[str, Path],
               examples: Optional[Sequence[Example]] = None):
    """[(predictions, times) per test set], train seconds."""
    if system == "tfidf":
        return run_tfidf(examples if examples is not None else train, test_sets)
    return run_rasa(configs[system], train_path, test_sets, work, examples)


def cross_validate(system: str, train_path: Path, train: Sequence[Example], folds: int,
                   work: Path, configs: Dict[str, Path]) -> Tuple[float, float]:
    from sklearn.model_selection import StratifiedKFold

    labels = [e.label for e in train]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=7)
    scores = []
    for i, (fit_idx, held_idx) in enumerate(splitter.split(labels, labels)):
        fit = [train[j] for j in fit_idx]
        held = [train[j] for j in held_idx]
        [(predictions, times)], took = run_system(system, train_path, train, [held],
                                                  work / f"cv{i}", configs, examples=fit)
        scores.append(score(system, held, predictions, times, took).macro_f1)
    return statistics.mean(scores), (statistics.stdev(scores) if len(scores) > 1 else 0.0)


# ---------------------------------------------------------------- report

def table(scores: Sequence[Score]) -> str:
    best_other = max((s.macro_f1 for s in scores if s.system in ("stock", "tfidf")), default=None)
    has_response = any(s.response_accuracy is not None for s in scores)
    has_cv = any(s.cv_f1 for s in scores)
    entity_types = sorted({t for s in scores for t in s.entity_f1})
    head = ["system", "intent acc", "macro-F1"] + (["FAQ resp. acc"] if has_response else []) \
        + [f"{t} F1" for t in entity_types] \
        + (["CV macro-F1"] if has_cv else []) + ["train s", "infer ms/msg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in scores:
        row = [s.system, f"{s.accuracy:.3f}", f"{s.macro_f1:.3f}"]
        if has_response:
            row.append("–" if s.response_accuracy is None else f"{s.response_accuracy:.3f}")
        row += [f"{s.entity_f1[t]:.3f}" if t in s.entity_f1 else "–" for t in entity_types]
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


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")


def parse_tests(given: Sequence[str]) -> Dict[str, Path]:
    """``[NAME=]PATH`` arguments (or the default sets that exist) as name → path."""
    if not given:
        return {n: p for n, p in DEFAULT_TESTS.items() if p.exists()}
    tests: Dict[str, Path] = {}
    for item in given:
        name, sep, path = item.partition("=")
        path = Path(path if sep else item).resolve()
        tests[name if sep else (path.stem if path.is_file() else path.name)] = path
    return tests


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default=str(DEFAULT_TRAIN), help="NLU YAML train file or folder")
    parser.add_argument("--test", action="append", default=[], metavar="[NAME=]PATH",
                        help="NLU YAML test file or folder (repeatable; default: own split, "
                             "blind dev, blind dev2, blind dev3 and blind report, those that exist)")
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
    train_path = Path(args.train).resolve()
    test_paths = parse_tests(args.test)
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

    train = load_examples(train_path)
    synonyms = load_synonyms(train_path)
    sets = {n: load_examples(p) for n, p in test_paths.items()}
    print(f"business: {PACK.name} ({PACK.title}); train: {train_path} ({len(train)} examples), tests: "
          + ", ".join(f"{n} {p} ({len(sets[n])})" for n, p in test_paths.items()), flush=True)
    scores: Dict[str, List[Score]] = {n: [] for n in sets}
    folders = {n: (out if len(sets) == 1 else out / slug(n)) for n in sets}
    with tempfile.TemporaryDirectory(prefix="nlu-bench-") as tmp:
        for system in systems:
            print(f"[{system}] training and scoring …", flush=True)
            results, took = run_system(system, train_path, train, list(sets.values()),
                                       Path(tmp) / system, configs)
            cv = None
            if args.folds > 1:
                print(f"[{system}] {args.folds}-fold cross-validation …", flush=True)
                cv = cross_validate(system, train_path, train, args.folds,
                                    Path(tmp) / f"{system}-cv", configs)
            for (name, tests), (predictions, times) in zip(sets.items(), results):
                result = score(system, tests, predictions, times, took, synonyms)
                result.cv_f1 = cv
                scores[name].append(result)
                folder = folders[name]
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"per_intent_{system}.md").write_text(per_intent_table(result),
                                                               encoding="utf-8")
                confusion_png(system, tests, predictions, folder / f"confusion_{system}.png")
                print(f"[{system}] {name}: macro-F1 {result.macro_f1:.3f}, accuracy "
                      f"{result.accuracy:.3f}", flush=True)

    sections = []
    for name, test_path in test_paths.items():
        header = (f"{name}: train `{os.path.relpath(train_path, PROJECT_ROOT)}` ({len(train)} "
                  f"examples), test `{os.path.relpath(test_path, PROJECT_ROOT)}` "
                  f"({len(sets[name])} examples)")
        report = table(scores[name])
        (folders[name] / "scores.json").write_text(json.dumps(
            [{k: v for k, v in vars(s).items()} for s in scores[name]], indent=2,
            ensure_ascii=False))
        sections.append(f"## {header}\n\n{report}\n")
        print()
        print(header)
        print(report)
    (out / "report.md").write_text("# NLU benchmark\n\n" + "\n".join(sections), encoding="utf-8")
    print(f"\nartefacts: {os.path.relpath(out, PROJECT_ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
