"""The scaled-out topology on one machine: N gateways, N Rasa replicas, one action server,
tickets and Rasa's trackers on PostgreSQL, Rasa's lock store and the gateways' turn order
and live events on Redis. ``deploy/compose.yml`` and ``deploy/Procfile`` describe the same
processes for real hosts; ``make bench SCALE=2`` and ``tests/test_scaled_consistency.py``
start it with :class:`ScaledStack`; ``python -m deploy.scaled`` runs it until Ctrl-C.

Nothing here is hand-written persistence: Rasa's stores are configured in the rendered
endpoints file (SQLTrackerStore dialect postgresql, RedisLockStore), the ticket schema is
migrated by Alembic (bot/store/migrations) when the first process connects.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from bot.gateway.launch import (BIN, action_server_command, redacted_copy, rasa_command,
                                stop_processes, supervise)
from bot.profile.business import PROJECT_ROOT
from bot.brain.rasa_server import rasa_env
from bot.settings import setting
from bot.gateway.ports import free_port

PG_HOST = setting("KEFU_PG_HOST")
PG_PORT = setting("KEFU_PG_PORT")
PG_USER = setting("KEFU_PG_USER")
REDIS_HOST = setting("KEFU_REDIS_HOST")
REDIS_PORT = setting("KEFU_REDIS_PORT")


def endpoints_yaml(action_url: str, database: str, redis_db: int, lock_prefix: str) -> str:
    """Rasa's endpoints for a replica: trackers in PostgreSQL, ticket locks in Redis."""
    return (f'action_endpoint:\n  url: "{action_url}/webhook"\n'
            f'tracker_store:\n  type: bot.brain.tracker_store.EncryptedSQLTrackerStore\n'
            f'  dialect: "postgresql"\n  url: "{PG_HOST}"\n'
            f'  port: {PG_PORT}\n  db: "{database}"\n  username: "{PG_USER}"\n  login_db: "postgres"\n'
            f'lock_store:\n  type: redis\n  url: "{REDIS_HOST}"\n  port: {REDIS_PORT}\n'
            f'  db: {redis_db}\n  key_prefix: "{lock_prefix}"\n')


