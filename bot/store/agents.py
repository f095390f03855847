"""Agents' accounts and console sessions.

Passwords are hashed with scrypt (a memory-hard KDF from the standard library) and a
random salt per password. A console session is a random token in an HttpOnly cookie;
only its SHA-256 is stored, with an expiry. The first admin is created from the shell::

    .venv/bin/python -m bot.store.agents create-admin <name>      # password prompted, or
    KEFU_ADMIN_PASSWORD=... .venv/bin/python -m bot.store.agents create-admin <name>
    .venv/bin/python -m bot.store.agents create-agent <name>      # further agents (or via the console)
    .venv/bin/python -m bot.store.agents link-telegram <name> <telegram user id>   # may claim in the group
    .venv/bin/python -m bot.store.agents deactivate <name>        # ends its sessions; activate undoes it
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

ROLES = ("agent", "lead", "admin")          # lead: the team lead (报表, assigning)
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
    active: bool = True

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
                     agent.telegram_user_id, bool(agent.active))


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

    def get(self, agent_id: int, *, include_inactive: bool = False) -> AgentView | None:
        def work(session):
            agent = session.get(Agent, agent_id)
            return _view(agent) if agent and (agent.active or include_inactive) else None
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

    def everyone(self) -> List[AgentView]:
        """Every account, active or not (admins' view)."""
        return self._run(lambda session: [_view(a) for a in session.scalars(
            select(Agent).order_by(Agent.id))])

    def for_telegram_user(self, user_id: str) -> AgentView | None:
        """The active agent an admin linked to this Telegram account, else None.

        Nobody becomes an agent by pressing a button: the link is made by an admin
        (``create-agent --telegram-user-id``, ``link-telegram``, or the console's
        ``POST /api/agent/agents/{id}/telegram``).
        """
        def work(session):
            agent = session.scalars(select(Agent).where(
                Agent.telegram_user_id == str(user_id), Agent.active == 1)).first()
            return _view(agent) if agent else None
        return self._run(work)

    def link_telegram(self, agent_id: int, telegram_user_id: str | None) -> AgentView:
        if telegram_user_id is not None and not re.fullmatch(r"-?[0-9]{1,20}", telegram_user_id):
            raise AgentError("telegram_user_id: the numeric Telegram user id")

        def work(session):
            agent = session.get(Agent, agent_id)
            if agent is None:
                raise AgentError("no such agent")
            agent.telegram_user_id = telegram_user_id
            session.flush()
            return _view(agent)
        try:
            return self._run(work)
        except IntegrityError as exc:
            raise AgentError("that Telegram account is linked to another agent") from exc

    # --- accounts: passwords, deactivation -------------------------------------------

    def set_password(self, agent_id: int, password: str, *, keep_token: str | None = None) -> None:
        """A new password; every session of the agent ends except ``keep_token``'s."""
        if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= 256:
            raise AgentError(f"password must have {MIN_PASSWORD}-256 characters")
        hashed = hash_password(password)

        def work(session):
            agent = session.get(Agent, agent_id)
            if agent is None:
                raise AgentError("no such agent")
            agent.password_hash = hashed
            _end_sessions(session, agent_id, keep_token)
        self._run(work)

    def change_password(self, agent_id: int, current: str, new: str, *,
                        keep_token: str | None = None) -> bool:
        """The agent's own change: False when ``current`` is not the password."""
        def work(session):
            agent = session.get(Agent, agent_id)
            return agent.password_hash if agent and agent.active else None
        if not verify_password(current, self._run(work)):
            return False
        self.set_password(agent_id, new, keep_token=keep_token)
        return True

    def set_active(self, agent_id: int, active: bool) -> AgentView:
        """Deactivating ends every session at once (and the agent can no longer claim)."""
        def work(session):
            agent = session.get(Agent, agent_id)
            if agent is None:
                raise AgentError("no such agent")
            agent.active = 1 if active else 0
            if not active:
                _end_sessions(session, agent_id, None)
            session.flush()
            return _view(agent)
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

    def sessions(self, agent_id: int, current_token: str | None = None) -> List[dict]:
        """The agent's live sessions (ids, times; which is this one), newest first."""
        mine = _token_hash(current_token) if current_token else None

        def work(session):
            rows = session.scalars(select(AgentSession).where(
                AgentSession.agent_id == agent_id).order_by(AgentSession.id.desc()))
            return [{"id": r.id, "created_at": _aware(r.created_at).isoformat(),
                     "expires_at": _aware(r.expires_at).isoformat(),
                     "current": r.token_hash == mine}
                    for r in rows if _aware(r.expires_at) > _now()]
        return self._run(work)

    def revoke_sessions(self, agent_id: int, *, session_id: int | None = None,
                        keep_token: str | None = None) -> int:
        """End one session of the agent (``session_id``) or all but ``keep_token``'s."""
        def work(session):
            if session_id is not None:
                return session.execute(delete(AgentSession).where(
                    AgentSession.agent_id == agent_id, AgentSession.id == session_id)).rowcount
            return _end_sessions(session, agent_id, keep_token)
        return self._run(work)


def _end_sessions(session, agent_id: int, keep_token: str | None) -> int:
    query = delete(AgentSession).where(AgentSession.agent_id == agent_id)
    if keep_token:
        query = query.where(AgentSession.token_hash != _token_hash(keep_token))
    return session.execute(query).rowcount


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
    link = sub.add_parser("link-telegram", help="let this agent claim in the agents' group")
    link.add_argument("name")
    link.add_argument("telegram_user_id", help="numeric Telegram user id; 'none' unlinks")
    for command in ("activate", "deactivate"):
        sub.add_parser(command).add_argument("name")
    args = parser.parse_args(argv)
    store = AgentStore()
    if args.command == "list":
        for agent in store.all():
            print(f"{agent.id}\t{agent.name}\t{agent.role}\t{agent.display_name}")
        return 0
    if args.command in ("link-telegram", "activate", "deactivate"):
        def find(session):
            row = session.scalars(select(Agent).where(Agent.name == args.name)).first()
            return row.id if row else None
        agent_id = store._run(find)
        if agent_id is None:
            print(f"error: no agent named {args.name!r}", file=sys.stderr)
            return 1
        try:
            if args.command == "link-telegram":
                tg = None if args.telegram_user_id.lower() == "none" else args.telegram_user_id
                store.link_telegram(agent_id, tg)
            else:
                store.set_active(agent_id, args.command == "activate")
        except AgentError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{args.command}: {args.name}")
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
