"""Schemathesis hooks for ``make fuzz-api`` (loaded by schemathesis in .venv-fuzz through
``SCHEMATHESIS_HOOKS``; never imported by the project itself).

``FUZZ_ROLE`` anonymous: no credentials. agent / admin: sign in to the console with
``FUZZ_NAME``/``FUZZ_PASSWORD`` (``POST /api/agent/login``, as the console does) and send
its session cookie with every request; a 401 (the fuzzer itself ended the session: logout,
revoke, password change) signs in again.
"""
from __future__ import annotations

import os

import requests
import schemathesis

ROLE = os.environ.get("FUZZ_ROLE", "anonymous")
BASE = os.environ.get("FUZZ_BASE", "")
COOKIE = os.environ.get("FUZZ_COOKIE", "kefu_agent")

if ROLE != "anonymous":

    @schemathesis.auth(refresh_interval=120)
    class ConsoleSession:
        def get(self, case, context):
            # as another client behind the trusted loopback proxy (KEFU_TRUSTED_PROXIES):
            # the fuzzer's own failed sign-ins back off 127.0.0.1, not this one
            resp = requests.post(f"{BASE}/api/agent/login", timeout=30,
                                 headers={"X-Forwarded-For": f"192.0.2.{1 + ROLE.startswith('admin')}"},
                                 json={"name": os.environ["FUZZ_NAME"],
                                       "password": os.environ["FUZZ_PASSWORD"]})
            resp.raise_for_status()
            return resp.cookies[COOKIE]

        def set(self, case, data, context):
            case.cookies = {**(case.cookies or {}), COOKIE: data}