def pg_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres", future=True,
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@dataclass
class ScaledStack:
    model: Path
    replicas: int = 2
    env: Dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    database: str | None = None        # None: a fresh kefu_scaled_<random>, dropped on stop
    redis_db: int = 0
    # "gateway": Redis FIFO turn order in the gateways + consistent hashing to Rasa (default).
    # "rasa-lock-store": gateway i talks to Rasa i only and ordering across replicas is left
    # to Rasa's RedisLockStore alone (to show rasa#9213; see README "Scaling out").
    ordering: str = "gateway"
    named: Dict[str, subprocess.Popen] = field(default_factory=dict)
    gateway_urls: List[str] = field(default_factory=list)
    rasa_urls: List[str] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}"

    def start(self, timeout: float = 300) -> "ScaledStack":
        self._created_db = self.database is None
        tag = uuid.uuid4().hex[:10]
        if self._created_db:
            self.database = f"kefu_scaled_{tag}"
            pg_admin(f'CREATE DATABASE "{self.database}"')
        self.redis_prefix = f"kefu{tag}"
        self.log_dir = self.log_dir or Path(tempfile.mkdtemp(prefix="kefu-scaled-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_urlsafe(24)
        base_env = rasa_env(KEFU_DATABASE_URL=self.database_url, **self.env)
        # migrate once before anyone connects (replicas would also do it, under a lock)
        subprocess.run([str(BIN / "python"), "-c", "from bot.store.engine import get_engine; get_engine()"],
                       cwd=PROJECT_ROOT, env=base_env, check=True)
        action_port = free_port()
        action_url = f"http://127.0.0.1:{action_port}"
        endpoints = self.log_dir / "endpoints.yml"
        endpoints.write_text(endpoints_yaml(action_url, self.database, self.redis_db, self.redis_prefix))
        self._spawn("actions", action_server_command(action_port), base_env)
        rasa_ports = [free_port() for _ in range(self.replicas)]
        self.rasa_urls = [f"http://127.0.0.1:{p}" for p in rasa_ports]
        for i, port in enumerate(rasa_ports):       # the token in the environment, not argv
            self._spawn(f"rasa{i + 1}", [
                *rasa_command(), "run", "--enable-api", "--interface", "127.0.0.1", "--port", str(port),
                "--model", str(self.model), "--endpoints", str(endpoints),
                "--credentials", str(PROJECT_ROOT / "credentials.yml")],
                dict(base_env, KEFU_RASA_TOKEN=self.token))
        self.gateway_urls = []
        for i in range(self.replicas):
            port = free_port()
            self.gateway_urls.append(f"http://127.0.0.1:{port}")
            env = dict(base_env, KEFU_PORT=str(port), KEFU_RASA_TOKEN=self.token, KEFU_ACTION_URL=action_url)
            if self.ordering == "gateway":
                env.update(KEFU_RASA_URL=",".join(self.rasa_urls),
                           KEFU_REDIS_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}",
                           KEFU_REDIS_PREFIX=f"{self.redis_prefix}:")
            else:
                env.update(KEFU_RASA_URL=self.rasa_urls[i])
                env.pop("KEFU_REDIS_URL", None)
            self._spawn(f"gateway{i + 1}", [str(BIN / "python"), "-m", "bot.gateway.app"], env)
        self.wait_healthy(timeout)
        return self

    def _spawn(self, name: str, cmd: List[str], env: Dict[str, str]) -> None:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=redacted_copy, args=(proc.stdout, self.log_dir / f"{name}.log"),
                         daemon=True).start()
        self.named[name] = proc

    def pids(self) -> Dict[str, int]:
        return {name: proc.pid for name, proc in self.named.items()}

    def _ok(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status != 200:
                    return False
                body = json.load(resp)
                return bool(body.get("model_file") or body.get("model_id")) if "/status" in url else True
        except (OSError, ValueError):
            return False

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        checks = [f"{u}/status?token={self.token}" for u in self.rasa_urls] + \
                 [f"{u}/healthz" for u in self.gateway_urls]
        while time.monotonic() < deadline:
            for name, proc in self.named.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; logs in {self.log_dir}")
            checks = [c for c in checks if not self._ok(c)]
            if not checks:
                return
            time.sleep(0.5)
        raise TimeoutError(f"scaled stack not healthy after {timeout}s ({checks}); logs in {self.log_dir}")

    def tracker(self, conversation_id: str) -> dict:
        url = f"{self.rasa_urls[0]}/conversations/{conversation_id}/tracker?token={self.token}"
        with urllib.request.urlopen(url, timeout=30) as resp:
            return json.load(resp)

    def stop(self) -> None:
        stop_processes(self.named.values())
        self.named.clear()
        if getattr(self, "_created_db", False):
            from bot.store.engine import engine_for

            engine_for.cache_clear()
            pg_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        try:
            import redis

            client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.redis_db)
            for key in client.scan_iter(f"{self.redis_prefix}*"):
                client.delete(key)
        except Exception:
            pass


def main() -> int:
    import argparse

    from bot.training.model_cache import ensure_model

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--database", default="kefu", help="PostgreSQL database (created if missing)")
    args = parser.parse_args()
    try:
        pg_admin(f'CREATE DATABASE "{args.database}"')
    except Exception:
        pass  # exists
    stack = ScaledStack(model=ensure_model(), replicas=args.replicas, database=args.database,
                        log_dir=PROJECT_ROOT / "var" / "logs-scaled")
    return supervise(stack, lambda: print("gateways:", " ".join(stack.gateway_urls),
                                          "| rasa:", " ".join(stack.rasa_urls), flush=True))


if __name__ == "__main__":
    sys.exit(main())
