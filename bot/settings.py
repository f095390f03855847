"""Every ``KEFU_*`` environment variable, in one table (secrets never live in code).

This is the only module that reads them. ``setting("KEFU_PORT")`` reads the environment when it
is called and returns the parsed value, or the default when the variable is unset or blank
(empty or only spaces). A module that wants a value fixed at import calls it at import; the
others call it where they need the value (tests change variables with monkeypatch).

Adding a variable: one ``Setting(name, default, parse, doc)`` line in the right section of
SETTINGS, then ``python -m bot.settings --readme`` rewrites the README's settings table.
tests/test_settings.py fails when a ``KEFU_`` name in the code is missing from the table or
the README, or when another module reads one from the environment.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

ROOT = Path(__file__).resolve().parent.parent     # the project (same as bot.profile.business.PROJECT_ROOT)


def url(raw: str) -> str:
    """A base URL, without the trailing slash."""
    return raw.rstrip("/")


def word(raw: str) -> str:
    """A keyword: trimmed, lower case."""
    return raw.strip().lower()


def origins(raw: str) -> Tuple[str, ...]:
    """Comma-separated web origins (``https://shop.example``), trimmed, without a trailing slash."""
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


def networks(raw: str) -> Tuple[Any, ...]:
    """Comma-separated IP addresses or networks (``10.0.0.0/8``), as ``ipaddress`` networks."""
    import ipaddress

    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in raw.split(",") if n.strip())


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any                       # when unset or blank
    parse: Callable[[str], Any]        # the raw string to the value (int, float, str, Path, url, word)
    doc: str                           # one line: what it is for

    def read(self) -> Any:
        raw = os.environ.get(self.name)
        if raw is None or not raw.strip():
            return self.default
        return self.parse(raw)


