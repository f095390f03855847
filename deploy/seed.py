"""Prepare the shared model volume before the gateways and Rasa replicas start.

    python -m deploy.seed        (compose: the one-shot ``seed`` service; Kubernetes: an
                                  init container of the gateway and of every Rasa replica)

In the scaled topology one volume (compose: ``shared``; Kubernetes: the ReadWriteMany claim
``kefu-shared``) is mounted at /kefu/shared by every gateway and every Rasa replica, and
``KEFU_ADMIN_PROJECT=/kefu/shared/project`` points the admins' retraining loop at it: the
annotations, FAQ answers, training runs' models, comparisons and logs all land there, never on
one container's disk, and a model an admin activates is a path every replica can load.

This step, idempotent and safe when several pods run it at once:

1. copies the image's training inputs into ``KEFU_ADMIN_PROJECT`` when it has none yet (into a
   temporary folder, then one atomic rename: a second pod's copy is discarded, never mixed in).
   Later image upgrades do not overwrite what admins taught the bot there;
2. puts the image's own model (trained when the image was built, deploy/Dockerfile) into its
   ``models/`` when it holds no ``<business>-*.tar.gz`` yet (written under a temporary name, then
   renamed): the model Rasa replicas start with before any activation (deploy/rasa_replica.py);
3. migrates the database (Alembic, under its advisory lock) so the replicas find the schema.
"""
from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Dict, Optional

from bot.profile.business import PROJECT_ROOT
from bot.settings import setting


def seed_project(project: Path, source: Path = PROJECT_ROOT) -> bool:
    """Copy the training inputs into ``project`` unless it has them; True if this call did."""
    from bot.training.project import copy_project

    if (project / "domain.yml").exists():
        return False
    project.parent.mkdir(parents=True, exist_ok=True)
    staging = project.parent / f".{project.name}.seed-{uuid.uuid4().hex[:8]}"
    copy_project(staging, source)
    try:
        os.rename(staging, project)          # atomic; fails when another pod's copy is there
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (project / "domain.yml").exists():
            raise
        return False
    return True


def seed_model(models: Path, model: Optional[Path]) -> Optional[Path]:
    """Put ``model`` into ``models`` when it has no model of this business yet
    (``<business>-*.tar.gz``, or a ``kefu-*.tar.gz`` from before packs); the path if this call did."""
    from bot.profile import pack

    models.mkdir(parents=True, exist_ok=True)
    if any(models.glob(f"{pack.load().name}-*.tar.gz")) or any(models.glob("kefu-*.tar.gz")):
        return None
    if model is None or not model.is_file():
        raise SystemExit(f"seed: {models} has no model and the image has none "
                         "(build the image with deploy/Dockerfile, which trains one)")
    staging = models / f".{model.name}.{uuid.uuid4().hex[:8]}"
    shutil.copyfile(model, staging)
    os.replace(staging, models / model.name)
    return models / model.name


def image_model() -> Path:
    """The archive ``make train`` / the image build made from these sources (not retrained here)."""
    from bot.training.model_cache import model_path

    return model_path()


def main() -> int:
    project = Path(setting("KEFU_ADMIN_PROJECT")).resolve()
    report: Dict[str, object] = {"project": str(project)}
    if project != PROJECT_ROOT.resolve():
        report["copied_inputs"] = seed_project(project)
    report["seeded_model"] = str(seed_model(project / "models", image_model()) or "")
    from bot.store.engine import get_engine

    get_engine()        # runs the migrations on first connect
    print("seed:", report, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
