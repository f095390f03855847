"""Format check of the blind dialogue set (python3 + PyYAML only).

    python3 tests/dialogues_blind/check_format.py [conversations.yml]

Checks every conversation: id (unique), covers (list of tags), clock (in_hours |
after_hours), turns (non-empty, each with a non-empty `say` and only the known
`expect` keys), and an optional outcome with only the known keys and values.
Prints counts per tag, per persona, per clock and per expected ticket kind.
Exit status 1 on any error.
"""
import collections
import pathlib
import re
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
CLOCKS = {"in_hours", "after_hours"}
EXPECT_KEYS = {"replied", "mentions_any", "mentions_none"}
OUTCOME_KEYS = {"tickets", "handoff"}
TICKET_KEYS = {"kind", "category", "priority", "phone_last4", "order_id", "product"}
KINDS = {"complaint", "repair", "return", "callback"}
CATEGORIES = {"商品质量", "物流配送", "服务态度", "退款售后", "其他"}
PRIORITIES = {"high", "normal"}
HANDOFF = {"queued", "none"}
ORDER_RE = re.compile(r"^(DD\d+|\d{12,20})$")
ID_RE = re.compile(r"^d\d{3}$")


def _str_list(value):
    return isinstance(value, list) and value and all(isinstance(x, str) and x for x in value)


