"""SMP2017-ECDT task 1 (raw/Chinese_data.csv) → Rasa 3 NLU YAML train.yml / test.yml.

``python tests/data/public/smp2017_ecdt/convert.py`` rewrites both files from the raw copy
(README.md says where it comes from). The raw file is one tab-separated table: the 2,299
training queries sorted by label, then the 770 queries of the official develop set, sorted
by label again; the split is where the label order starts over, checked against those two
counts. Texts are stripped of surrounding white space (2 training texts had trailing
spaces) and kept otherwise as they are; labels are already ASCII slugs and kept as they are.
The script fails when a text is empty, repeated, given two labels or in both splits.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
RAW = HERE / "raw" / "Chinese_data.csv"
COUNTS = {"train": 2299, "test": 770}

HEADER = """\
# SMP2017-ECDT task 1 (user intent domain classification, 31 labels), {split} split:
# {what}.
# Generated from raw/Chinese_data.csv by tests/data/public/smp2017_ecdt/convert.py;
# README.md beside it gives the source, the terms and what each label means.
# Research use only (the organisers' terms); never copy these lines into data/ or businesses/.
"""
WHAT = {"train": "the official training set, 2,299 queries",
        "test": "the official develop set (scored as the test set), 770 queries"}


def read_raw(path: Path = RAW) -> Dict[str, List[Tuple[str, str]]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[0] != "Sentence\tTag":
        raise SystemExit(f"unexpected header {lines[0]!r}")
    rows = [tuple(line.split("\t")) for line in lines[1:] if line]
    if any(len(r) != 2 for r in rows):
        raise SystemExit("a row without exactly one tab")
    restarts = [i for i in range(1, len(rows)) if rows[i][1] < rows[i - 1][1]]
    if restarts != [COUNTS["train"]] or len(rows) != sum(COUNTS.values()):
        raise SystemExit(f"expected {COUNTS} (one restart of the label order), "
                         f"got {len(rows)} rows, restarts at {restarts}")
    cut = restarts[0]
    return {"train": [(t.strip(), y) for t, y in rows[:cut]],
            "test": [(t.strip(), y) for t, y in rows[cut:]]}


def check(splits: Dict[str, List[Tuple[str, str]]]) -> None:
    seen: Dict[str, str] = {}
    for name, rows in splits.items():
        for text, label in rows:
            if not text:
                raise SystemExit(f"{name}: empty text ({label})")
            if text in seen:
                raise SystemExit(f"{name}: {text!r} repeated (first in {seen[text]})")
            seen[text] = name


def to_yaml(split: str, rows: List[Tuple[str, str]]) -> str:
    by_label: Dict[str, List[str]] = {}
    for text, label in rows:
        by_label.setdefault(label, []).append(text)
    out = [HEADER.format(split=split, what=WHAT[split]), 'version: "3.1"\n', "nlu:\n"]
    for label in sorted(by_label):
        out.append(f"- intent: {label}\n  examples: |\n")
        out.extend(f"    - {text}\n" for text in by_label[label])
    return "".join(out)


def main() -> int:
    splits = read_raw()
    check(splits)
    for split, rows in splits.items():
        (HERE / f"{split}.yml").write_text(to_yaml(split, rows), encoding="utf-8")
        print(f"{split}.yml: {len(rows)} examples, {len({y for _, y in rows})} intents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
