"""Retraining runs below the live bot (issue 18 item 13): rasa validate/train as children at
nice 19 and I/O best-effort 7, so the live Rasa on the same two cores keeps the CPU.
(The latency it keeps is measured by ``make bench BENCH_ARGS=--retrain-mid-run``.)"""
from __future__ import annotations

import os
import shutil
import stat

import pytest

from bot.training import trainer


@pytest.fixture
def fake_rasa(tmp_path, monkeypatch):
    """A ``rasa`` that reports the priority it runs at, then fails (nothing is trained)."""
    script = tmp_path / "rasa"
    script.write_text("#!/bin/sh\necho \"nice $(nice)\"\n"
                      "command -v ionice >/dev/null && echo \"io $(ionice -p $$)\"\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(trainer, "rasa_command", lambda: str(script))
    from bot.training.project import copy_project   # training reads the business pack's inputs

    monkeypatch.setenv("KEFU_ADMIN_PROJECT", str(copy_project(tmp_path / "project")))
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/kefu.db")
    return script


def test_a_training_run_executes_rasa_at_the_lowest_priority(fake_rasa):
    run = trainer.run_training(trainer.create_run("admin", "full"))
    assert run["status"] == "failed"
    expected = min(os.nice(0) + 19, 19)          # nice adds to the current level
    assert f"nice {expected}" in run["error"], run["error"]
    if shutil.which("ionice"):
        assert "io best-effort: prio 7" in run["error"], run["error"]


def test_priority_is_a_setting(fake_rasa, monkeypatch):
    monkeypatch.setenv("KEFU_TRAIN_NICE", "0")
    run = trainer.run_training(trainer.create_run("admin", "full"))
    assert f"nice {os.nice(0)}" in run["error"], run["error"]
