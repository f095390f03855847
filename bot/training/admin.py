"""Retrain the assistant from real conversations (issue 6): the admin's loop, headless.

    .venv/bin/python -m bot.training.admin inbox [--filter low|fallback|handoff|rephrased]
    .venv/bin/python -m bot.training.admin annotate <message id> <intent|faq/topic> [--text ...]
                                  [--entity value=type ...] [--answer "new FAQ answer"]
    .venv/bin/python -m bot.training.admin train [--finetune <live model.tar.gz>]
    .venv/bin/python -m bot.training.admin compare <candidate.tar.gz> [--live <model>]
    .venv/bin/python -m bot.training.admin --user <admin> activate <model> [--reason "override reason"]
    .venv/bin/python -m bot.training.admin --user <admin> rollback
    .venv/bin/python -m bot.training.admin log

activate/rollback with ``--user`` go through the running gateway (``--gateway``, default
http://127.0.0.1:8000; password from ``KEFU_ADMIN_PASSWORD`` or prompted), so the swap is
held and audited exactly as from the page; without ``--user`` they call Rasa's HTTP API
directly (``--rasa-url``, token from ``KEFU_RASA_TOKEN``).

The console's 训练 page (``/console/admin``, bot/workspace/admin_api.py) calls the same
functions. The inbox joins the gateway's transcripts (what customers wrote) with Rasa's
trackers (what Rasa understood: intent, confidence, the actions that followed).
Annotations go to ``data/nlu/annotated.yml`` (sorted, deduplicated, stable, so a git diff
shows exactly what an admin taught the bot); new FAQ answers to ``bot/faq_answers.yml``.
Training runs ``rasa data validate`` and then ``rasa train`` in the background, one at a
time (``var/admin-train.lock`` across processes). A comparison evaluates candidate and live
model on the same test split plus the annotated items. Activation loads a model into the
running Rasa (``PUT /model``) and is recorded in ``model_activations`` (who, when, which
model, scores, override reason); ``rollback`` re-activates the previous model.

``KEFU_ADMIN_PROJECT`` points all of this at another copy of the project's data (the tests
train in a temporary copy); ``KEFU_KEEP_MODELS`` (5) is how many activated models are kept.
"""
from __future__ import annotations

import argparse
import datetime as dt
import difflib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

import yaml
from sqlalchemy import select

from bot.training.model_cache import INPUTS as MODEL_INPUTS
from bot.store.engine import get_engine, retrying
from bot.store.schema import Annotation, Message, ModelActivation, TrainingRun
from bot.brain.rasa_server import rasa_env
from bot.profile.privacy import mask_text
from bot.profile.business import PROJECT_ROOT

ANNOTATED = Path("data/nlu/annotated.yml")
LOW_CONFIDENCE = float(os.environ.get("KEFU_LOW_CONFIDENCE", "0.6"))
REPHRASE_SECONDS = 120
TOLERANCE = float(os.environ.get("KEFU_COMPARE_TOLERANCE", "0.01"))
EXPECTED_DEFAULT = {"full": 150.0, "finetune": 75.0}
HANDOFF_ACTIONS = {"action_request_human"}
FALLBACK_ACTIONS = {"action_handle_fallback", "action_default_fallback"}
FILTERS = ("low", "fallback", "handoff", "rephrased")
TRAIN_LOCK = PROJECT_ROOT / "var" / "admin-train.lock"   # one training at a time on this machine


class AdminError(ValueError):
    """A request the admin loop refuses (with a reason an admin can act on)."""


def project_dir() -> Path:
    return Path(os.environ.get("KEFU_ADMIN_PROJECT") or PROJECT_ROOT).resolve()


def models_dir() -> Path:
    return project_dir() / "models"


def results_dir() -> Path:
    path = project_dir() / "results" / "admin"
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_models() -> int:
    return max(1, int(os.environ.get("KEFU_KEEP_MODELS", "5")))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# what training reads (the model cache's inputs) plus what retraining needs beside them
PROJECT_FILES = sorted(set(MODEL_INPUTS) | {"credentials.yml", "tests/nlu"})