SETTINGS: Tuple[Setting, ...] = (
    # gateway (bot/gateway): the customer-facing HTTP process
    Setting("KEFU_HOST", "127.0.0.1", str, "interface the gateway listens on"),
    Setting("KEFU_PORT", 8000, int, "gateway port (web chat, webhooks, consoles); make run and the admin CLI use it too"),
    Setting("KEFU_MAX_MESSAGE_CHARS", 1000, int, "longer customer messages get a polite answer and are not sent to Rasa"),
    Setting("KEFU_REPLY_TIMEOUT", 8.0, float, "seconds before the customer gets 「收到，正在为您处理…」; the answer follows"),
    Setting("KEFU_RATE_PER_MINUTE", 60.0, float, "messages per minute per conversation after a burst of KEFU_RATE_BURST"),
    Setting("KEFU_RATE_BURST", 20, int, "messages a conversation may send at once before the rate limit applies"),
    Setting("KEFU_REQUEUE_AFTER", 60.0, float, "seconds after which a line left processing (gateway crash) is replayed"),
    Setting("KEFU_WIDGET_ORIGINS", (), origins, "comma-separated host-site origins allowed to embed /widget.js (CORS on /api/chat*); unset: none"),
    Setting("KEFU_TRUSTED_PROXIES", (), networks, "reverse proxies (IPs or networks) whose X-Forwarded-For gives the client address; unset: the socket peer is the client"),
    Setting("KEFU_RATE_PER_ADDRESS_MINUTE", 120.0, float, "web chat messages per minute per client address (any sender id) after a burst of KEFU_RATE_ADDRESS_BURST"),
    Setting("KEFU_RATE_ADDRESS_BURST", 60, int, "web chat messages one client address may send at once before its rate limit applies"),
    Setting("KEFU_MAX_CONCURRENT_TURNS", 32, int, "turns one gateway has in Rasa at once; over it the customer gets the busy notice and the line is replayed"),

    # Rasa and the action server (bot/brain)
    Setting("KEFU_RASA_URL", "http://127.0.0.1:5005", url, "Rasa's HTTP API; a comma-separated list for several replicas"),
    Setting("KEFU_RASA_TOKEN", None, str, "Rasa's API token (secret), given to Rasa in its environment, never on its command line; make run generates one"),
    Setting("KEFU_RASA_PORT", 0, int, "make run: Rasa's loopback port; 0: a free one (a taken port fails at once)"),
    Setting("KEFU_ACTION_PORT", 0, int, "make run: the action server's loopback port; 0: a free one (a taken port fails at once)"),
    Setting("KEFU_RASA_TIMEOUT", 30.0, float, "seconds the gateway waits for one Rasa turn"),
    Setting("KEFU_ACTION_URL", "http://127.0.0.1:5055", url, "the rasa-sdk action server (its health is part of /health)"),
    Setting("KEFU_ACTION_ENDPOINT", None, str, "action webhook URL in deploy/endpoints.yml (read by Rasa, set by deploy/compose.yml)"),
    Setting("KEFU_MODEL", None, str, "model a deploy/rasa_replica.py replica starts with before any activation; unset: the newest <business>-*.tar.gz in KEFU_ADMIN_PROJECT/models"),

    # the business served (businesses/<name>/, bot/profile/pack.py)
    Setting("KEFU_BUSINESS", "shop", word, "the business pack every command serves (businesses/<name>/: shop or property); its model is models/<name>-<hash>.tar.gz"),

    # store and privacy (bot/store, bot/profile)
    Setting("KEFU_DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'kefu.db'}", str, "SQLAlchemy URL of tickets, transcripts, handoffs, agents (PostgreSQL when scaled out)"),
    Setting("KEFU_DATA_KEY", None, str, "Fernet key encrypting phones and addresses at rest (secret); unset: var/data.key, created once"),
    Setting("KEFU_TRACKER_URL", None, str, "SQLAlchemy URL of Rasa's tracker store, for erasure (secret if it holds a password); unset: endpoints.yml's SQLite file, else the events table of KEFU_DATABASE_URL"),
    Setting("KEFU_PROFILE", None, Path, "another business profile file instead of the pack's (facts, service hours); re-read when the file changes"),
    Setting("KEFU_FAKE_NOW", None, str, "ISO time the bot takes as now (tests, demos); no zone: the shop's"),

    # agents' console and the handoff service (bot/workspace, bot/support)
    Setting("KEFU_SESSION_HOURS", 12.0, float, "agents' console sign-in lifetime (cookie and stored expiry)"),
    Setting("KEFU_ADMIN_PASSWORD", None, str, "password for create-admin / the admin CLI instead of a prompt (secret)"),
    Setting("KEFU_CANNED_REPLIES", None, Path, "agents' canned replies file; unset: the business pack's"),
    Setting("KEFU_SLA_INTERVAL", 30.0, float, "seconds between passes of the SLA clocks (each breach marked, alerted and escalated once)"),
    Setting("KEFU_WECOM_WEBHOOK", None, str, "WeCom group-robot URL notified of new handoffs and SLA breaches (secret)"),
    Setting("KEFU_OUTBOX_MAX_ATTEMPTS", 8, int, "failed deliveries of one outbox row (pushes, alerts, group) before it is dead-lettered for agents"),
    Setting("KEFU_OUTBOX_BACKOFF", 2.0, float, "seconds before an outbox row that failed is tried again, doubling per attempt"),
    Setting("KEFU_OUTBOX_MAX_BACKOFF", 600.0, float, "longest wait between two tries of one outbox row"),

    # agents' Telegram group (bot/workspace/agents_group.py)
    Setting("KEFU_TELEGRAM_AGENT_TOKEN", None, str, "the agents' bot token, not the customers' one (secret); unset: group off"),
    Setting("KEFU_TELEGRAM_AGENT_GROUP", None, str, "chat id of the agents' group that gets handoff cards"),
    Setting("KEFU_TELEGRAM_AGENT_API_BASE", "https://api.telegram.org", url, "Bot API base of the agents' bot (tests use a local fake)"),
    Setting("KEFU_TELEGRAM_AGENT_POLL_TIMEOUT", 25, int, "getUpdates long-poll seconds of the agents' bot"),

    # customers on Telegram (connectors/telegram.py)
    Setting("KEFU_TELEGRAM_TOKEN", "", str, "the customers' bot token from @BotFather (secret); unset: connector off"),
    Setting("KEFU_TELEGRAM_SECRET", "", str, "secret_token given to setWebhook; webhook calls without it get 403 (secret)"),
    Setting("KEFU_TELEGRAM_API_BASE", "https://api.telegram.org", url, "Bot API base (a local Bot API server, or the tests' fake)"),
    Setting("KEFU_TELEGRAM_MODE", "webhook", word, "webhook or polling (getUpdates, no public URL, one gateway only)"),

    # customers on the WeChat official account (connectors/wechat)
    Setting("KEFU_WECHAT_TOKEN", "", str, "the Token from 服务器配置 (secret); unset: connector off"),
    Setting("KEFU_WECHAT_APPID", "", str, "开发者ID (AppID)"),
    Setting("KEFU_WECHAT_SECRET", "", str, "开发者密码 (AppSecret) (secret)"),
    Setting("KEFU_WECHAT_AES_KEY", "", str, "EncodingAESKey, 43 characters, for 安全模式 (secret)"),
    Setting("KEFU_WECHAT_API_BASE", "https://api.weixin.qq.com", url, "WeChat API base (tests use a local fake)"),
    Setting("KEFU_WECHAT_PASSIVE_SECONDS", 4.0, float, "how long WeChat's request is held for a passive reply"),

    # customers on 微信客服, WeCom customer service (connectors/wechat/kf.py)
    Setting("KEFU_WECOM_KF_CORPID", "", str, "企业ID (CorpID) of the WeCom that owns the 微信客服 accounts; unset: connector off"),
    Setting("KEFU_WECOM_KF_SECRET", "", str, "the 微信客服 Secret (gettoken's corpsecret) (secret)"),
    Setting("KEFU_WECOM_KF_TOKEN", "", str, "the callback Token from 微信客服 → API → 接收事件服务器 (secret)"),
    Setting("KEFU_WECOM_KF_AES_KEY", "", str, "the callback EncodingAESKey, 43 characters (secret)"),
    Setting("KEFU_WECOM_KF_API_BASE", "https://qyapi.weixin.qq.com", url, "WeCom API base (tests use a local fake)"),
    Setting("KEFU_WECOM_KF_HANDOFF", "kefu", str, "kefu: handoffs stay in kefu's console; wecom (or wecom:<userid>): to WeCom's reception staff"),

    # retraining loop (bot/training)
    Setting("KEFU_ADMIN_PROJECT", ROOT, Path, "project copy whose data the retraining loop edits and trains (tests use a temp copy)"),
    Setting("KEFU_LOW_CONFIDENCE", 0.6, float, "inbox filter: turns under this intent confidence"),
    Setting("KEFU_COMPARE_TOLERANCE", 0.01, float, "a candidate is worse when a score drops by more than this"),
    Setting("KEFU_KEEP_MODELS", 5, int, "activated models kept (older ones this loop trained are deleted); at least 1"),
    Setting("KEFU_FINETUNE_FRACTION", 0.5, float, "rasa train --epoch-fraction of a fine-tune run"),
    Setting("KEFU_TRAIN_NICE", 19, int, "nice level of retraining runs (rasa data validate/train; also ionice best-effort 7), so the live bot keeps the CPU; 0: normal priority"),

    # scale-out (bot/gateway/scaleout.py, deploy/)
    Setting("KEFU_REDIS_URL", None, str, "Redis for turn order and live events across gateway replicas; unset: one gateway"),
    Setting("KEFU_REDIS_PREFIX", "kefu:", str, "prefix of the gateways' Redis keys and channels"),
    Setting("KEFU_PG_HOST", "127.0.0.1", str, "PostgreSQL host of deploy/scaled.py (and deploy/endpoints.yml)"),
    Setting("KEFU_PG_PORT", 5432, int, "PostgreSQL port of deploy/scaled.py"),
    Setting("KEFU_PG_USER", "postgres", str, "PostgreSQL user of deploy/scaled.py (trust auth)"),
    Setting("KEFU_PG_PASSWORD", None, str, "PostgreSQL password in deploy/compose.yml and deploy/endpoints.yml, URL-safe (secret)"),
    Setting("KEFU_REDIS_HOST", "127.0.0.1", str, "Redis host of deploy/scaled.py (and deploy/endpoints.yml)"),
    Setting("KEFU_REDIS_PORT", 6379, int, "Redis port of deploy/scaled.py"),

    # tests only (read by tests/, listed here so every name has one home)
    Setting("KEFU_TEST_MODEL", None, Path, "tests: use this model archive instead of training one"),
    Setting("KEFU_SCALED_ORDERING", "gateway", str, "tests: scaled consistency with gateway (Redis) or rasa-lock-store ordering"),
    Setting("KEFU_SCREENSHOT", None, Path, "tests: save the agents' console screenshot here"),
    Setting("KEFU_WORKSPACE_SCREENSHOTS", None, Path, "tests: save the workspace screenshots (tickets.png, return-calls.png, reports.png) in this directory"),
    Setting("KEFU_ADMIN_SCREENSHOT", None, Path, "tests: save the admin console screenshot here"),
    Setting("KEFU_WIDGET_SCREENSHOT", None, Path, "tests: save the embeddable web widget's screenshot here"),
)

