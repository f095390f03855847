"""Shared fixtures: one trained model per session (cached by data hash), one running stack."""
from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import List

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, settings as hypothesis_settings
from bot.gateway.ports import free_port

# Property tests: "ci" (the default, `make test`) draws the same examples on every run and
# machine (derandomized, no example database), so a fresh clone passes or fails the same
# way; a failure prints the blob that reproduces it. `make fuzz` (HYPOTHESIS_PROFILE=explore)
# draws new random examples, many more, with a printed seed to replay them. Neither profile
# asserts speed (no deadline, no too-slow health check: the machine is shared).
hypothesis_settings.register_profile(
    "ci", derandomize=True, database=None, print_blob=True, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile(
    "explore", max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "5000")),
    print_blob=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config):
    profile = config.getoption("hypothesis_profile", None) or os.environ.get("HYPOTHESIS_PROFILE", "ci")
    seed = config.getoption("hypothesis_seed", None)
    mode = "derandomized: the same examples every run" if profile == "ci" else \
        f"random examples, seed {seed if seed is not None else 'unset'}"
    return f"hypothesis: profile {profile!r} ({mode}; `make fuzz` explores)"


# Frozen clock inside service hours (shop time), so promises are deterministic.
FAKE_NOW = "2026-11-27T10:00:00"


@pytest.fixture(scope="session")
def business_models():
    """``business_models("property")``: that business's model, trained at most once per
    session and cached under models/ by a key over every input (bot/training/model_cache.py)."""
    from bot.training.model_cache import ensure_model

    cache: dict = {}

    def model(business: str) -> Path:
        if business not in cache:
            cache[business] = ensure_model(business=business)
        return cache[business]
    return model


@pytest.fixture(scope="session")
def trained_model(business_models) -> Path:
    """The shop's model for the current data, trained once and cached by the data's hash.

    ``KEFU_TEST_MODEL`` points at an existing archive instead (for quick local reruns).
    """
    override = os.environ.get("KEFU_TEST_MODEL")
    return Path(override) if override else business_models("shop")


@pytest.fixture(scope="session")
def telegram_agents_api():
    """A local fake Bot API for the agents' Telegram group (tests/fakes/telegram.py)."""
    from tests.fakes.telegram import agents_bot_api

    api = agents_bot_api().start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def channel_fakes():
    """Local fakes of the WeChat API and the customers' Telegram Bot API (issue 4):
    ``.wechat``, ``.telegram`` and ``.env``, the gateway's settings for them."""
    from types import SimpleNamespace

    from tests.fakes.telegram import FakeBotAPI
    from tests.fakes.wechat import FakeWeChatAPI

    wechat, telegram = FakeWeChatAPI().start(), FakeBotAPI().start()
    yield SimpleNamespace(wechat=wechat, telegram=telegram,
                          env={**wechat.env(), **telegram.customer_bot_env()})
    wechat.stop()
    telegram.stop()


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory, telegram_agents_api, channel_fakes) -> dict:
    work = tmp_path_factory.mktemp("kefu")
    env = {"KEFU_DATABASE_URL": f"sqlite:///{work}/kefu.db",
           "KEFU_DATA_KEY": Fernet.generate_key().decode(),
           "KEFU_FAKE_NOW": FAKE_NOW,
           # the agents' Telegram group against the local fake Bot API
           **telegram_agents_api.agents_bot_env(),
           "KEFU_TELEGRAM_AGENT_POLL_TIMEOUT": "1",
           # every test customer talks from 127.0.0.1: no per-address limit in the shared stack
           # (tests/test_hardening_support.py covers it on an app of its own)
           "KEFU_RATE_PER_ADDRESS_MINUTE": "0",
           **channel_fakes.env}   # customer channels: WeChat and Telegram against local fakes
    os.environ.update(env)  # this process reads the same database and key
    from bot.profile import privacy
    privacy._fernet.cache_clear()
    env["_work"] = str(work)
    return env


def start_stack(model: Path, work: Path, env: dict, **ports):
    """The whole stack (action server, Rasa, gateway) as processes, logs and trackers under
    ``work``; ``env`` without its ``_`` keys; ``ports``: gateway_port, ... (else free ones)."""
    from bot.gateway.launch import Stack

    ports = {name: ports.get(name) or free_port()
             for name in ("gateway_port", "rasa_port", "action_port")}
    stack = Stack(model=model, log_dir=work / "logs", tracker_db=str(work / "trackers.db"),
                  env={k: v for k, v in env.items() if not k.startswith("_")}, **ports)
    stack.start(timeout=240)
    return stack


@pytest.fixture(scope="session")
def assistant(trained_model, stack_env):
    stack = start_stack(trained_model, Path(stack_env["_work"]), stack_env)
    yield stack
    stack.stop()


class Customer:
    """A web-chat customer talking to the running gateway."""

    def __init__(self, base_url: str, sender: str) -> None:
        self.base_url, self.sender = base_url, sender
        self.last: List[dict] = []

    @property
    def conversation_id(self) -> str:
        return f"web:{self.sender}"

    def say(self, text: str) -> str:
        body = json.dumps({"sender": self.sender, "message": text}).encode()
        request = urllib.request.Request(f"{self.base_url}/api/chat", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            self.last = json.load(resp)["messages"]
        return "\n".join(m["text"] for m in self.last)


@pytest.fixture
def customer(assistant, request):
    name = request.node.name.replace("[", "-").replace("]", "")[:50]
    return Customer(assistant.url, f"t-{name}")


@pytest.fixture(scope="session")
def admin_stack(trained_model, stack_env, tmp_path_factory):
    """A stack of its own for the retraining tests (issue 6): its model is swapped, and it
    retrains in a temporary copy of the project's data (``KEFU_ADMIN_PROJECT``)."""
    from bot.training.project import copy_project

    work = tmp_path_factory.mktemp("kefu-admin")
    project = copy_project(work / "project")
    stack = start_stack(trained_model, work, {**stack_env, "KEFU_ADMIN_PROJECT": str(project),
                                              "KEFU_FINETUNE_FRACTION": "0.2"})
    stack.project = project
    yield stack
    stack.stop()


@pytest.fixture
def ticket_store(tmp_path, monkeypatch):
    """A TicketStore on a fresh SQLite file, with a data key of its own and the frozen clock."""
    from bot.profile import privacy
    from bot.store.engine import engine_for
    from bot.store.tickets import TicketStore

    monkeypatch.setenv("KEFU_DATA_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("KEFU_FAKE_NOW", FAKE_NOW)
    privacy._fernet.cache_clear()
    yield TicketStore(engine_for(f"sqlite:///{tmp_path}/t.db"))
    privacy._fernet.cache_clear()


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium under Playwright, one per test module (the browser tests)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


PG_URL = "postgresql://postgres@127.0.0.1:5432/{}"


@pytest.fixture
def scratch_pg():
    """An empty PostgreSQL database on the machine's server, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    admin = create_engine(PG_URL.format("postgres"), future=True, isolation_level="AUTOCOMMIT")
    name = f"kefu_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:   # pragma: no cover - machine without PostgreSQL
        pytest.skip(f"no PostgreSQL: {exc}")
    engine = create_engine(PG_URL.format(name), future=True)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the project's training inputs for the admins' retraining loop to work in
    (``KEFU_ADMIN_PROJECT``), with a database of its own."""
    from bot.training.project import copy_project

    root = copy_project(tmp_path / "project")
    monkeypatch.setenv("KEFU_ADMIN_PROJECT", str(root))
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/kefu.db")
    return root
