"""``python -m bot.brain.rasa_server run …``: Rasa's own command line, with one measured fix.

Rasa 3.6 checks every answer of the action server with ``jsonschema.validate(answer,
schema)``. That function first validates the *schema itself* against the JSON Schema
2020-12 meta-schema (``$dynamicRef`` resolution, slow in jsonschema 4.17), on every call,
although the schema never changes. Profiled with py-spy under 10 concurrent customers
(README, "Performance"), that re-check was 54 % of the Rasa process's CPU: every form
step calls the action server at least once.

:func:`install` replaces ``RemoteAction._validate_action_result`` with the same check
done by a validator built (and its schema checked) once per process: every answer is
still validated against Rasa's schema, and a bad one still raises the same
``ValidationError`` with Rasa's message. Everything else is ``rasa`` unchanged, so the
arguments are those of ``rasa run``, with two defaults of this project (:func:`run_arguments`):
loopback unless ``--interface`` is given, and the API token from ``KEFU_RASA_TOKEN`` (never
on the command line). ``--stock`` first runs Rasa's code without the fix (the bench's baseline).

``train`` (:func:`install_training`, :func:`train_command`) trains every node of the graph
every time, without Rasa's per-node training cache. That cache fingerprints each node's
whole output (every message, its tokens and features) after the node runs, and runs the
graph once more beforehand to compare fingerprints: on 7,049 examples that was 11 s of a
40 s ``rasa train nlu`` (README, issue 13). The project decides at the level of the whole
model whether to train (bot/training/model_cache.py: a hash of every input), and a retrain
changes the NLU data, which every NLU node below it depends on, so the cache could only
ever have saved the few seconds of the dialogue policies.
"""
from __future__ import annotations

import os
import socket
import sys
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text

from bot.profile.business import PROJECT_ROOT
from bot.settings import setting


def rasa_env(**extra: str) -> Dict[str, str]:
    """The environment of every Rasa process the project starts (run, train, test,
    validate): the project importable (its components), TensorFlow quiet, and no usage or
    crash reports sent to Rasa's servers: this machine, and a private deployment, talk
    to no one."""
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
            "RASA_TELEMETRY_ENABLED": "false", "PYTHONWARNINGS": "ignore", **extra}


@lru_cache(maxsize=1)
def action_result_validator():
    """Rasa's action-response schema, compiled once (``jsonschema.validate`` picks the
    same validator class, by the schema's ``$schema`` or the latest draft)."""
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _validate_action_result(self, result: Dict[Text, Any]) -> bool:
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    try:
        error = best_match(action_result_validator().iter_errors(result))
        if error is not None:
            raise error
        return True
    except ValidationError as e:
        e.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise e


def install() -> None:
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = _validate_action_result


def install_training() -> None:
    """``rasa train``: no fingerprint run and no per-node training cache (module docstring)."""
    from rasa.engine.graph import GraphNodeHook
    from rasa.engine.training import graph_trainer

    class NoCache(GraphNodeHook):
        """Stands where Rasa's TrainingHook (fingerprint and cache every output) stood."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def on_before_node(self, *args: Any, **kwargs: Any) -> Dict:
            return {}

        def on_after_node(self, *args: Any, **kwargs: Any) -> None:
            return None

    trainer = graph_trainer.GraphTrainer
    if getattr(trainer.train, "kefu_no_cache", False):
        return
    train = trainer.train

    def train_everything(self, *args: Any, **kwargs: Any):
        kwargs["force_retraining"] = True        # Rasa's own switch: skip the fingerprint run
        return train(self, *args, **kwargs)

    train_everything.kefu_no_cache = True
    graph_trainer.TrainingHook = NoCache
    trainer.train = train_everything


def train_command() -> List[str]:
    """``rasa train …`` as this project trains: this module's command line (install_training)."""
    return [sys.executable, "-m", "bot.brain.rasa_server", "train"]


STOCK = "--stock"       # first argument: Rasa's own code unchanged (the bench's stock baseline)


def _option(args: List[str], *names: str) -> Optional[str]:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def run_arguments(args: List[str]) -> List[str]:
    """``rasa run``'s arguments as this project runs Rasa:

    - on loopback unless ``--interface`` says otherwise (Rasa's own default is 0.0.0.0);
    - ``--auth-token`` from ``KEFU_RASA_TOKEN``, added here inside the process: a token on the
      command line is readable by any local user (``ps``, ``/proc/<pid>/cmdline``), and
      ``sys.argv`` is this process's copy, not its command line.
    """
    args = list(args)
    if _option(args, "--interface", "-i") is None:
        args += ["--interface", "127.0.0.1"]
    token = setting("KEFU_RASA_TOKEN")
    if token and _option(args, "--auth-token", "-t") is None:
        args += [f"--auth-token={token}"]      # one argument: a token may start with "-"
    return args


def port_problem(args: List[str]) -> Optional[str]:
    """Why ``rasa run`` could not listen where it is told to (None: it can). Rasa itself only
    logs a bind error and exits 0."""
    interface = _option(args, "--interface", "-i") or "0.0.0.0"
    port = int(_option(args, "--port", "-p") or 5005)
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((interface, port))
        except OSError as exc:
            return f"rasa: cannot listen on {interface}:{port}: {exc.strerror}; choose another port (--port)"
    return None


def main() -> int:
    args = sys.argv[1:]
    stock = args[:1] == [STOCK]
    if stock:
        args = args[1:]
    else:
        install()
        if args[:1] == ["train"]:
            install_training()
    if args[:1] == ["run"]:
        args = run_arguments(args)
        problem = port_problem(args)
        if problem:
            print(problem, file=sys.stderr, flush=True)
            return 2
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *args]
    return rasa_main() or 0


if __name__ == "__main__":
    sys.exit(main())
