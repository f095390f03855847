"""Which model is live: the rule for activating a candidate (compared and not worse, or an
admin's reason), the audit log ``model_activations`` (who, when, which model, previous model,
scores, override reason), the rollback target, pruning old models (``KEFU_KEEP_MODELS``),
and finding a model's archive from the name Rasa reports.

Runs in the gateway (the 训练 page loads the model through the gateway's RasaClient under its
swap lock, bot/training/admin_api.py) and in the CLI, which loads it into Rasa directly with
:func:`put_model` / :func:`live_model_from` (the same RasaClient, run with ``asyncio.run``).
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import aiohttp
from sqlalchemy import select

from bot.brain.rasa_client import RasaClient, RasaUnavailable
from bot.profile.business import PROJECT_ROOT
from bot.store.engine import get_engine, retrying
from bot.store.schema import ModelActivation, TrainingRun
from bot.training.compare import comparison_for
from bot.training.project import AdminError, models_dir, now
from bot.training.trainer import recent_runs
from bot.settings import setting


def keep_models() -> int:
    return max(1, setting("KEFU_KEEP_MODELS"))


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
                              scores=scores, override_reason=reason, at=now())
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


# --- headless: Rasa's HTTP API through RasaClient, for a process with no event loop (the CLI)


def _with_rasa(rasa_url: str, token: str | None, call):
    async def run():
        rasa = RasaClient(rasa_url, token=token)
        try:
            return await call(rasa)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
        finally:
            await rasa.close()
    return asyncio.run(run())


def put_model(rasa_url: str, token: str | None, model: str, timeout: float = 300) -> None:
    """Headless: load a model into a running Rasa (every replica) via its HTTP API."""
    _with_rasa(rasa_url, token, lambda rasa: rasa.load_model(model, timeout=timeout))


def live_model_from(rasa_url: str, token: str | None) -> Optional[str]:
    """Headless: the model the (first) running Rasa has loaded, as an archive path."""
    return resolve_model(_with_rasa(rasa_url, token, lambda rasa: rasa.live_model()))