BY_NAME: Dict[str, Setting] = {s.name: s for s in SETTINGS}


def setting(name: str) -> Any:
    """The current value of one variable (KeyError for a name not in the table)."""
    return BY_NAME[name].read()


@dataclass(frozen=True)
class Settings:
    """The gateway's settings in one object (tests build one with overrides)."""
    host: str = BY_NAME["KEFU_HOST"].default
    port: int = BY_NAME["KEFU_PORT"].default
    rasa_url: str = BY_NAME["KEFU_RASA_URL"].default
    action_url: str = BY_NAME["KEFU_ACTION_URL"].default
    rasa_token: str | None = BY_NAME["KEFU_RASA_TOKEN"].default
    rasa_timeout: float = BY_NAME["KEFU_RASA_TIMEOUT"].default
    max_message_chars: int = BY_NAME["KEFU_MAX_MESSAGE_CHARS"].default
    reply_timeout: float = BY_NAME["KEFU_REPLY_TIMEOUT"].default   # longer than this: "please wait", answer follows
    rate_per_minute: float = BY_NAME["KEFU_RATE_PER_MINUTE"].default  # per conversation, after a burst of rate_burst
    rate_burst: int = BY_NAME["KEFU_RATE_BURST"].default
    requeue_after: float = BY_NAME["KEFU_REQUEUE_AFTER"].default   # a line left "processing" this long (crash) is replayed
    sla_interval: float = BY_NAME["KEFU_SLA_INTERVAL"].default
    wecom_webhook: str | None = BY_NAME["KEFU_WECOM_WEBHOOK"].default
    widget_origins: Tuple[str, ...] = BY_NAME["KEFU_WIDGET_ORIGINS"].default   # CORS for the widget
    trusted_proxies: Tuple[Any, ...] = BY_NAME["KEFU_TRUSTED_PROXIES"].default
    rate_per_address_minute: float = BY_NAME["KEFU_RATE_PER_ADDRESS_MINUTE"].default
    rate_address_burst: int = BY_NAME["KEFU_RATE_ADDRESS_BURST"].default
    max_concurrent_turns: int = BY_NAME["KEFU_MAX_CONCURRENT_TURNS"].default

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(**{field: setting(name) for field, name in GATEWAY_FIELDS.items()})


