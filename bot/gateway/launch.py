"""Start the whole assistant: action server, Rasa and the gateway, and watch them.

``make run`` calls ``python -m bot.gateway.launch``; the end-to-end tests use :class:`Stack`
with their own ports, database and model. Rasa listens on loopback only, with a
per-launch API token the gateway is given; customers only ever reach the gateway.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

from bot.profile.business import PROJECT_ROOT
from bot.brain.rasa_server import rasa_env
from bot.gateway.ports import free_port
from bot.settings import setting

BIN = Path(sys.executable).parent


def redacted_copy(stream, path: Path) -> None:
    """Copy a process's output to its log file with every phone number masked.

    Rasa and the action server log whole trackers on errors; masking at this one choke
    point keeps personal data out of every log, whatever a library decides to print.
    """
    from bot.profile.privacy import mask_text

    with open(path, "ab") as log:
        for line in iter(stream.readline, b""):
            log.write(mask_text(line.decode("utf-8", "replace")).encode("utf-8"))
            log.flush()


def stop_processes(processes) -> None:
    """SIGTERM every process group, wait up to 15 s each, then SIGKILL what is left."""
    processes = list(processes)
    for proc in processes:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def rasa_command(plain: bool = False) -> List[str]:
    """Rasa's command line: ``bot/brain/rasa_server.py`` (Rasa with the project's measured fix
    for action-response validation) or, ``plain``, Rasa's own code unchanged (``--stock``).
    Either way the API token comes from ``KEFU_RASA_TOKEN`` in the environment, never argv."""
    return [str(BIN / "python"), "-m", "bot.brain.rasa_server", *(["--stock"] if plain else [])]


def action_server_command(port: int, interface: str = "127.0.0.1") -> List[str]:
    """The action server (bot/gateway/action_server.py): rasa-sdk on ``interface`` only."""
    return [str(BIN / "python"), "-m", "bot.gateway.action_server", "--actions", "actions",
            "--interface", interface, "--port", str(port)]


class PortInUse(RuntimeError):
    """A port the launcher was told to use is taken; the message names the setting."""


PORT_SETTINGS = {"gateway": "KEFU_PORT", "rasa": "KEFU_RASA_PORT", "actions": "KEFU_ACTION_PORT"}


def check_ports(ports: Dict[str, int], host: str = "127.0.0.1") -> None:
    """Fail at once, naming the port and the setting, when one of ``ports`` is taken."""
    for name, port in ports.items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                setting_name = PORT_SETTINGS.get(name, name)
                raise PortInUse(
                    f"port {port} ({name}) is not free on {host}: {exc.strerror}. Another kefu or "
                    f"program uses it: stop it, or set {setting_name} to another port"
                    + ("" if name == "gateway" else " (0 or unset: any free port)")) from exc


@dataclass
class Stack:
    model: Path
    gateway_port: int = 8000
    rasa_port: int = 0                     # 0: a free loopback port, chosen at start
    action_port: int = 0
    env: Dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    tracker_db: str | None = None          # SQLite file for Rasa's trackers (None: in memory)
    plain_rasa: bool = False               # True: stock `rasa run` (the bench's baseline)
    processes: List[subprocess.Popen] = field(default_factory=list)
    named: Dict[str, subprocess.Popen] = field(default_factory=dict)

    def _endpoints(self, workdir: Path) -> Path:
        text = f'action_endpoint:\n  url: "http://127.0.0.1:{self.action_port}/webhook"\n'
        if self.tracker_db:
            store = "SQL\n  dialect: \"sqlite\"" if self.plain_rasa else "bot.brain.tracker_store.SQLiteTrackerStore"
            text += f'tracker_store:\n  type: {store}\n  db: "{self.tracker_db}"\n'
        path = workdir / "endpoints.yml"
        path.write_text(text)
        return path

    def start(self, timeout: float = 180) -> "Stack":
        log_dir = self.log_dir or Path(tempfile.mkdtemp(prefix="kefu-logs-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self.rasa_port = self.rasa_port or free_port()
        self.action_port = self.action_port or free_port()
        check_ports({"gateway": self.gateway_port, "rasa": self.rasa_port,
                     "actions": self.action_port})
        token = self.token = secrets.token_urlsafe(24)
        env = rasa_env(**self.env)
        env.update(KEFU_PORT=str(self.gateway_port), KEFU_RASA_TOKEN=token,
                   KEFU_RASA_URL=f"http://127.0.0.1:{self.rasa_port}",
                   KEFU_ACTION_URL=f"http://127.0.0.1:{self.action_port}")
        if self.tracker_db:          # where an erasure finds Rasa's trackers (bot/store/erasure.py)
            env = {"KEFU_TRACKER_URL": f"sqlite:///{Path(self.tracker_db).resolve()}", **env}
        commands = {
            "actions": action_server_command(self.action_port),
            # the token is in the environment (KEFU_RASA_TOKEN), not on this command line
            "rasa": rasa_command(plain=self.plain_rasa) + ["run", "--enable-api", "--interface", "127.0.0.1",
                     "--port", str(self.rasa_port), "--model", str(self.model),
                     "--endpoints", str(self._endpoints(log_dir)), "--credentials",
                     str(PROJECT_ROOT / "credentials.yml")],
            "gateway": [str(BIN / "python"), "-m", "bot.gateway.app"],
        }
        self._commands, self._env = commands, env
        for name in commands:
            self._spawn(name)
        self.wait_healthy(timeout)
        return self

    def _spawn(self, name: str) -> subprocess.Popen:
        proc = subprocess.Popen(self._commands[name], cwd=PROJECT_ROOT, env=self._env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        threading.Thread(target=redacted_copy, args=(proc.stdout, self.log_dir / f"{name}.log"),
                         daemon=True).start()
        self.named[name] = proc
        self.processes[:] = list(self.named.values())
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one process abruptly (fault-injection: ``make chaos`` and its tests)."""
        proc = self.named[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=15)

    def restart(self, name: str, timeout: float = 180) -> None:
        self._spawn(name)
        self.wait_healthy(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.named.values():
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}; logs in {self.log_dir}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"assistant not healthy after {timeout}s; logs in {self.log_dir}")

    def stop(self) -> None:
        stop_processes(self.named.values())
        self.processes.clear()
        self.named.clear()


