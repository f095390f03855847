#!/usr/bin/env python3
"""Validate the blind property-management NLU evaluation sets.

Checks, per file (dev/nlu.yml, report/nlu.yml):
  * the YAML parses and has the Rasa 3 NLU shape (version "3.1", nlu: list of
    intent blocks with an `examples: |` block of "- text" lines);
  * entity annotations [text](entity) are well formed, use only the entities
    phone / ticket_id / location, and phone / ticket values look valid;
  * every intent is known and meets its minimum count;
  * location is annotated in >= 60% of complain / request_repair / inform;
  * no duplicate texts within a file or across the two files (exact and after
    normalisation: NFKC, lower case, punctuation and spaces removed).
Prints per-intent and per-entity counts. Exit code 1 on any error.
Optional: --similar prints cross-file pairs that are very close (warning only).
"""
import os
import re
import sys
import unicodedata
from collections import Counter, OrderedDict

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = OrderedDict([("dev", os.path.join(HERE, "dev", "nlu.yml")),
                     ("report", os.path.join(HERE, "report", "nlu.yml"))])

FAQ_TOPICS = ["property_fee", "parking", "renovation", "access_card", "move_out_pass",
              "utilities", "repair_scope", "service_hours", "response_time",
              "complaint_process", "privacy", "contact_channels"]
BIG = {"complain", "request_repair", "check_ticket", "inform", "out_of_scope",
       "deny", "affirm", "stop"}
SMALL = {"greet", "goodbye", "thank", "bot_challenge", "request_human",
         "rate_service", "request_return"}
MINIMUM = {i: 28 for i in BIG}
MINIMUM.update({i: 18 for i in SMALL})
MINIMUM.update({"faq/" + t: 12 for t in FAQ_TOPICS})
ENTITIES = {"phone", "ticket_id", "location"}
LOCATION_SHARE = {"complain": 0.6, "request_repair": 0.6, "inform": 0.6}

ANNOT = re.compile(r"\[([^\[\]()]+)\]\(([^\[\]()]+)\)")
PHONE = re.compile(r"^1[3-9]\d{9}$")
TICKET = re.compile(r"^KF(\d{14}|\d{10})$")


def plain(text):
    return ANNOT.sub(lambda m: m.group(1), text)


def norm(text):
    t = unicodedata.normalize("NFKC", plain(text)).lower()
    return "".join(ch for ch in t if not (ch.isspace() or unicodedata.category(ch)[0] in "PSZ"))


def load(name, path, errors):
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict) or str(data.get("version")) != "3.1":
        errors.append(f"{name}: version must be \"3.1\"")
    blocks = data.get("nlu") if isinstance(data, dict) else None
    if not isinstance(blocks, list):
        errors.append(f"{name}: 'nlu' must be a list")
        return []
    rows = []
    seen_intents = set()
    for block in blocks:
        intent = block.get("intent")
        ex = block.get("examples")
        if not intent or not isinstance(ex, str):
            errors.append(f"{name}: malformed block {block!r:.80}")
            continue
        if intent in seen_intents:
            errors.append(f"{name}: intent {intent} appears in two blocks")
        seen_intents.add(intent)
        for line in ex.splitlines():
            if not line.strip():
                continue
            if not line.startswith("- "):
                errors.append(f"{name}/{intent}: line not '- text': {line!r}")
                continue
            rows.append((intent, line[2:].strip()))
    return rows


def check_entities(name, intent, text, errors, ent_count):
    leftover = ANNOT.sub("", text)
    if any(c in leftover for c in "[]") or "](" in leftover:
        errors.append(f"{name}/{intent}: unbalanced brackets: {text}")
    found = []
    for m in ANNOT.finditer(text):
        value, ent = m.group(1), m.group(2)
        if ent not in ENTITIES:
            errors.append(f"{name}/{intent}: unknown entity {ent}: {text}")
        if value != value.strip():
            errors.append(f"{name}/{intent}: entity value has outer spaces: {text}")
        if ent == "phone":
            digits = unicodedata.normalize("NFKC", value).replace(" ", "").replace("-", "")
            if not PHONE.match(digits):
                errors.append(f"{name}/{intent}: bad phone {value!r}")
        if ent == "ticket_id" and not TICKET.match(value):
            errors.append(f"{name}/{intent}: bad ticket_id {value!r}")
        ent_count[ent] += 1
        found.append(ent)
    return found


def bigrams(s):
    return {s[i:i + 2] for i in range(len(s) - 1)} or {s}


def main():
    errors, warnings = [], []
    all_rows = {}
    for name, path in FILES.items():
        all_rows[name] = load(name, path, errors)

    exact_seen, norm_seen = {}, {}
    for name, rows in all_rows.items():
        counts = Counter()
        ent_count = Counter()
        loc_rows = Counter()
        for intent, text in rows:
            known = intent in MINIMUM
            if not known:
                errors.append(f"{name}: unknown intent {intent}")
            counts[intent] += 1
            ents = check_entities(name, intent, text, errors, ent_count)
            if "location" in ents:
                loc_rows[intent] += 1
            p, n = plain(text), norm(text)
            if not n:
                errors.append(f"{name}/{intent}: empty text")
            if p in exact_seen:
                errors.append(f"duplicate text {p!r}: {exact_seen[p]} and {name}/{intent}")
            elif n in norm_seen:
                errors.append(f"near-duplicate {p!r} ~ {norm_seen[n][1]!r}: "
                              f"{norm_seen[n][0]} and {name}/{intent}")
            exact_seen.setdefault(p, f"{name}/{intent}")
            norm_seen.setdefault(n, (f"{name}/{intent}", p))

        print(f"== {name}: {FILES[name]}")
        print(f"   total messages: {len(rows)}")
        order = [i for i in MINIMUM if not i.startswith("faq/")] + \
                ["faq/" + t for t in FAQ_TOPICS]
        for intent in order:
            c = counts.get(intent, 0)
            flag = "" if c >= MINIMUM[intent] else f"   <-- below minimum {MINIMUM[intent]}"
            extra = ""
            if intent in LOCATION_SHARE:
                share = loc_rows[intent] / c if c else 0
                extra = f"  (location in {loc_rows[intent]}/{c} = {share:.0%})"
                if share < LOCATION_SHARE[intent]:
                    errors.append(f"{name}/{intent}: location share {share:.0%} < 60%")
            print(f"   {intent:28s} {c:4d}{extra}{flag}")
            if c < MINIMUM[intent]:
                errors.append(f"{name}/{intent}: {c} < minimum {MINIMUM[intent]}")
        faq_total = sum(counts[i] for i in counts if i.startswith("faq/"))
        print(f"   faq total: {faq_total}")
        print("   entities: " + ", ".join(f"{e}={ent_count.get(e, 0)}" for e in sorted(ENTITIES)))

    if "--similar" in sys.argv:
        dev = [(i, norm(t), plain(t)) for i, t in all_rows["dev"]]
        for i2, n2, p2 in ((i, norm(t), plain(t)) for i, t in all_rows["report"]):
            b2 = bigrams(n2)
            for i1, n1, p1 in dev:
                b1 = bigrams(n1)
                j = len(b1 & b2) / len(b1 | b2)
                if j >= 0.6 and min(len(n1), len(n2)) >= 4:
                    warnings.append(f"similar ({j:.2f}) dev/{i1} {p1!r} ~ report/{i2} {p2!r}")
        for w in warnings:
            print("WARN", w)

    if errors:
        print(f"\nFAILED with {len(errors)} error(s):")
        for e in errors:
            print("  -", e)
        return 1
    print("\nOK: both files valid, minimums met, no duplicates.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
