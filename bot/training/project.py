"""Where the admins' retraining loop works: the project's data (or a copy), its models and
results folders, and the error every step of the loop refuses with.

Runs in the gateway (the console's 训练 page, bot/training/admin_api.py) and in the CLI
(``python -m bot.training``). ``KEFU_ADMIN_PROJECT`` points the loop at another copy of the
project's data (the tests retrain in a temporary copy made by :func:`copy_project`).
"""
from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

from bot.profile.business import PROJECT_ROOT
from bot.training.model_cache import INPUTS as MODEL_INPUTS
from bot.settings import setting


class AdminError(ValueError):
    """A request the admin loop refuses (with a reason an admin can act on)."""


def project_dir() -> Path:
    return setting("KEFU_ADMIN_PROJECT").resolve()


def models_dir() -> Path:
    return project_dir() / "models"


def results_dir() -> Path:
    path = project_dir() / "results" / "admin"
    path.mkdir(parents=True, exist_ok=True)
    return path


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rasa_command() -> str:
    """The ``rasa`` executable of this virtualenv."""
    return str(Path(sys.executable).with_name("rasa"))


def _evaluation_sets() -> set:
    """Every pack's held-out split and frozen blind report set (what ``compare`` scores on)."""
    from bot.profile import pack as packs

    found = set()
    for name in packs.names():
        evaluation = packs.load(name).evaluation
        if evaluation.get("own_split"):
            found.add(evaluation["own_split"])
        if evaluation.get("blind"):
            found.add(evaluation["blind"] + "/report")
    return found


# what training reads (the model cache's inputs) plus what retraining needs beside them
PROJECT_FILES = sorted(set(MODEL_INPUTS) | {"credentials.yml", "tests/nlu"} | _evaluation_sets())


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