def copy_project(dest: Path, source: Path = PROJECT_ROOT) -> Path:
    """What training reads, copied (the tests retrain in such a copy, never in the repo)."""
    for entry in PROJECT_FILES:
        src, dst = source / entry, dest / entry
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy(src, dst)
    (dest / "models").mkdir(exist_ok=True)
    return dest


# --- masking -------------------------------------------------------------------------------

ORDER_RE = re.compile(r"(?i)(?<![A-Za-z0-9])(DD\d{4,}|\d{12,20})(?![0-9])")
ADDRESS_RE = re.compile(
    r"[\u4e00-\u9fa5]{0,8}(?:省|市|区|县|镇|乡)[\u4e00-\u9fa5A-Za-z0-9\-#]*?"
    r"(?:路|街|道|巷|弄|小区|花园|村|大厦)[\u4e00-\u9fa5A-Za-z0-9\-#]*?"
    r"(?:\d+\s*(?:号|栋|幢|单元|室|楼|层)[\u4e00-\u9fa5A-Za-z0-9\-#]*)?")


def mask_customer_text(text: str) -> str:
    """Phones, order numbers and addresses masked for the admin's eyes (and the YAML)."""
    text = ADDRESS_RE.sub(lambda m: m.group(0)[:2] + "****" if len(m.group(0)) > 4 else m.group(0),
                          text or "")
    text = ORDER_RE.sub(lambda m: m.group(1)[:4] + "****" + m.group(1)[-2:], text)
    return mask_text(text)


# --- inbox ---------------------------------------------------------------------------------


