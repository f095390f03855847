"""What make run starts, and where (issue 18, items 3, 14, 16), without a trained model.

- the action server listens on loopback only (rasa-sdk's own entry point: 0.0.0.0), and a
  taken port is an error at once (rasa-sdk logs it and exits 0);
- make run picks free loopback ports for Rasa and the action server unless settings say
  otherwise, and a configured port that is taken fails at once, naming port and setting;
- Rasa gets its API token from the environment, on loopback by default.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from bot.brain import rasa_server
from bot.gateway.launch import PortInUse, Stack, action_server_command, check_ports, rasa_command
from bot.gateway.ports import free_port
from bot.profile.business import PROJECT_ROOT
from tests.proc_net import listening

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONWARNINGS": "ignore"}


@pytest.fixture
def taken():
    """A loopback port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_action_server_listens_on_loopback_only():
    port = free_port()
    proc = subprocess.Popen(action_server_command(port), cwd=PROJECT_ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        assert listening(proc.pid) == {("127.0.0.1", port)}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def test_action_server_on_a_taken_port_fails_at_once_and_says_so(taken):
    started = time.monotonic()
    done = subprocess.run(action_server_command(taken), cwd=PROJECT_ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"127.0.0.1:{taken}" in done.stderr and "--port" in done.stderr
    assert time.monotonic() - started < 120


def test_check_ports_names_the_port_and_the_setting(taken):
    with pytest.raises(PortInUse) as caught:
        check_ports({"rasa": taken})
    assert str(taken) in str(caught.value) and "KEFU_RASA_PORT" in str(caught.value)
    with pytest.raises(PortInUse, match="KEFU_ACTION_PORT"):
        check_ports({"actions": taken})
    with pytest.raises(PortInUse, match="KEFU_PORT"):
        check_ports({"gateway": taken})
    check_ports({"rasa": free_port()})              # a free one passes


def test_stack_defaults_to_free_ports_not_5005_and_5055():
    stack = Stack(model=PROJECT_ROOT / "models" / "none.tar.gz")
    assert stack.rasa_port == 0 and stack.action_port == 0     # chosen (free) at start


def test_make_run_with_a_taken_port_fails_at_once_naming_the_setting(taken, tmp_path):
    env = dict(ENV, KEFU_RASA_PORT=str(taken), KEFU_PORT=str(free_port()),
               KEFU_DATABASE_URL=f"sqlite:///{tmp_path}/kefu.db")
    done = subprocess.run([sys.executable, "-m", "bot.gateway.launch"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, (done.stdout[-1000:], done.stderr[-2000:])
    assert f"port {taken}" in done.stderr and "KEFU_RASA_PORT" in done.stderr
    assert "starting" not in done.stdout             # before training or starting anything


def test_rasa_gets_its_token_from_the_environment_and_loopback_by_default(monkeypatch):
    monkeypatch.setenv("KEFU_RASA_TOKEN", "s3cret-token")
    args = rasa_server.run_arguments(["run", "--port", "5005", "--enable-api"])
    assert "--auth-token=s3cret-token" in args       # one argument: a token may start with "-"
    assert args[args.index("--interface") + 1] == "127.0.0.1"
    monkeypatch.setenv("KEFU_RASA_TOKEN", "-starts-with-a-dash")
    from rasa.__main__ import create_argument_parser          # Rasa's own parser accepts it
    assert create_argument_parser().parse_args(rasa_server.run_arguments(["run"])).auth_token == "-starts-with-a-dash"
    kept = rasa_server.run_arguments(["run", "--interface", "10.0.0.5", "--auth-token", "given"])
    assert kept.count("--auth-token") == 1 and kept.count("--interface") == 1
    for plain in (False, True):
        assert "--auth-token" not in rasa_command(plain) and "bot.brain.rasa_server" in " ".join(rasa_command(plain))


def test_rasa_on_a_taken_port_is_refused_before_loading_anything(taken):
    assert "127.0.0.1:%d" % taken in rasa_server.port_problem(["run", "--interface", "127.0.0.1",
                                                              "--port", str(taken)])
    assert rasa_server.port_problem(["run", "--interface", "127.0.0.1", "--port", str(free_port())]) is None