def check(convs):
    errors = []
    if not isinstance(convs, list) or not convs:
        return ["top level must be a non-empty list of conversations"]
    seen = set()
    for n, c in enumerate(convs):
        where = f"#{n}"
        if not isinstance(c, dict):
            errors.append(f"{where}: not a mapping")
            continue
        cid = c.get("id")
        where = f"{cid or '#' + str(n)}"
        unknown = set(c) - {"id", "covers", "clock", "turns", "outcome"}
        if unknown:
            errors.append(f"{where}: unknown keys {sorted(unknown)}")
        if not isinstance(cid, str) or not ID_RE.match(cid):
            errors.append(f"{where}: id missing or not like d001")
        elif cid in seen:
            errors.append(f"{where}: duplicate id")
        seen.add(cid)
        if not _str_list(c.get("covers")):
            errors.append(f"{where}: covers must be a non-empty list of tags")
        if c.get("clock") not in CLOCKS:
            errors.append(f"{where}: clock must be one of {sorted(CLOCKS)}")
        turns = c.get("turns")
        if not isinstance(turns, list) or not turns:
            errors.append(f"{where}: turns must be a non-empty list")
            turns = []
        for i, t in enumerate(turns):
            tw = f"{where} turn {i + 1}"
            if not isinstance(t, dict):
                errors.append(f"{tw}: not a mapping")
                continue
            if set(t) - {"say", "expect"}:
                errors.append(f"{tw}: unknown keys {sorted(set(t) - {'say', 'expect'})}")
            if not isinstance(t.get("say"), str) or not t["say"].strip():
                errors.append(f"{tw}: say missing or empty")
            if "{" in t.get("say", "") and t.get("say") != "{ticket}":
                errors.append(f"{tw}: the only placeholder is a whole-turn {{ticket}}")
            if t.get("say") == "{ticket}" and i == 0:
                errors.append(f"{tw}: {{ticket}} before any ticket could exist")
            exp = t.get("expect")
            if exp is None:
                continue
            if not isinstance(exp, dict):
                errors.append(f"{tw}: expect must be a mapping")
                continue
            if set(exp) - EXPECT_KEYS:
                errors.append(f"{tw}: unknown expect keys {sorted(set(exp) - EXPECT_KEYS)}")
            if "replied" in exp and not isinstance(exp["replied"], bool):
                errors.append(f"{tw}: replied must be true/false")
            for k in ("mentions_any", "mentions_none"):
                if k in exp and not _str_list(exp[k]):
                    errors.append(f"{tw}: {k} must be a non-empty list of strings")
            if _str_list(exp.get("mentions_any")) and _str_list(exp.get("mentions_none")):
                both = set(exp["mentions_any"]) & set(exp["mentions_none"])
                if both:
                    errors.append(f"{tw}: {sorted(both)} both required and forbidden")
        out = c.get("outcome")
        if out is None:
            continue
        if not isinstance(out, dict) or not out:
            errors.append(f"{where}: outcome must be a non-empty mapping")
            continue
        if set(out) - OUTCOME_KEYS:
            errors.append(f"{where}: unknown outcome keys {sorted(set(out) - OUTCOME_KEYS)}")
        if "handoff" in out and out["handoff"] not in HANDOFF:
            errors.append(f"{where}: handoff must be one of {sorted(HANDOFF)}")
        if "tickets" in out:
            tickets = out["tickets"]
            if not isinstance(tickets, list):
                errors.append(f"{where}: tickets must be a list ([] = none)")
                tickets = []
            for j, tk in enumerate(tickets):
                kw = f"{where} ticket {j + 1}"
                if not isinstance(tk, dict):
                    errors.append(f"{kw}: not a mapping")
                    continue
                if set(tk) - TICKET_KEYS:
                    errors.append(f"{kw}: unknown keys {sorted(set(tk) - TICKET_KEYS)}")
                if tk.get("kind") not in KINDS:
                    errors.append(f"{kw}: kind must be one of {sorted(KINDS)}")
                if "category" in tk and (tk.get("kind") != "complaint" or tk["category"] not in CATEGORIES):
                    errors.append(f"{kw}: category only on complaints, one of {sorted(CATEGORIES)}")
                if "priority" in tk and tk["priority"] not in PRIORITIES:
                    errors.append(f"{kw}: priority must be high or normal")
                if "phone_last4" in tk and not (isinstance(tk["phone_last4"], str) and re.fullmatch(r"\d{4}", tk["phone_last4"])):
                    errors.append(f"{kw}: phone_last4 must be a 4-digit string")
                if "order_id" in tk and not (isinstance(tk["order_id"], str) and ORDER_RE.match(tk["order_id"])):
                    errors.append(f"{kw}: order_id must be DD+digits or 12-20 digits (a string)")
                if "product" in tk and not (isinstance(tk["product"], str) and tk["product"]):
                    errors.append(f"{kw}: product must be a non-empty string")
                said = " ".join(t.get("say", "") for t in turns if isinstance(t, dict))
                digits = re.sub(r"\D", "", said)
                if isinstance(tk.get("phone_last4"), str) and tk["phone_last4"] not in digits:
                    errors.append(f"{kw}: phone_last4 {tk['phone_last4']} never said by the customer")
                if isinstance(tk.get("order_id"), str) and tk["order_id"] not in said:
                    errors.append(f"{kw}: order_id {tk['order_id']} never said by the customer")
        if any(t.get("say") == "{ticket}" for t in turns if isinstance(t, dict)) and not out.get("tickets"):
            errors.append(f"{where}: uses {{ticket}} but expects no ticket")
    return errors


def main(argv):
    path = pathlib.Path(argv[1]) if len(argv) > 1 else HERE / "conversations.yml"
    convs = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = check(convs)
    for e in errors:
        print("ERROR", e)
    tags = collections.Counter()
    personas = collections.Counter()
    clocks = collections.Counter()
    kinds = collections.Counter()
    turns = 0
    for c in convs if isinstance(convs, list) else []:
        if not isinstance(c, dict):
            continue
        for tag in c.get("covers") or []:
            (personas if str(tag).startswith("persona_") else tags)[tag] += 1
        clocks[c.get("clock")] += 1
        turns += len(c.get("turns") or [])
        for tk in (c.get("outcome") or {}).get("tickets") or []:
            kinds[tk.get("kind")] += 1
    print(f"{len(convs)} conversations, {turns} customer turns")
    print("clock:", dict(clocks))
    print("expected tickets by kind:", dict(kinds))
    print("personas:", dict(sorted(personas.items())))
    print("tags:")
    for tag, n in sorted(tags.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {tag:22s} {n}")
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
