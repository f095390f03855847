"""Sanity check for the blind NLU sets (dev + report). Run: python3 check_blind.py"""
import re
import sys
import unicodedata
import collections
import os
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = {"dev": os.path.join(HERE, "dev", "nlu.yml"), "report": os.path.join(HERE, "report", "nlu.yml")}
FAQ = ["return_policy", "exchange_policy", "refund_time", "shipping_time", "shipping_fee", "invoice",
       "warranty", "repair_fee", "service_hours", "response_time", "payment_methods", "order_change",
       "installation", "complaint_process", "privacy", "contact_channels"]
BIG = ["complain", "request_repair", "request_return", "check_ticket", "inform", "out_of_scope",
       "deny", "affirm", "stop"]
SMALL = ["greet", "goodbye", "thank", "bot_challenge", "request_human", "rate_service"]
MIN = {**{i: 28 for i in BIG}, **{i: 18 for i in SMALL}, **{"faq/" + t: 12 for t in FAQ}}
ENTITIES = {"product", "phone", "order_id", "ticket_id"}
ENT_RE = re.compile(r"\[([^\[\]()]+)\]\(([a-z_]+)\)")
PRODUCT_WORDS = ["冰箱", "洗衣机", "洗衣機", "空调", "沙发", "床垫", "热水器", "熱水器", "电视", "油烟机",
                 "燃气灶", "电脑", "微波炉", "净水器", "衣柜", "洗碗机", "电饭煲", "电饭锅", "餐桌"]
errors = []

def nfkc(s):
    return unicodedata.normalize("NFKC", s)

def check_value(ent, val, where):
    v = nfkc(val)
    if ent == "phone":
        if not re.fullmatch(r"1[3-9]\d{9}", re.sub(r"[ \-]", "", v)):
            errors.append(f"{where}: bad phone {val!r}")
    elif ent == "order_id":
        if not (re.fullmatch(r"\d{12,20}", v) or re.fullmatch(r"DD\d+", v)):
            errors.append(f"{where}: bad order_id {val!r}")
    elif ent == "ticket_id":
        if not re.fullmatch(r"KF\d{10}", v):
            errors.append(f"{where}: bad ticket_id {val!r}")

def norm_loose(s):
    s = nfkc(s).lower()
    # drop whitespace, punctuation and math symbols (~); keep letters, digits, CJK and emoji
    return "".join(ch for ch in s if unicodedata.category(ch)[0] not in "PZ" and unicodedata.category(ch) != "Sm")

seen_exact, seen_loose = {}, {}
counts = {}
for name, path in FILES.items():
    data = yaml.safe_load(open(path, encoding="utf-8"))
    assert str(data.get("version")) == "3.1", f"{name}: version must be 3.1"
    c = collections.Counter()
    ent_c = collections.Counter()
    for block in data["nlu"]:
        intent = block["intent"]
        if intent not in MIN:
            errors.append(f"{name}: unknown intent {intent}")
        for raw in block["examples"].splitlines():
            raw = raw.strip()
            if not raw:
                continue
            if not raw.startswith("- "):
                errors.append(f"{name}/{intent}: line not '- ' : {raw!r}")
                continue
            text = raw[2:]
            where = f"{name}/{intent}: {text}"
            for m in ENT_RE.finditer(text):
                ent, val = m.group(2), m.group(1)
                if ent not in ENTITIES:
                    errors.append(f"{where}: unknown entity {ent}")
                check_value(ent, val, where)
                ent_c[ent] += 1
            plain = ENT_RE.sub(lambda m: m.group(1), text)
            rest = ENT_RE.sub("", text)
            if re.search(r"[\[\]()]", rest):
                errors.append(f"{where}: malformed brackets")
            for w in PRODUCT_WORDS:  # product words must be annotated
                if w in rest:
                    errors.append(f"{where}: unannotated product word {w}")
            if re.search(r"(?<![\dA-Z])(1[3-9]\d{9}|DD\d{6,}|KF\d{10}|\d{12,20})(?!\d)", nfkc(rest)):
                errors.append(f"{where}: unannotated id/phone")
            if plain in seen_exact:
                errors.append(f"{where}: duplicate of {seen_exact[plain]}")
            seen_exact.setdefault(plain, f"{name}/{intent}")
            lk = norm_loose(plain)
            if lk in seen_loose and seen_loose[lk][1] != plain:
                errors.append(f"{where}: near-duplicate (punct/space/case/width) of {seen_loose[lk]}")
            seen_loose.setdefault(lk, (f"{name}/{intent}", plain))
            c[intent] += 1
    for intent, m in MIN.items():
        if c[intent] < m:
            errors.append(f"{name}: {intent} has {c[intent]} < {m}")
    counts[name] = (c, ent_c)

print(f"{'intent':28s} {'dev':>5s} {'report':>7s} {'min':>4s}")
for intent in SMALL + BIG + ["faq/" + t for t in FAQ]:
    print(f"{intent:28s} {counts['dev'][0][intent]:5d} {counts['report'][0][intent]:7d} {MIN[intent]:4d}")
for name in FILES:
    print(f"{name}: total {sum(counts[name][0].values())}, entities {dict(counts[name][1])}")
if errors:
    print("\nERRORS:")
    print("\n".join(errors))
    sys.exit(1)
print("\nOK: both files parse, brackets well-formed, minimums met, no duplicates.")
