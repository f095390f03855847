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
arguments are those of ``rasa run``.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import Any, Dict, Text

from bot.profile.business import PROJECT_ROOT


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


def main() -> int:
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    return rasa_main() or 0


if __name__ == "__main__":
    sys.exit(main())
