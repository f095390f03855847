"""One Rasa replica of the scaled topology (deploy/compose.yml, deploy/k8s/, deploy/Procfile).

    python -m deploy.rasa_replica --interface 0.0.0.0 --port 5005

Starts ``python -m bot.brain.rasa_server run`` (Rasa with the project's validator fix) *in this
process*, with

- ``--model``: the model that is live, so a replica that restarts (or is added) serves what the
  others serve: the newest activation in ``model_activations`` whose archive exists (the admin
  console and the CLI record every activation and rollback there, and load the archive from the
  shared model volume into every running replica); before any activation ``KEFU_MODEL``, else the
  newest ``<business>-*.tar.gz`` in ``KEFU_ADMIN_PROJECT``/models (put there by ``deploy.seed``);
- ``--auth-token`` from ``KEFU_RASA_TOKEN``: set in this process's arguments only after it
  started, so the token is not on any command line that ``ps`` or ``/proc/<pid>/cmdline`` shows;
- ``--enable-api``, ``--endpoints deploy/endpoints.yml`` (trackers in PostgreSQL, locks in
  Redis), ``--credentials credentials.yml`` unless given.

Other arguments (``--interface``, ``--port``, ...) go to ``rasa run`` unchanged.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

from sqlalchemy import select

from bot.profile.business import PROJECT_ROOT
from bot.settings import setting


def activated_models() -> List[str]:
    """Archives named by ``model_activations``, newest first (the first is the live one)."""
    from bot.store.engine import get_engine, retrying
    from bot.store.schema import ModelActivation

    def work(session):
        return list(session.scalars(select(ModelActivation.model).order_by(ModelActivation.id.desc())
                                    .limit(50)))
    return retrying(work, engine=get_engine(), write=False)


def live_model() -> Optional[Path]:
    """The archive this replica should load (None: there is none yet)."""
    for name in activated_models():
        if Path(name).is_file():
            return Path(name)
        print(f"rasa_replica: activated model {Path(name).name} is missing, trying the one before",
              file=sys.stderr, flush=True)
    explicit = setting("KEFU_MODEL")
    if explicit and Path(explicit).is_file():
        return Path(explicit)
    folder = Path(setting("KEFU_ADMIN_PROJECT")) / "models"
    from bot.profile import pack

    # this business's models (KEFU_BUSINESS), and those named kefu-* before packs existed
    found = list(folder.glob(f"{pack.load().name}-*.tar.gz")) + list(folder.glob("kefu-*.tar.gz"))
    seeds = sorted(found, key=lambda p: p.stat().st_mtime)
    return seeds[-1] if seeds else None


def rasa_arguments(extra: List[str], model: Path, token: str) -> List[str]:
    """``rasa run``'s arguments: the defaults above, then ``extra`` (which may override them)."""
    args = ["run", "--enable-api", f"--auth-token={token}", "--model", str(model)]   # a token may start with "-"
    if "--endpoints" not in extra:
        args += ["--endpoints", str(PROJECT_ROOT / "deploy" / "endpoints.yml")]
    if "--credentials" not in extra:
        args += ["--credentials", str(PROJECT_ROOT / "credentials.yml")]
    return args + extra


def main(argv: List[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    if "--auth-token" in extra:
        raise SystemExit("rasa_replica: the token comes from KEFU_RASA_TOKEN, never the command line")
    token = setting("KEFU_RASA_TOKEN")
    if not token:
        raise SystemExit("rasa_replica: set KEFU_RASA_TOKEN (the gateways use the same token)")
    model = live_model()
    if model is None:
        raise SystemExit("rasa_replica: no model: run `python -m deploy.seed` first, or set KEFU_MODEL")
    print(f"rasa_replica: loading {model}", flush=True)
    from bot.brain import rasa_server

    sys.argv = ["rasa", *rasa_arguments(extra, model, token)]
    return rasa_server.main()


if __name__ == "__main__":
    sys.exit(main())
