"""Training-data quality checks, fast and without training (``python -m bot.training.data_check``).

Run by the test suite (tests/test_nlu_data.py). Each check returns a list of problems,
one readable line each; an empty list means the data passes.

* the same example under two intents (or two FAQ topics), and test examples that are
  also training examples (a leak that flatters every score);
* an intent with fewer than 30 training examples, or an FAQ topic with fewer than 12;
* an order number, phone or ticket number in an example without its annotation;
* an FAQ topic in the data without an answer in the business pack's FAQ answers (and the reverse);
* an entity annotation that does not start and end on a jieba token boundary (the
  tokenizer sees the normalised text, with the domain dictionary), which DIET cannot
  learn and ``rasa train`` warns about.
"""
from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

from bot.profile import pack as packs
from bot.brain.components.normaliser import normalise
from bot.profile.business import PROJECT_ROOT

TRAIN = PROJECT_ROOT / "data" / "nlu"
TEST = PROJECT_ROOT / "tests" / "nlu"
FAQ_ANSWERS = packs.load().path("faq_answers")     # the business pack's (KEFU_BUSINESS)
DICTIONARY = PROJECT_ROOT / "bot" / "dictionary"
MIN_INTENT, MIN_FAQ = 30, 12
FAQ = "faq"
PATTERN_ENTITIES = ("order_id", "phone", "ticket_id")

# One annotated example line: [value](entity) or [value]{"entity": ...}
_ANNOTATION = re.compile(r"\[(?P<value>[^\]]+?)\](?:\((?P<paren>[^)]+)\)|\{(?P<json>[^}]+)\})")
_ENTITY_NAME = re.compile(r'"entity"\s*:\s*"([^"]+)"')


@dataclass
class Example:
    text: str                      # plain text, annotations removed
    label: str                     # intent, or faq/<topic>
    source: str                    # file:line
    entities: List[Tuple[int, int, str]] = field(default_factory=list)

    @property
    def intent(self) -> str:
        return self.label.split("/", 1)[0]


def parse_example(raw: str) -> Tuple[str, List[Tuple[int, int, str]]]:
    """Strip Rasa's inline entity annotations; return the text and (start, end, entity)."""
    text, entities, last = "", [], 0
    for match in _ANNOTATION.finditer(raw):
        text += raw[last:match.start()]
        value = match.group("value")
        if match.group("paren"):
            name = match.group("paren").split(":", 1)[0].strip()
        else:
            found = _ENTITY_NAME.search("{" + match.group("json") + "}")
            name = found.group(1) if found else "?"
        entities.append((len(text), len(text) + len(value), name))
        text += value
        last = match.end()
    return text + raw[last:], entities


