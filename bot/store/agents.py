"""Agents' accounts and console sessions.

Passwords are hashed with scrypt (a memory-hard KDF from the standard library) and a
random salt per password. A console session is a random token in an HttpOnly cookie;
only its SHA-256 is stored, with an expiry. The first admin is created from the shell::

    .venv/bin/python -m bot.store.agents create-admin <name>      # password prompted, or
    KEFU_ADMIN_PASSWORD=... .venv/bin/python -m bot.store.agents create-admin <name>
    .venv/bin/python -m bot.store.agents create-agent <name>      # further agents (or via the console)
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import getpass
import hashlib
import hmac
import re
import secrets
import sys
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.store.engine import get_engine, retrying
from bot.store.schema import Agent, AgentSession
from bot.settings import setting

ROLES = ("agent", "admin")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
MIN_PASSWORD = 8
# scrypt cost: N=2^14, r=8, p=1 (~16 MiB, tens of ms) — OWASP's minimum recommendation.
_N, _R, _P = 2 ** 14, 8, 1


class AgentError(ValueError):
    """A request about accounts that cannot be done (bad name, weak password, duplicate)."""


@dataclass(frozen=True)
class AgentView:
    id: int
    name: str
    display_name: str
    role: str
    telegram_user_id: Optional[str]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "display_name": self.display_name,
                "role": self.role}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"scrypt${_N}${_R}${_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                                r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)     # real time: sessions expire in real time


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _view(agent: Agent) -> AgentView:
    return AgentView(agent.id, agent.name, agent.display_name or agent.name, agent.role,
                     agent.telegram_user_id)


# A hash to compare against when the name is unknown, so timing does not reveal names.
_DUMMY_HASH = None


class AgentStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def _run(self, work):
        return retrying(work, engine=self.engine)

    def create(self, name: str, password: str | None, *, role: str = "agent",
               display_name: str = "", telegram_user_id: str | None = None) -> AgentView:
        if not NAME_RE.match(name or ""):
            raise AgentError("name: 2-32 letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise AgentError(f"role must be one of {ROLES}")
        if password is not None and len(password) < MIN_PASSWORD:
            raise AgentError(f"password must have at least {MIN_PASSWORD} characters")
        hashed = hash_password(password) if password is not None else None

        def work(session):
            agent = Agent(name=name, display_name=display_name or name, role=role,
                          password_hash=hashed, telegram_user_id=telegram_user_id)
            session.add(agent)
            session.flush()
            return _view(agent)
        try:
            return self._run(work)
        except IntegrityError as exc:
            raise AgentError(f"an agent named {name!r} exists already") from exc

    def get(self, agent_id: int) -> AgentView | None:
        def work(session):
            agent = session.get(Agent, agent_id)
            return _view(agent) if agent and agent.active else None
        return self._run(work)

    def by_name(self, name: str) -> AgentView | None:
        def work(session):
            agent = session.scalars(select(Agent).where(Agent.name == name)).first()
            return _view(agent) if agent and agent.active else None
        return self._run(work)

    def all(self) -> List[AgentView]:
        def work(session):
            return [_view(a) for a in session.scalars(
                select(Agent).where(Agent.active == 1).order_by(Agent.id))]
        return self._run(work)

    def for_telegram_user(self, user_id: str, username: str | None = None) -> AgentView:
        """The agent behind a Telegram account; one is provisioned on first claim.

        A provisioned account has no password: it works in Telegram only until an admin
        links it to a console account (``telegram_user_id``).
        """
        def work(session):
            agent = session.scalars(select(Agent).where(
                Agent.telegram_user_id == str(user_id))).first()
            if agent is None:
                agent = Agent(name=f"tg-{user_id}", display_name=username or f"tg-{user_id}",
                              role="agent", telegram_user_id=str(user_id))
                session.add(agent)
                session.flush()
            return _view(agent)
        try:
            return self._run(work)
        except IntegrityError:
            return self._run(work)

    def authenticate(self, name: str, password: str) -> AgentView | None:
        global _DUMMY_HASH

        def work(session):
            return session.scalars(select(Agent).where(Agent.name == name,
                                                       Agent.active == 1)).first()
        agent = self._run(work)
        if agent is None:
            _DUMMY_HASH = _DUMMY_HASH or hash_password(secrets.token_hex(8))
            verify_password(password, _DUMMY_HASH)
            return None
        return _view(agent) if verify_password(password, agent.password_hash) else None

    # --- sessions --------------------------------------------------------------------

    def start_session(self, agent_id: int, *, hours: float | None = None) -> str:
        token = secrets.token_urlsafe(32)
        expires = _now() + dt.timedelta(hours=setting("KEFU_SESSION_HOURS") if hours is None else hours)

        def work(session):
            session.execute(delete(AgentSession).where(AgentSession.expires_at < _now()))
            session.add(AgentSession(token_hash=_token_hash(token), agent_id=agent_id,
                                     expires_at=expires))
        self._run(work)
        return token

    def session_agent(self, token: str | None) -> AgentView | None:
        if not token or len(token) > 128:
            return None

        def work(session):
            row = session.scalars(select(AgentSession).where(
                AgentSession.token_hash == _token_hash(token))).first()
            if row is None or _aware(row.expires_at) <= _now():
                return None
            agent = session.get(Agent, row.agent_id)
            return _view(agent) if agent and agent.active else None
        return self._run(work)

    def end_session(self, token: str | None) -> None:
        if not token:
            return
        self._run(lambda session: session.execute(delete(AgentSession).where(
            AgentSession.token_hash == _token_hash(token))))


def _read_password(args) -> str:
    password = setting("KEFU_ADMIN_PASSWORD") or ""
    if not password:
        if not sys.stdin.isatty():
            raise SystemExit("set KEFU_ADMIN_PASSWORD or run in a terminal to be prompted")
        password = getpass.getpass(f"password for {args.name}: ")
        if password != getpass.getpass("again: "):
            raise SystemExit("passwords differ")
    return password


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.store.agents",
                                     description="agents' accounts for the console")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("create-admin", "create-agent"):
        p = sub.add_parser(command)
        p.add_argument("name")
        p.add_argument("--display-name", default="")
        p.add_argument("--telegram-user-id", default=None)
    sub.add_parser("list")
    args = parser.parse_args(argv)
    store = AgentStore()
    if args.command == "list":
        for agent in store.all():
            print(f"{agent.id}\t{agent.name}\t{agent.role}\t{agent.display_name}")
        return 0
    role = "admin" if args.command == "create-admin" else "agent"
    try:
        agent = store.create(args.name, _read_password(args), role=role,
                             display_name=args.display_name,
                             telegram_user_id=args.telegram_user_id)
    except AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"created {agent.role} {agent.name} (id {agent.id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