GATEWAY_FIELDS = {
    "host": "KEFU_HOST", "port": "KEFU_PORT", "rasa_url": "KEFU_RASA_URL", "action_url": "KEFU_ACTION_URL",
    "rasa_token": "KEFU_RASA_TOKEN", "rasa_timeout": "KEFU_RASA_TIMEOUT",
    "max_message_chars": "KEFU_MAX_MESSAGE_CHARS", "reply_timeout": "KEFU_REPLY_TIMEOUT",
    "rate_per_minute": "KEFU_RATE_PER_MINUTE", "rate_burst": "KEFU_RATE_BURST",
    "requeue_after": "KEFU_REQUEUE_AFTER", "sla_interval": "KEFU_SLA_INTERVAL",
    "wecom_webhook": "KEFU_WECOM_WEBHOOK", "widget_origins": "KEFU_WIDGET_ORIGINS",
    "trusted_proxies": "KEFU_TRUSTED_PROXIES", "rate_per_address_minute": "KEFU_RATE_PER_ADDRESS_MINUTE",
    "rate_address_burst": "KEFU_RATE_ADDRESS_BURST", "max_concurrent_turns": "KEFU_MAX_CONCURRENT_TURNS",
}


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    text = str(value).replace(str(ROOT), "<project>")
    return f"`{text}`" if text else '`""`'


def markdown_table() -> str:
    """The README's settings table (tests/test_settings.py checks the README holds exactly this)."""
    lines = ["| Variable | Type | Default | What it is for |", "|---|---|---|---|"]
    for s in SETTINGS:
        lines.append(f"| `{s.name}` | {s.parse.__name__} | {_shown(s.default)} | {s.doc.replace('|', '/')} |")
    return "\n".join(lines)


README_BEGIN, README_END = "<!-- settings table: python -m bot.settings -->", "<!-- end of settings table -->"


def write_readme(path: Path = ROOT / "README.md") -> None:
    """Replace the table between the README markers with markdown_table()."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    path.write_text(f"{head}{README_BEGIN}\n{markdown_table()}\n{README_END}{tail}", encoding="utf-8")


if __name__ == "__main__":                        # --readme: rewrite the README table in place
    import sys
    write_readme() if "--readme" in sys.argv[1:] else print(markdown_table())
