"""What admins teach the bot: ``annotated.yml`` in the business pack's NLU folder
(``data/nlu/`` for the shop, ``businesses/property/data/nlu/`` for the property office: customer lines under the intent an
admin chose, sorted, deduplicated and stable, so a git diff shows exactly what was taught),
the intents an annotation may use, and new FAQ topics (answer → the business pack's FAQ answers,
responses re-rendered). Each annotation is also recorded in SQL (``annotations``).

Runs in the gateway (the console's 训练 page) and in the CLI (``python -m bot.training annotate``).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List

import yaml
from sqlalchemy import select

from bot.profile import pack as packs
from bot.profile.business import PROJECT_ROOT
from bot.profile.privacy import mask_customer_text
from bot.store.engine import get_engine, retrying
from bot.store.schema import Annotation, Message
from bot.training.project import AdminError, now, project_dir

ANNOTATED = Path("data/nlu/annotated.yml")     # the shop's; every pack's: annotated_path()
ENTITY_MARK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
TOPIC_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


def plain(example: str) -> str:
    """An example without its entity markup (``[冰箱](product)门`` → ``冰箱门``)."""
    return ENTITY_MARK.sub(lambda m: m.group(1), example)


def training_nlu(root: Path | None = None) -> Path:
    """The business pack's NLU folder (project-relative), where its annotations are trained from."""
    pack = packs.load(root=root or project_dir())
    return Path(pack.evaluation.get("train") or ANNOTATED.parent)


def annotated_path(root: Path | None = None) -> Path:
    """The business pack's annotations file, project-relative (the shop's: :data:`ANNOTATED`)."""
    return training_nlu(root) / ANNOTATED.name


def known_intents(root: Path | None = None) -> List[str]:
    """Intents an annotation may use: the domain's (minus fallback) and every faq/… topic."""
    from bot.training.assemble import domain_of

    root = root or project_dir()
    domain = domain_of(packs.load(root=root))          # the shared domain with the pack's parts
    names = [i if isinstance(i, str) else next(iter(i)) for i in domain.get("intents", [])]
    names = [n for n in names if n not in ("nlu_fallback", "faq")]
    answers = faq_answers_path(root)
    faq = yaml.safe_load((answers if answers.exists() else faq_answers_path(PROJECT_ROOT)).read_text(encoding="utf-8"))
    return sorted(names) + sorted(f"faq/{k}" for k in faq)


def existing_examples(root: Path) -> Dict[str, str]:
    """plain text → intent over data/nlu except the annotations file."""
    found: Dict[str, str] = {}
    for path in sorted((root / training_nlu(root)).glob("*.yml")):
        if path.name == ANNOTATED.name:
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in doc.get("nlu", []) or []:
            if "intent" in block and isinstance(block.get("examples"), str):
                for raw in block["examples"].splitlines():
                    raw = raw.strip()
                    if raw.startswith("- "):
                        found[plain(raw[2:].strip())] = block["intent"]
    return found


def read_annotations(root: Path | None = None) -> Dict[str, List[str]]:
    root = root or project_dir()
    path = root / annotated_path(root)
    if not path.exists():
        return {}
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: Dict[str, List[str]] = {}
    for block in doc.get("nlu", []) or []:
        out[block["intent"]] = [line.strip()[2:].strip() for line in block["examples"].splitlines()
                                if line.strip().startswith("- ")]
    return out


def render_annotations(blocks: Dict[str, List[str]]) -> str:
    """Stable Rasa YAML: intents sorted, examples sorted and unique."""
    out = ['version: "3.1"',
           "# Written by `python -m bot.training annotate` / the console's 训练 page: examples",
           "# admins took from real conversations. Sorted and deduplicated; edit freely.",
           "nlu:"]
    for intent in sorted(blocks):
        examples = sorted(set(e for e in blocks[intent] if e.strip()))
        if not examples:
            continue
        out.append(f"- intent: {intent}")
        out.append("  examples: |")
        out.extend(f"    - {e}" for e in examples)
    return "\n".join(out) + "\n"


