"""Training runs: ``rasa data validate`` then ``rasa train`` (full, or ``--finetune`` of the
live model) into a candidate model, never touching the live one (activation is separate).

Runs are rows in SQL (``training_runs``), so the CLI and every gateway see the same runs;
one training at a time on this machine (a file lock, ``var/admin-train.lock``, held by
whichever process trains). :class:`Trainer` is the gateway's background queue (a thread in
the gateway process, bot/training/admin_api.py); the CLI (``python -m bot.training train``)
calls :func:`run_training` in its own process. Rasa runs as a child process of either, at
the lowest CPU and I/O priority (:func:`low_priority`): the live Rasa on the same cores comes
first (README, "Performance": live latency during a retrain, ``make bench
BENCH_ARGS=--retrain-mid-run``).
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from sqlalchemy import select

from bot.brain.rasa_server import rasa_env, train_command
from bot.profile.business import PROJECT_ROOT
from bot.profile.privacy import mask_text
from bot.store.engine import get_engine, retrying
from bot.store.schema import TrainingRun
from bot.profile import pack as packs
from bot.training.annotations import render_faq
from bot.training.assemble import assemble
from bot.training.project import AdminError, models_dir, now, project_dir, rasa_command, results_dir
from bot.settings import setting

EXPECTED_DEFAULT = {"full": 150.0, "finetune": 75.0}
TRAIN_LOCK = PROJECT_ROOT / "var" / "admin-train.lock"   # one training at a time on this machine
PROGRESS_RE = re.compile(r"(Epochs:\s+\d+%)|Starting to train component '([^']+)'|"
                         r"Restored component '([^']+)'")


def candidate_name(root: Path) -> str:
    from bot.training.model_cache import data_hash

    return f"{packs.load().name}-{data_hash(root)}"       # models/<business>-<hash>.tar.gz


def create_run(actor: str, mode: str, base_model: str | None = None) -> int:
    """A queued training run (its id)."""
    def work(session):
        run = TrainingRun(status="queued", mode=mode, requested_by=actor, base_model=base_model,
                          created_at=now())
        session.add(run)
        session.flush()
        return run.id
    return retrying(work, engine=get_engine())


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
        run_id = create_run(actor, mode, base_model)
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


def update_run(run_id: int, **values) -> None:
    def work(session):
        run = session.get(TrainingRun, run_id)
        for key, value in values.items():
            setattr(run, key, value)
    retrying(work, engine=get_engine())


def low_priority(cmd: List[str]) -> tuple[List[str], Any]:
    """``cmd`` made polite: CPU nice ``KEFU_TRAIN_NICE`` (19) and I/O best-effort 7, so a
    retrain on the live bot's cores takes only the CPU it leaves. Through ``nice`` and
    ``ionice`` when they exist (no ``preexec_fn``: the gateway that starts it has threads);
    without ``nice``, the child lowers itself. Returns the command and that ``preexec_fn``."""
    level = setting("KEFU_TRAIN_NICE")
    if level <= 0:
        return cmd, None
    ionice, nice = shutil.which("ionice"), shutil.which("nice")
    if ionice:
        cmd = [ionice, "-c", "2", "-n", "7", *cmd]
    if nice:
        return [nice, "-n", str(level), *cmd], None
    return cmd, lambda: os.nice(level)


def _stream(cmd: List[str], cwd: Path, progress: Dict[str, Any], log: Path) -> tuple[int, str]:
    """Run a command at low priority, keeping its last lines; tqdm's \\r-separated bars
    count as lines."""
    tail: List[str] = []
    cmd, lower = low_priority(cmd)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=rasa_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=lower)
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
                run.status, run.error, run.finished_at = "failed", "interrupted (process stopped)", now()
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
        update_run(run_id, status="running", started_at=now())
        log = results_dir() / f"train-{run_id}.log"
        try:
            if root == PROJECT_ROOT:
                render_faq(root)
            # the business pack's domain, data and pipeline (KEFU_BUSINESS), as `make train` has them
            inputs = assemble(packs.load(root=root))
            code, tail = _stream([rasa_command(), "data", "validate", *inputs.args()], root, progress, log)
            if code != 0:
                raise AdminError("rasa data validate failed:\n" + tail)
            progress["phase"] = "train"
            name = candidate_name(root)
            out = models_dir()
            out.mkdir(parents=True, exist_ok=True)
            # validated just above: rasa train's own copy of those checks would cost ~11 s of CPU
            cmd = [*train_command(), "--skip-validation", *inputs.args(), "--out", str(out),
                   "--fixed-model-name", name]
            if run["mode"] == "finetune":
                cmd += ["--finetune", run["base_model"], "--epoch-fraction",
                        str(setting("KEFU_FINETUNE_FRACTION"))]
            code, tail = _stream(cmd, root, progress, log)
            model = out / f"{name}.tar.gz"
            if code != 0 or not model.exists():
                raise AdminError("rasa train failed:\n" + tail)
        except Exception as exc:                 # the live model is untouched
            update_run(run_id, status="failed", finished_at=now(), error=str(exc)[-4000:],
                       seconds=round(time.monotonic() - started, 1))
            progress["phase"] = "failed"
            return get_run(run_id)
        update_run(run_id, status="succeeded", finished_at=now(), model=str(model),
                   seconds=round(time.monotonic() - started, 1))
        progress["phase"] = "done"
        return get_run(run_id)