def _files(path: Path) -> List[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml"))
    return [path]


def load(path: Path) -> Tuple[List[Example], Dict[str, List[str]]]:
    """Examples and regexes (entity → patterns) of a Rasa NLU YAML file or folder."""
    examples: List[Example] = []
    regexes: Dict[str, List[str]] = defaultdict(list)
    for file in _files(path):
        lines = file.read_text(encoding="utf-8").splitlines()
        document = yaml.safe_load("\n".join(lines)) or {}
        for block in document.get("nlu") or []:
            items = [l.strip()[2:] for l in str(block.get("examples", "")).splitlines()
                     if l.strip().startswith("- ")]
            if "regex" in block:
                regexes[block["regex"]].extend(items)
            if "intent" not in block:
                continue
            for item in items:
                text, entities = parse_example(item)
                line = next((i + 1 for i, l in enumerate(lines) if l.strip() == f"- {item}"), 0)
                try:
                    source = f"{file.relative_to(PROJECT_ROOT)}:{line}"
                except ValueError:
                    source = f"{file}:{line}"
                examples.append(Example(text, block["intent"], source, entities))
    return examples, dict(regexes)


def duplicates(examples: Sequence[Example]) -> List[str]:
    seen: Dict[str, Dict[str, str]] = defaultdict(dict)
    for ex in examples:
        seen[normalise(ex.text).strip()].setdefault(ex.label, ex.source)
    return [f"{text!r} is an example of {len(labels)} intents: "
            + ", ".join(f"{label} ({src})" for label, src in sorted(labels.items()))
            for text, labels in seen.items() if len(labels) > 1]


def leaks(train: Sequence[Example], test: Sequence[Example]) -> List[str]:
    known = {normalise(ex.text).strip(): ex.source for ex in train}
    return [f"test example {ex.text!r} ({ex.source}) is also a training example "
            f"({known[normalise(ex.text).strip()]})"
            for ex in test if normalise(ex.text).strip() in known]


def counts(examples: Sequence[Example], required: Iterable[str] = (),
           min_intent: int = MIN_INTENT, min_faq: int = MIN_FAQ) -> List[str]:
    per_label: Dict[str, int] = defaultdict(int)
    for ex in examples:
        per_label[ex.label] += 1
    for name in required:
        per_label.setdefault(name, 0)
    problems = []
    for label, n in sorted(per_label.items()):
        minimum = min_faq if label.startswith(f"{FAQ}/") else min_intent
        if n < minimum:
            problems.append(f"{label}: {n} training examples, fewer than {minimum}")
    return problems


def unannotated(examples: Sequence[Example], regexes: Dict[str, List[str]]) -> List[str]:
    compiled = {name: [re.compile(p) for p in patterns] for name, patterns in regexes.items()
                if name in PATTERN_ENTITIES}
    problems = []
    for ex in examples:
        text = normalise(ex.text)
        for name, patterns in compiled.items():
            for pattern in patterns:
                for match in pattern.finditer(text):
                    covered = any(s <= match.start() and match.end() <= e and n == name
                                  for s, e, n in ex.entities)
                    if not covered:
                        problems.append(f"{ex.source}: {match.group()!r} looks like a {name} "
                                        f"but is not annotated as one: {ex.text!r}")
    return problems


def faq_answers(examples: Sequence[Example], answers_file: Path = FAQ_ANSWERS) -> List[str]:
    answers = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    topics = {ex.label.split("/", 1)[1] for ex in examples if ex.label.startswith(f"{FAQ}/")}
    problems = [f"faq/{t}: no answer in {answers_file.name}" for t in sorted(topics - set(answers))
                ]
    problems += [f"{answers_file.name}: answer {t!r} has no training examples"
                 for t in sorted(set(answers) - topics)]
    problems += [f"{answers_file.name}: answer {t!r} is empty" for t, a in answers.items()
                 if not str(a or "").strip()]
    return problems


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    tokenizer = jieba.Tokenizer()
    for file in sorted(DICTIONARY.glob("*")) if DICTIONARY.is_dir() else []:
        tokenizer.load_userdict(str(file))
    return tokenizer


def boundaries(text: str) -> Tuple[set, set]:
    starts, ends = set(), set()
    for _word, start, end in _jieba().tokenize(normalise(text)):
        starts.add(start)
        ends.add(end)
    return starts, ends


def misaligned(examples: Sequence[Example], entities: Optional[Iterable[str]] = None) -> List[str]:
    """Annotations of learned entities (regex-extracted ones don't need token alignment)."""
    problems = []
    for ex in examples:
        checked = [(s, e, n) for s, e, n in ex.entities
                   if (entities is None and n not in PATTERN_ENTITIES) or
                   (entities is not None and n in entities)]
        if not checked:
            continue
        starts, ends = boundaries(ex.text)
        for s, e, n in checked:
            if s not in starts or e not in ends:
                problems.append(f"{ex.source}: [{ex.text[s:e]}]({n}) does not fall on jieba token "
                                f"boundaries {[w for w, _, _ in _jieba().tokenize(normalise(ex.text))]}")
    return problems


def domain_intents(domain: Path = PROJECT_ROOT / "domain.yml") -> List[str]:
    document = yaml.safe_load(domain.read_text(encoding="utf-8"))
    names = [i if isinstance(i, str) else next(iter(i)) for i in document.get("intents", [])]
    return [n for n in names if n not in ("nlu_fallback", FAQ)]


def check_all(train: Path = TRAIN, test: Path = TEST) -> Dict[str, List[str]]:
    train_examples, regexes = load(train)
    test_examples, _ = load(test)
    everything = train_examples + test_examples
    return {
        "duplicates across intents": duplicates(train_examples) + duplicates(test_examples),
        "test examples leaked from training": leaks(train_examples, test_examples),
        "intents under the minimum count": counts(train_examples, domain_intents()),
        "unannotated order numbers/phones/tickets": unannotated(everything, regexes),
        "FAQ topics without an answer": faq_answers(train_examples),
        "annotations off jieba token boundaries": misaligned(everything),
    }


def main() -> int:
    results = check_all()
    failed = 0
    for check, problems in results.items():
        print(f"{'ok  ' if not problems else 'FAIL'} {check}" + (f" ({len(problems)})" if problems else ""))
        for problem in problems:
            print(f"     {problem}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
