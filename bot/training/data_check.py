"""Training-data quality checks, fast and without training (``python -m bot.training.data_check``).

Checks the running business's pack (``KEFU_BUSINESS``, or ``--business``): the NLU files it
trains on (its ``data:``), its own split (``evaluation.own_split``), its FAQ answers, the
intents of its assembled domain and jieba with its words (``bot/dictionary`` plus its
``dictionary:``). Run by the test suite for every pack (tests/test_nlu_data.py). Each check
returns a list of problems, one readable line each; an empty list means the data passes.

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

import argparse
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
from bot.training import assemble

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


def load(path: Path | Sequence[Path]) -> Tuple[List[Example], Dict[str, List[str]]]:
    """Examples and regexes (entity → patterns) of a Rasa NLU YAML file or folder (or several)."""
    examples: List[Example] = []
    regexes: Dict[str, List[str]] = defaultdict(list)
    paths = [path] if isinstance(path, Path) else list(path)
    for file in [f for p in paths for f in _files(p)]:
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


def faq_answers(examples: Sequence[Example], answers_file: Optional[Path] = None) -> List[str]:
    """Each FAQ topic of the data has an answer in ``answers_file`` (default: the running
    pack's faq_answers.yml), and each answer a topic."""
    answers_file = answers_file or packs.load().path("faq_answers")
    answers = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    topics = {ex.label.split("/", 1)[1] for ex in examples if ex.label.startswith(f"{FAQ}/")}
    problems = [f"faq/{t}: no answer in {answers_file.name}" for t in sorted(topics - set(answers))
                ]
    problems += [f"{answers_file.name}: answer {t!r} has no training examples"
                 for t in sorted(set(answers) - topics)]
    problems += [f"{answers_file.name}: answer {t!r} is empty" for t, a in answers.items()
                 if not str(a or "").strip()]
    return problems


def dictionaries(pack: Optional[packs.Pack] = None) -> Tuple[Path, ...]:
    """The jieba words the pack's tokenizer loads: bot/dictionary, then the pack's own
    (what assemble.py gives its config's JiebaTokenizer)."""
    pack = pack or packs.load()
    return (DICTIONARY,) + tuple(pack.root / d for d in pack.dictionary)


@lru_cache(maxsize=4)
def _jieba(folders: Tuple[Path, ...] = (DICTIONARY,)):
    import jieba

    tokenizer = jieba.Tokenizer()
    for folder in folders:
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else [folder] if folder.exists() else []
        for file in files:
            tokenizer.load_userdict(str(file))
    return tokenizer


def boundaries(text: str, folders: Tuple[Path, ...] = (DICTIONARY,)) -> Tuple[set, set]:
    starts, ends = set(), set()
    for _word, start, end in _jieba(folders).tokenize(normalise(text)):
        starts.add(start)
        ends.add(end)
    return starts, ends


def misaligned(examples: Sequence[Example], entities: Optional[Iterable[str]] = None,
               folders: Tuple[Path, ...] = (DICTIONARY,)) -> List[str]:
    """Annotations of learned entities (regex-extracted ones don't need token alignment),
    tokenized by jieba with the words of ``folders``."""
    problems = []
    for ex in examples:
        checked = [(s, e, n) for s, e, n in ex.entities
                   if (entities is None and n not in PATTERN_ENTITIES) or
                   (entities is not None and n in entities)]
        if not checked:
            continue
        starts, ends = boundaries(ex.text, folders)
        for s, e, n in checked:
            if s not in starts or e not in ends:
                problems.append(f"{ex.source}: [{ex.text[s:e]}]({n}) does not fall on jieba token "
                                f"boundaries {[w for w, _, _ in _jieba(folders).tokenize(normalise(ex.text))]}")
    return problems


def domain_intents(pack: Optional[packs.Pack] = None) -> List[str]:
    """The intents of the pack's assembled domain (the shared domain.yml with its parts merged
    and its ``drop:`` applied), without nlu_fallback and the retrieval intent."""
    document = assemble.domain_of(pack or packs.load())
    names = [assemble.entry_name(i) for i in document.get("intents", [])]
    return [n for n in names if n not in ("nlu_fallback", FAQ)]


def check_all(train: Optional[Path] = None, test: Optional[Path] = None,
              pack: Optional[packs.Pack] = None) -> Dict[str, List[str]]:
    """Every check on ``pack``'s data (default: KEFU_BUSINESS's); ``train`` / ``test`` replace
    its training data / its own split."""
    pack = pack or packs.load()
    train_examples, regexes = load(train or assemble.nlu_paths(pack))
    own_split = test or pack.evaluation_path("own_split")
    test_examples, _ = load(own_split) if own_split else ([], {})
    everything = train_examples + test_examples
    return {
        "duplicates across intents": duplicates(train_examples) + duplicates(test_examples),
        "test examples leaked from training": leaks(train_examples, test_examples),
        "intents under the minimum count": counts(train_examples, domain_intents(pack)),
        "unannotated order numbers/phones/tickets": unannotated(everything, regexes),
        "FAQ topics without an answer": faq_answers(train_examples, pack.path("faq_answers")),
        "annotations off jieba token boundaries": misaligned(everything, folders=dictionaries(pack)),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.training.data_check", description=__doc__.split("\n")[0])
    parser.add_argument("--business", help="the pack to check (default: KEFU_BUSINESS)")
    args = parser.parse_args(argv)
    pack = packs.load(args.business)
    print(f"{pack.name} ({pack.title}): {', '.join(pack.data)}; own split {pack.evaluation.get('own_split', '-')}")
    results = check_all(pack=pack)
    failed = 0
    for check, problems in results.items():
        print(f"{'ok  ' if not problems else 'FAIL'} {check}" + (f" ({len(problems)})" if problems else ""))
        for problem in problems:
            print(f"     {problem}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