def mark_entities(text: str, entities: List[Dict[str, Any]]) -> str:
    """Rasa markup ``[value](type)`` for each entity (given by value, first occurrence)."""
    spans = []
    for entity in entities or []:
        value, kind = str(entity.get("value", "")), str(entity.get("entity", ""))
        if not value or not re.fullmatch(r"[a-z_]{1,32}", kind):
            raise AdminError("entity: a value in the text and a type (order_id, phone, product …)")
        start = text.find(value)
        if start < 0:
            raise AdminError(f"entity value {value!r} is not in the text")
        if any(s < start + len(value) and start < e for s, e, _ in spans):
            raise AdminError("entities overlap")
        spans.append((start, start + len(value), kind))
    for start, end, kind in sorted(spans, reverse=True):
        text = f"{text[:start]}[{text[start:end]}]({kind}){text[end:]}"
    return text


def add_faq_topic(topic: str, answer: str, root: Path | None = None) -> None:
    """A new FAQ topic: its answer appended to the pack's FAQ answers and responses re-rendered."""
    root = root or project_dir()
    if not TOPIC_RE.match(topic or ""):
        raise AdminError("topic: lower-case letters, digits and '_' (e.g. gift_wrap)")
    answer = (answer or "").strip()
    if not answer or len(answer) > 1000 or "{" in answer or "}" in answer:
        raise AdminError("answer: 1-1000 characters, no braces")
    path = faq_answers_path(root)
    current = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if topic in current:
        raise AdminError(f"FAQ topic {topic} exists already")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{topic}: {json.dumps(answer, ensure_ascii=False)}\n")
    render_faq(root)


def faq_answers_path(root: Path) -> Path:
    """The business pack's FAQ answer templates in the project at ``root``."""
    return root / packs.load().files["faq_answers"]


def render_faq(root: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    if root == PROJECT_ROOT:
        subprocess.run([sys.executable, "-m", "bot.training.responses"], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return
    # a copy of the project: render with that copy's templates into that copy
    code = ("import sys; from pathlib import Path; import bot.training.responses as r; root=Path(sys.argv[1]);"
            "from bot.profile import pack; p=pack.load(); r.FAQ_TEMPLATES=root/p.files['faq_answers']; r.OUTPUT=root/p.files['rendered'];"
            "r.main([])")
    subprocess.run([sys.executable, "-c", code, str(root)], cwd=PROJECT_ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


_write_lock = threading.Lock()


def annotate(message_id: int, intent: str, *, actor: str, text: str | None = None,
             entities: List[Dict[str, Any]] | None = None, answer: str | None = None) -> Dict[str, Any]:
    """Teach the bot what a customer meant; the message leaves the inbox."""
    root = project_dir()

    def load(session):
        row = session.get(Message, message_id)
        return None if row is None or row.author != "customer" else (row.text, row.conversation_id)
    found = retrying(load, engine=get_engine())
    if found is None:
        raise AdminError("no such customer message")
    raw, conversation = found
    example = " ".join((text if text is not None else mask_customer_text(raw)).split())
    if not example or len(example) > 300:
        raise AdminError("text: 1-300 characters")
    intent = (intent or "").strip()
    with _write_lock:
        if answer is not None:
            if not intent.startswith("faq/"):
                raise AdminError("a new FAQ answer needs an intent faq/<topic>")
            add_faq_topic(intent[4:], answer, root)
        if intent not in known_intents(root):
            raise AdminError(f"unknown intent {intent!r}")
        marked = mark_entities(example, entities or [])
        existing = existing_examples(root).get(example)
        if existing and existing != intent:
            raise AdminError(f"「{example}」 is already a training example of {existing}")
        blocks = read_annotations(root)
        for other, examples in blocks.items():     # one text, one intent: the latest wins
            blocks[other] = [e for e in examples if plain(e) != example]
        if not existing:
            blocks.setdefault(intent, []).append(marked)
        path = root / annotated_path(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(render_annotations(blocks), encoding="utf-8")
        tmp.replace(path)

    def record(session):
        row = session.scalars(select(Annotation).where(Annotation.message_id == message_id)).first()
        if row is None:
            row = Annotation(message_id=message_id, conversation_id=conversation)
            session.add(row)
        row.intent, row.example, row.actor, row.at = intent, marked, actor, now()
    retrying(record, engine=get_engine())
    return {"message_id": message_id, "intent": intent, "example": marked,
            "file": str(annotated_path(root)), "already_in_training_data": bool(existing)}