def _parse_info(parse: Dict[str, Any]) -> Dict[str, Any]:
    intent = (parse.get("intent") or {})
    name, confidence = intent.get("name"), intent.get("confidence")
    faq = ((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}
    key = faq.get("intent_response_key")
    return {"intent": key if name == "faq" and key else name,
            "confidence": round(float(confidence), 4) if confidence is not None else None}


def turns_from_events(events: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rasa tracker events → one entry per user message with what happened next."""
    turns: List[Dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            info = _parse_info(event.get("parse_data") or {})
            turns.append({"text": event.get("text") or "", "at": event.get("timestamp"),
                          "actions": [], "bot": [], **info})
        elif turns and kind == "action" and event.get("name") not in ("action_listen", None):
            turns[-1]["actions"].append(event["name"])
        elif turns and kind == "bot" and event.get("text"):
            turns[-1]["bot"].append(event["text"])
    return turns


def sql_tracker_events(db_path: Path | str) -> Callable[[List[str]], Dict[str, List[dict]]]:
    """Read trackers straight from Rasa's SQL tracker store (SQLite file) — headless use."""
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{db_path}", future=True)

    def fetch(conversations: List[str]) -> Dict[str, List[dict]]:
        found: Dict[str, List[dict]] = {c: [] for c in conversations}
        if not conversations or not Path(db_path).exists():
            return found
        with engine.connect() as conn:
            for conversation in conversations:
                rows = conn.execute(text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"),
                                    {"s": conversation})
                found[conversation] = [json.loads(r.data) for r in rows]
        return found
    return fetch


def _customer_lines(limit_conversations: int) -> Dict[str, List[Dict[str, Any]]]:
    """The latest customer lines the bot answered, grouped by conversation (newest first)."""
    def lines(session):
        rows = session.scalars(select(Message).where(Message.author == "customer",
                                                     Message.state == "done")
                               .order_by(Message.id.desc()).limit(2000))
        out: Dict[str, List[Dict[str, Any]]] = {}
        for m in rows:
            out.setdefault(m.conversation_id, []).append(
                {"id": m.id, "text": m.text, "at": m.at.isoformat(), "channel": m.channel})
        return out
    by_conversation = retrying(lines, engine=get_engine())
    ordered = sorted(by_conversation, key=lambda c: -max(x["id"] for x in by_conversation[c]))
    return {c: sorted(by_conversation[c], key=lambda x: x["id"])
            for c in ordered[:limit_conversations]}


def _annotated_ids() -> set:
    return set(retrying(lambda s: s.scalars(select(Annotation.message_id)).all(),
                        engine=get_engine()))


def build_inbox(lines: Dict[str, List[Dict[str, Any]]], trackers: Dict[str, List[dict]],
                done: set, wanted: Optional[str] = None) -> List[Dict[str, Any]]:
    """Join customer lines with the turns Rasa saw (matched in order by text)."""
    from bot.gateway.router import clean_text

    items: List[Dict[str, Any]] = []
    for conversation, customer in lines.items():
        turns = turns_from_events(trackers.get(conversation) or [])
        position = 0
        matched = []
        for line in customer:
            text = clean_text(line["text"])
            for index in range(position, len(turns)):
                if turns[index]["text"] == text:
                    matched.append((line, turns[index], index))
                    position = index + 1
                    break
        for n, (line, turn, index) in enumerate(matched):
            nxt = turns[index + 1] if index + 1 < len(turns) else None
            rephrased = False
            if nxt and turn["at"] and nxt["at"] and nxt["at"] - turn["at"] <= REPHRASE_SECONDS:
                similar = difflib.SequenceMatcher(None, turn["text"], nxt["text"]).ratio() >= 0.35
                confused = turn["intent"] == "nlu_fallback" or (turn["confidence"] or 0) < LOW_CONFIDENCE
                rephrased = similar or (confused and nxt["intent"] != turn["intent"])
            fallback = turn["intent"] == "nlu_fallback" or bool(FALLBACK_ACTIONS & set(turn["actions"]))
            item = {
                "id": line["id"], "conversation_id": conversation, "at": line["at"],
                "text": mask_customer_text(line["text"]), "intent": turn["intent"],
                "confidence": turn["confidence"],
                "low_confidence": (turn["confidence"] or 0) < LOW_CONFIDENCE,
                "fallback": fallback,
                "handoff": bool(HANDOFF_ACTIONS & set(turn["actions"])),
                "rephrased": rephrased,
                "next": [mask_customer_text(t)[:200] for t in turn["bot"][:3]],
                "actions": turn["actions"][:6],
            }
            if line["id"] in done:
                continue
            if wanted and wanted in FILTERS:
                flag = {"low": "low_confidence"}.get(wanted, wanted)
                if not item[flag]:
                    continue
            items.append(item)
    items.sort(key=lambda i: -i["id"])
    return items


def inbox(fetch_trackers: Callable[[List[str]], Dict[str, List[dict]]], wanted: str | None = None,
          limit_conversations: int = 60) -> List[Dict[str, Any]]:
    lines = _customer_lines(limit_conversations)
    return build_inbox(lines, fetch_trackers(list(lines)), _annotated_ids(), wanted)


# --- annotate --------------------------------------------------------------------------------

ENTITY_MARK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def _plain(example: str) -> str:
    return ENTITY_MARK.sub(lambda m: m.group(1), example)


def known_intents(root: Path | None = None) -> List[str]:
    """Intents an annotation may use: the domain's (minus fallback) and every faq/… topic."""
    root = root or project_dir()
    domain = yaml.safe_load((root / "domain.yml").read_text(encoding="utf-8"))
    names = [i if isinstance(i, str) else next(iter(i)) for i in domain.get("intents", [])]
    names = [n for n in names if n not in ("nlu_fallback", "faq")]
    faq = yaml.safe_load((root / "bot" / "faq_answers.yml").read_text(encoding="utf-8")) \
        if (root / "bot" / "faq_answers.yml").exists() else \
        yaml.safe_load((PROJECT_ROOT / "bot" / "faq_answers.yml").read_text(encoding="utf-8"))
    return sorted(names) + sorted(f"faq/{k}" for k in faq)


def _existing_examples(root: Path) -> Dict[str, str]:
    """plain text → intent over data/nlu except the annotations file."""
    found: Dict[str, str] = {}
    for path in sorted((root / "data" / "nlu").glob("*.yml")):
        if path.name == ANNOTATED.name:
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in doc.get("nlu", []) or []:
            if "intent" in block and isinstance(block.get("examples"), str):
                for raw in block["examples"].splitlines():
                    raw = raw.strip()
                    if raw.startswith("- "):
                        found[_plain(raw[2:].strip())] = block["intent"]
    return found


def read_annotations(root: Path | None = None) -> Dict[str, List[str]]:
    path = (root or project_dir()) / ANNOTATED
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
           "# Written by `python -m bot.training.admin annotate` / the console's 训练 page: examples",
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


def _mark_entities(text: str, entities: List[Dict[str, Any]]) -> str:
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


TOPIC_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


def add_faq_topic(topic: str, answer: str, root: Path | None = None) -> None:
    """A new FAQ topic: its answer appended to bot/faq_answers.yml and responses re-rendered."""
    root = root or project_dir()
    if not TOPIC_RE.match(topic or ""):
        raise AdminError("topic: lower-case letters, digits and '_' (e.g. gift_wrap)")
    answer = (answer or "").strip()
    if not answer or len(answer) > 1000 or "{" in answer or "}" in answer:
        raise AdminError("answer: 1-1000 characters, no braces")
    path = root / "bot" / "faq_answers.yml"
    current = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if topic in current:
        raise AdminError(f"FAQ topic {topic} exists already")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{topic}: {json.dumps(answer, ensure_ascii=False)}\n")
    render_faq(root)


def render_faq(root: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    if root == PROJECT_ROOT:
        subprocess.run([sys.executable, "-m", "bot.training.responses"], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return
    # a copy of the project: render with that copy's templates into that copy
    code = ("import sys; from pathlib import Path; import bot.training.responses as r; root=Path(sys.argv[1]);"
            "r.FAQ_TEMPLATES=root/'bot'/'faq_answers.yml'; r.OUTPUT=root/'data'/'responses'/'rendered.yml';"
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
        marked = _mark_entities(example, entities or [])
        existing = _existing_examples(root).get(example)
        if existing and existing != intent:
            raise AdminError(f"「{example}」 is already a training example of {existing}")
        blocks = read_annotations(root)
        for other, examples in blocks.items():     # one text, one intent: the latest wins
            blocks[other] = [e for e in examples if _plain(e) != example]
        if not existing:
            blocks.setdefault(intent, []).append(marked)
        path = root / ANNOTATED
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(render_annotations(blocks), encoding="utf-8")
        tmp.replace(path)

    def record(session):
        row = session.scalars(select(Annotation).where(Annotation.message_id == message_id)).first()
        if row is None:
            row = Annotation(message_id=message_id, conversation_id=conversation)
            session.add(row)
        row.intent, row.example, row.actor, row.at = intent, marked, actor, _now()
    retrying(record, engine=get_engine())
    return {"message_id": message_id, "intent": intent, "example": marked,
            "file": str(ANNOTATED), "already_in_training_data": bool(existing)}


# --- train -------------------------------------------------------------------------------------


def _rasa() -> str:
    return str(Path(sys.executable).with_name("rasa"))


def _env() -> Dict[str, str]:
    return rasa_env()


def candidate_name(root: Path) -> str:
    from bot.training.model_cache import data_hash

    return f"kefu-{data_hash(root)}"


PROGRESS_RE = re.compile(r"(Epochs:\s+\d+%)|Starting to train component '([^']+)'|"
                         r"Restored component '([^']+)'")


class Trainer:
    """One training at a time; a request while one runs is queued (and told its place)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queue: List[int] = []
        self.current: Optional[int] = None
        self.live: Dict[int, Dict[str, Any]] = {}     # run id → progress while it runs
        self._wake = threading.Condition(self.lock)
        self._worker: Optional[threading.Thread] = None

    # -- state kept in SQL (the CLI and every gateway see the same runs)
    def request(self, actor: str, mode: str = "full", base_model: str | None = None) -> Dict[str, Any]:
        if mode not in ("full", "finetune"):
            raise AdminError("mode: full or finetune")
        if mode == "finetune" and not base_model:
            raise AdminError("finetune needs the live model")

        def work(session):
            run = TrainingRun(status="queued", mode=mode, requested_by=actor, base_model=base_model,
                              created_at=_now())
            session.add(run)
            session.flush()
            return run.id
        run_id = retrying(work, engine=get_engine())
        with self.lock:
            self.queue.append(run_id)
            ahead = len(self.queue) - 1 + (1 if self.current is not None else 0)
            self._wake.notify()
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, daemon=True, name="kefu-train")
                self._worker.start()
        return {"run": run_id, "queued_behind": ahead,
                "message": f"已排队：前面还有 {ahead} 个训练" if ahead else "训练已开始"}

    def _loop(self) -> None:
        while True:
            with self.lock:
                while not self.queue:
                    if not self._wake.wait(timeout=60):
                        self._worker = None
                        return
                run_id = self.queue.pop(0)
                self.current = run_id
            try:
                run_training(run_id, progress=self.live.setdefault(run_id, {}))
            finally:
                with self.lock:
                    self.current = None
                    self.live.pop(run_id, None)

    def status(self, run_id: int | None = None) -> Dict[str, Any]:
        runs = recent_runs(10)
        with self.lock:
            live = {k: dict(v) for k, v in self.live.items()}
            queued = list(self.queue)
        for run in runs:
            run.update(live.get(run["id"], {}))
            if run["id"] in queued:
                run["position"] = queued.index(run["id"]) + 1
        return {"runs": runs, "expected_seconds": expected_seconds()}


def expected_seconds(mode: str = "full") -> float:
    def work(session):
        return session.scalars(select(TrainingRun.seconds).where(
            TrainingRun.status == "succeeded", TrainingRun.mode == mode)
            .order_by(TrainingRun.id.desc()).limit(3)).all()
    seconds = [s for s in retrying(work, engine=get_engine()) if s]
    return round(sorted(seconds)[len(seconds) // 2], 1) if seconds else EXPECTED_DEFAULT[mode]


def _run_json(run: TrainingRun) -> Dict[str, Any]:
    return {"id": run.id, "status": run.status, "mode": run.mode, "requested_by": run.requested_by,
            "created_at": run.created_at.isoformat() if run.created_at else None,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "seconds": run.seconds, "model": run.model, "base_model": run.base_model,
            "error": run.error}


def recent_runs(limit: int = 10) -> List[Dict[str, Any]]:
    def work(session):
        return [_run_json(r) for r in session.scalars(
            select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit))]
    return retrying(work, engine=get_engine())


def get_run(run_id: int) -> Optional[Dict[str, Any]]:
    def work(session):
        run = session.get(TrainingRun, run_id)
        return _run_json(run) if run else None
    return retrying(work, engine=get_engine())


def _update_run(run_id: int, **values) -> None:
    def work(session):
        run = session.get(TrainingRun, run_id)
        for key, value in values.items():
            setattr(run, key, value)
    retrying(work, engine=get_engine())


def _stream(cmd: List[str], cwd: Path, progress: Dict[str, Any], log: Path) -> tuple[int, str]:
    """Run a command, keeping its last lines; tqdm's \\r-separated bars count as lines."""
    tail: List[str] = []
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        buffer = b""
        while True:
            chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
            if not chunk:
                break
            fh.write(chunk)
            buffer += chunk
            parts = re.split(rb"[\r\n]", buffer)
            buffer = parts.pop()
            for raw in parts:
                line = mask_text(raw.decode("utf-8", "replace")).strip()
                if not line:
                    continue
                tail = (tail + [line])[-40:]
                match = PROGRESS_RE.search(line)
                if match:
                    if match.group(2) or match.group(3):
                        progress["component"] = match.group(2) or match.group(3)
                    if match.group(1):
                        progress["epochs"] = match.group(1).split()[-1]
                progress["last_line"] = line[-160:]
        proc.wait()
    return proc.returncode, "\n".join(tail[-15:])


def mark_interrupted() -> int:
    """Runs left 'running' by a process that died: failed, if no training holds the lock."""
    lock_path = TRAIN_LOCK
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0                      # a training is running somewhere: leave it be

        def work(session):
            runs = session.scalars(select(TrainingRun).where(TrainingRun.status == "running")).all()
            for run in runs:
                run.status, run.error, run.finished_at = "failed", "interrupted (process stopped)", _now()
            return len(runs)
        return retrying(work, engine=get_engine())


def run_training(run_id: int, progress: Dict[str, Any] | None = None) -> Dict[str, Any]:
    """validate → train; the live model is never touched here (activation is separate)."""
    progress = progress if progress is not None else {}
    root = project_dir()
    run = get_run(run_id)
    lock_path = TRAIN_LOCK
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        progress["phase"] = "waiting"
        fcntl.flock(lock, fcntl.LOCK_EX)      # one training at a time, CLI and gateways alike
        started = time.monotonic()
        progress.update(phase="validate", started=time.time(),
                        expected_seconds=expected_seconds(run["mode"]))
        _update_run(run_id, status="running", started_at=_now())
        log = results_dir() / f"train-{run_id}.log"
        try:
            if root == PROJECT_ROOT:
                render_faq(root)
            code, tail = _stream([_rasa(), "data", "validate", "--data", "data", "--domain",
                                  "domain.yml", "--config", "config.yml"], root, progress, log)
            if code != 0:
                raise AdminError("rasa data validate failed:\n" + tail)
            progress["phase"] = "train"
            name = candidate_name(root)
            out = models_dir()
            out.mkdir(parents=True, exist_ok=True)
            cmd = [_rasa(), "train", "--config", "config.yml", "--domain", "domain.yml",
                   "--data", "data", "--out", str(out), "--fixed-model-name", name]
            if run["mode"] == "finetune":
                cmd += ["--finetune", run["base_model"], "--epoch-fraction",
                        os.environ.get("KEFU_FINETUNE_FRACTION", "0.5")]
            code, tail = _stream(cmd, root, progress, log)
            model = out / f"{name}.tar.gz"
            if code != 0 or not model.exists():
                raise AdminError("rasa train failed:\n" + tail)
        except Exception as exc:                 # the live model is untouched
            _update_run(run_id, status="failed", finished_at=_now(), error=str(exc)[-4000:],
                        seconds=round(time.monotonic() - started, 1))
            progress["phase"] = "failed"
            return get_run(run_id)
        _update_run(run_id, status="succeeded", finished_at=_now(), model=str(model),
                    seconds=round(time.monotonic() - started, 1))
        progress["phase"] = "done"
        return get_run(run_id)


# --- compare -----------------------------------------------------------------------------------


def _evaluate(nlu: Path, model: Path, out: Path) -> Dict[str, Any]:
    from bot.training.evaluate import summarise

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    proc = subprocess.run([_rasa(), "test", "nlu", "--nlu", str(nlu), "--model", str(model),
                           "--out", str(out), "--no-plot", "--successes"],
                          cwd=project_dir(), env=_env(), stdout=subprocess.PIPE,
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


SCORES = ("intent_accuracy", "intent_macro_f1", "faq_response_accuracy")


def compare(candidate: Path, live: Path) -> Dict[str, Any]:
    root = project_dir()
    key = Path(candidate).name.replace(".tar.gz", "")
    work = results_dir() / f"compare-{key}"
    data = test_data(root, work / "data")
    new = _evaluate(data, Path(candidate), work / "candidate")
    old = _evaluate(data, Path(live), work / "live")
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
        "candidate": str(candidate), "live": str(live), "at": _now().isoformat(),
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


# --- activate / roll back ----------------------------------------------------------------------


def activations(limit: int = 50) -> List[Dict[str, Any]]:
    def work(session):
        return [{"id": a.id, "at": a.at.isoformat(), "actor": a.actor, "kind": a.kind,
                 "model": a.model, "previous_model": a.previous_model, "scores": a.scores,
                 "override_reason": a.override_reason}
                for a in session.scalars(select(ModelActivation).order_by(ModelActivation.id.desc())
                                         .limit(limit))]
    return retrying(work, engine=get_engine())


def check_activation(model: str, live: str | None, override_reason: str | None) -> Dict[str, Any]:
    """The comparison's scores; refuses a worse (or never compared) model without a reason."""
    if not Path(model).exists():
        raise AdminError("no such model file")
    if live and Path(live).resolve() == Path(model).resolve():
        raise AdminError("this model is live already")
    result = comparison_for(model)
    reason = (override_reason or "").strip()
    if result is None and not reason:
        raise AdminError("compare the candidate with the live model first (or override with a reason)")
    if result and result["worse"] and not reason:
        raise AdminError("the candidate is worse than the live model on "
                         + ", ".join(result["worse"]) + "; an admin may override with a reason")
    return {"scores": result["scores"] if result else None, "reason": reason or None}


def record_activation(model: str, previous: str | None, actor: str, kind: str,
                      scores: Any, reason: str | None) -> Dict[str, Any]:
    def work(session):
        row = ModelActivation(model=str(model), previous_model=previous, actor=actor, kind=kind,
                              scores=scores, override_reason=reason, at=_now())
        session.add(row)
        session.flush()
        return row.id
    retrying(work, engine=get_engine())
    prune_models(keep=str(model))
    return activations(1)[0]


def rollback_target(live: str | None) -> str:
    """The model that was live before the current one (skipping ones since deleted)."""
    history = activations(200)
    for row in history:
        if live and Path(row["model"]).resolve() != Path(live).resolve():
            continue
        previous = row["previous_model"]
        if previous and Path(previous).exists():
            return previous
        break
    raise AdminError("nothing to roll back to")


def prune_models(keep: str) -> List[str]:
    """Keep the last N activated models; delete older ones this loop trained (never others)."""
    history = activations(500)
    kept: List[str] = []
    for row in history:
        for path in (row["model"], row["previous_model"]):
            if path and path not in kept:
                kept.append(path)
    kept = kept[:keep_models()] + [keep]

    def trained(session):
        return session.scalars(select(TrainingRun.model).where(TrainingRun.model.isnot(None))).all()
    removed = []
    for path in set(retrying(trained, engine=get_engine())):
        if path not in kept and Path(path).exists() and path not in [r["model"] for r in history[:keep_models()]]:
            if any(path == r["model"] for r in history):
                Path(path).unlink()
                removed.append(path)
    return removed


def resolve_model(name: str | None) -> Optional[str]:
    """Rasa's ``/status`` names its model file without a folder: find the archive's path."""
    if not name:
        return None
    if os.path.isabs(name) and Path(name).exists():
        return str(Path(name))
    base = Path(name).name
    for folder in (models_dir(), PROJECT_ROOT / "models"):
        if (folder / base).exists():
            return str(folder / base)
    known = [a["model"] for a in activations(200)] + [r["model"] for r in recent_runs(200) if r["model"]]
    return next((m for m in known if Path(m).name == base and Path(m).exists()), name)


def put_model(rasa_url: str, token: str | None, model: str, timeout: float = 300) -> None:
    """Headless: load a model into a running Rasa (every replica) via its HTTP API."""
    import urllib.request

    for base in [u.strip().rstrip("/") for u in rasa_url.split(",") if u.strip()]:
        url = f"{base}/model" + (f"?token={token}" if token else "")
        request = urllib.request.Request(url, data=json.dumps({"model_file": model}).encode(),
                                         method="PUT", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout):
            pass


def live_model_from(rasa_url: str, token: str | None) -> Optional[str]:
    import urllib.request

    base = rasa_url.split(",")[0].strip().rstrip("/")
    url = f"{base}/status" + (f"?token={token}" if token else "")
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resolve_model(json.load(resp).get("model_file"))


# --- CLI -------------------------------------------------------------------------------------------


def _print(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=1, default=str))


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.training.admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who (audit log)")
    parser.add_argument("--trackers", default=str(PROJECT_ROOT / "var" / "trackers.db"),
                        help="Rasa's SQLite tracker store")
    parser.add_argument("--rasa-url", default=os.environ.get("KEFU_RASA_URL", "http://127.0.0.1:5005"))
    parser.add_argument("--gateway", default=f"http://127.0.0.1:{os.environ.get('KEFU_PORT', '8000')}")
    parser.add_argument("--user", help="admin account: activate/rollback through the gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inbox")
    p.add_argument("--filter", choices=FILTERS)
    p = sub.add_parser("annotate")
    p.add_argument("message_id", type=int)
    p.add_argument("intent")
    p.add_argument("--text")
    p.add_argument("--entity", action="append", default=[], help="value=type")
    p.add_argument("--answer", help="answer of a new FAQ topic (intent faq/<new topic>)")
    p = sub.add_parser("train")
    p.add_argument("--finetune", metavar="BASE_MODEL")
    p = sub.add_parser("compare")
    p.add_argument("candidate")
    p.add_argument("--live")
    for name in ("activate", "rollback"):
        p = sub.add_parser(name)
        if name == "activate":
            p.add_argument("model")
        p.add_argument("--reason", default=None)
    sub.add_parser("log")
    args = parser.parse_args(argv)
    token = os.environ.get("KEFU_RASA_TOKEN")
    try:
        if args.command == "inbox":
            items = inbox(sql_tracker_events(args.trackers), args.filter)
            for item in items:
                flags = ",".join(k for k in ("low_confidence", "fallback", "handoff", "rephrased") if item[k])
                print(f"{item['id']}\t{item['intent']}\t{item['confidence']}\t{flags}\t{item['text']}")
            return 0
        if args.command == "annotate":
            entities = [dict(zip(("value", "entity"), e.rsplit("=", 1))) for e in args.entity]
            _print(annotate(args.message_id, args.intent, actor=args.actor, text=args.text,
                            entities=entities, answer=args.answer))
            return 0
        if args.command == "train":
            mode = "finetune" if args.finetune else "full"

            def work(session):
                run = TrainingRun(status="queued", mode=mode, requested_by=args.actor,
                                  base_model=args.finetune, created_at=_now())
                session.add(run)
                session.flush()
                return run.id
            run_id = retrying(work, engine=get_engine())
            print(f"training run {run_id} ({mode}); expected ~{expected_seconds(mode):.0f} s", flush=True)
            result = run_training(run_id)
            _print(result)
            return 0 if result["status"] == "succeeded" else 1
        if args.command == "compare":
            live = args.live or live_model_from(args.rasa_url, token)
            result = compare(Path(args.candidate), Path(live))
            _print({k: v for k, v in result.items() if k != "per_intent"})
            return 0
        if args.command == "log":
            _print(activations())
            return 0
        if args.user:
            return _via_gateway(args)
        live = live_model_from(args.rasa_url, token)
        if args.command == "activate":
            check = check_activation(args.model, live, args.reason)
            model, kind = str(Path(args.model).resolve()), "activate"
        else:
            model, kind = rollback_target(live), "rollback"
            check = {"scores": (comparison_for(model) or {}).get("scores"), "reason": args.reason}
        put_model(args.rasa_url, token, model)
        _print(record_activation(model, live, args.actor, kind, check["scores"], check["reason"]))
        return 0
    except AdminError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _via_gateway(args) -> int:
    import getpass
    import http.cookiejar
    import urllib.error
    import urllib.request

    password = os.environ.get("KEFU_ADMIN_PASSWORD") or getpass.getpass(f"password for {args.user}: ")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def post(path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        request = urllib.request.Request(args.gateway.rstrip("/") + path, method="POST",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with opener.open(request, timeout=900) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise AdminError(json.loads(err.read() or b"{}").get("error", str(err.code)))
    try:
        post("/api/agent/login", {"name": args.user, "password": password})
        body: Dict[str, Any] = {"reason": args.reason} if args.reason else {}
        if args.command == "activate":
            body["model"] = str(Path(args.model).resolve())
        _print(post(f"/api/admin/{args.command}", body))
        return 0
    except AdminError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
