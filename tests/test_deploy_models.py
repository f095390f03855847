"""The shared model volume's two helpers (deploy/): ``deploy.seed`` fills the volume once and
never overwrites what admins taught the bot there; ``deploy.rasa_replica`` starts a replica
with the model that is live (the newest activation whose archive exists), so a replica that
restarts serves what the others serve, and takes Rasa's token from the environment only.
Against a real SQLite database with the project's schema and real files."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from deploy import rasa_replica, seed

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """A scratch database and a project folder on a 'shared volume' (tmp_path/shared)."""
    from bot.store.engine import engine_for

    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path / 'kefu.db'}")
    monkeypatch.setenv("KEFU_ADMIN_PROJECT", str(tmp_path / "shared" / "project"))
    monkeypatch.delenv("KEFU_MODEL", raising=False)
    yield tmp_path / "shared" / "project"
    engine_for.cache_clear()


def _archive(folder: Path, name: str, age: float = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"not a real model")
    when = dt.datetime.now().timestamp() - age
    os.utime(path, (when, when))
    return path


def _activate(model: Path, kind: str = "activate") -> None:
    from bot.store.engine import get_engine, retrying
    from bot.store.schema import ModelActivation

    def work(session):
        session.add(ModelActivation(model=str(model), actor="admin", kind=kind,
                                    at=dt.datetime.now(dt.timezone.utc)))
    retrying(work, engine=get_engine())


def test_before_any_activation_the_seeded_model(shared):
    models = shared / "models"
    assert rasa_replica.live_model() is None
    _archive(models, "kefu-aaaa.tar.gz", age=100)
    newest = _archive(models, "kefu-bbbb.tar.gz", age=10)
    _archive(models, "20261201-candidate.tar.gz")              # trained, never activated
    assert rasa_replica.live_model() == newest


def test_kefu_model_wins_over_the_seeded_one(shared, monkeypatch, tmp_path):
    _archive(shared / "models", "kefu-bbbb.tar.gz")
    chosen = _archive(tmp_path, "kefu-chosen.tar.gz", age=500)
    monkeypatch.setenv("KEFU_MODEL", str(chosen))
    assert rasa_replica.live_model() == chosen


def test_the_newest_activation_is_live_and_a_rollback_counts(shared):
    models = shared / "models"
    _archive(models, "kefu-seed.tar.gz")
    first, second = _archive(models, "cand-1.tar.gz"), _archive(models, "cand-2.tar.gz")
    _activate(first)
    assert rasa_replica.live_model() == first
    _activate(second)
    assert rasa_replica.live_model() == second
    _activate(first, kind="rollback")
    assert rasa_replica.live_model() == first


def test_a_missing_archive_falls_back_to_the_activation_before(shared, capsys):
    models = shared / "models"
    kept, gone = _archive(models, "cand-1.tar.gz"), _archive(models, "cand-2.tar.gz")
    _activate(kept)
    _activate(gone)
    gone.unlink()
    assert rasa_replica.live_model() == kept
    assert "cand-2.tar.gz is missing" in capsys.readouterr().err


def test_rasa_arguments_token_once_and_overridable_endpoints(tmp_path):
    model = tmp_path / "m.tar.gz"
    args = rasa_replica.rasa_arguments(["--interface", "0.0.0.0", "--port", "5005"], model, "t0k")
    assert args[:2] == ["run", "--enable-api"] and args.count("--auth-token=t0k") == 1
    assert args[args.index("--model") + 1] == str(model)
    assert args[args.index("--endpoints") + 1] == str(ROOT / "deploy" / "endpoints.yml")
    assert args[-4:] == ["--interface", "0.0.0.0", "--port", "5005"]
    own = rasa_replica.rasa_arguments(["--endpoints", "mine.yml"], model, "t0k")
    assert own.count("--endpoints") == 1 and own[-1] == "mine.yml"


def test_the_launcher_refuses_a_token_on_its_command_line_and_a_missing_one(shared, monkeypatch):
    monkeypatch.setenv("KEFU_RASA_TOKEN", "t0k")
    with pytest.raises(SystemExit, match="never the command line"):
        rasa_replica.main(["--auth-token", "t0k"])
    monkeypatch.delenv("KEFU_RASA_TOKEN")
    with pytest.raises(SystemExit, match="set KEFU_RASA_TOKEN"):
        rasa_replica.main([])
    monkeypatch.setenv("KEFU_RASA_TOKEN", "t0k")
    with pytest.raises(SystemExit, match="no model"):
        rasa_replica.main([])


def test_seed_copies_the_training_inputs_once_and_keeps_what_admins_taught(shared):
    assert seed.seed_project(shared) is True
    for name in ("domain.yml", "config.yml", "credentials.yml", "data/nlu", "tests/nlu"):
        assert (shared / name).exists(), name
    assert (shared / "domain.yml").read_bytes() == (ROOT / "domain.yml").read_bytes()
    taught = shared / "data" / "nlu" / "annotated.yml"
    taught.write_text("version: \"3.1\"\nnlu: []\n# an admin's annotations\n")
    assert seed.seed_project(shared) is False
    assert "an admin's annotations" in taught.read_text()
    assert not [p for p in shared.parent.iterdir() if p.name.startswith(".")]   # no staging left


def test_seed_loses_the_race_cleanly(shared, tmp_path, monkeypatch):
    """Two pods both find no project and both copy; the other pod's rename lands first."""
    import bot.training.project as project_module

    other = seed.seed_project(tmp_path / "other-pod") and tmp_path / "other-pod"
    (other / "from-the-other-pod").write_text("x")
    real_copy = project_module.copy_project

    def copy_while_the_other_pod_finishes(dest, source):
        done = real_copy(dest, source)
        shared.parent.mkdir(parents=True, exist_ok=True)
        os.rename(other, shared)
        return done
    monkeypatch.setattr(project_module, "copy_project", copy_while_the_other_pod_finishes)
    assert seed.seed_project(shared) is False
    assert (shared / "from-the-other-pod").exists()                  # the winner's copy, untouched
    assert [p.name for p in shared.parent.iterdir()] == ["project"]    # the loser's staging removed


def test_seed_model_only_into_an_empty_volume(shared, tmp_path):
    image = _archive(tmp_path / "image", "kefu-cafe.tar.gz")
    models = shared / "models"
    assert seed.seed_model(models, image) == models / "kefu-cafe.tar.gz"
    assert (models / "kefu-cafe.tar.gz").read_bytes() == image.read_bytes()
    newer = _archive(tmp_path / "image2", "kefu-beef.tar.gz")
    assert seed.seed_model(models, newer) is None                  # a model is there already
    assert sorted(p.name for p in models.iterdir()) == ["kefu-cafe.tar.gz"]
    with pytest.raises(SystemExit, match="has no model"):
        seed.seed_model(tmp_path / "empty", tmp_path / "missing.tar.gz")