def main() -> int:
    from bot.training.model_cache import ensure_model

    ports = {"gateway": setting("KEFU_PORT"), "rasa": setting("KEFU_RASA_PORT") or free_port(),
             "actions": setting("KEFU_ACTION_PORT") or free_port()}
    try:
        check_ports(ports)                  # at once, before minutes of training
        model = ensure_model()
        stack = Stack(model=model, gateway_port=ports["gateway"], rasa_port=ports["rasa"],
                      action_port=ports["actions"], log_dir=PROJECT_ROOT / "var" / "logs",
                      tracker_db=str(PROJECT_ROOT / "var" / "trackers.db"))
        print(f"starting action server (port {stack.action_port}), Rasa (port {stack.rasa_port}) and "
              f"the gateway; Rasa takes ~30 s to load …", flush=True)
        return supervise(stack, lambda: print(
            f"kefu is ready: web chat on {stack.url}  (logs in {stack.log_dir}; Ctrl-C stops)", flush=True))
    except PortInUse as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        return 2


def supervise(stack, ready: Callable[[], None]) -> int:
    """Start ``stack``, announce it, and keep it up until Ctrl-C, SIGTERM (a service
    manager's stop) or one of its processes exits; its processes never outlive it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # unwinds into stack.stop()
    try:
        stack.start()
        ready()
        while all(p.poll() is None for p in stack.named.values()):
            time.sleep(1)
        print("a process exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
