"""bot/settings.py is the one table of ``KEFU_*`` variables: every name the project mentions
is in it and in the README's table, and no other module reads one from the environment."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot import settings
from bot.settings import BY_NAME, GATEWAY_FIELDS, SETTINGS, Settings, setting

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("bot", "connectors", "actions", "bench", "deploy")
NAME_RE = re.compile(r"\bKEFU_[A-Z0-9_]*[A-Z0-9]\b")
PREFIX = "KEFU" + "_"                      # spelled apart so this file names no variable itself
BEGIN, END = settings.README_BEGIN, settings.README_END


def _files():
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".yml", ".yaml", ".sh", "") and "__pycache__" not in path.parts:
                yield path
    yield from sorted((ROOT / "tests").rglob("*.py"))
    yield from (ROOT / name for name in ("Makefile", "config.yml", "endpoints.yml", "credentials.yml", "domain.yml"))


def _mentioned():
    found = {}
    for path in _files():
        if path.exists():
            for name in NAME_RE.findall(path.read_text(encoding="utf-8", errors="replace")):
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_every_name_in_the_code_is_in_the_table():
    mentioned = _mentioned()
    assert len(mentioned) > 40                               # the scan does see the code
    missing = {name: where for name, where in mentioned.items() if name not in BY_NAME}
    assert not missing, f"add these to bot/settings.py SETTINGS: {missing}"


def test_readme_holds_the_generated_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert BEGIN in readme and END in readme, "README lacks the settings table markers"
    block = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == settings.markdown_table(), "README settings table is stale: run `python -m bot.settings --readme`"
    stale = set(NAME_RE.findall(readme)) - set(BY_NAME)
    assert not stale, f"README names variables the table does not know: {sorted(stale)}"


def _is_kefu(node) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.startswith(PREFIX)
    if isinstance(node, ast.JoinedStr) and node.values:
        return _is_kefu(node.values[0])
    return False


def environment_reads(source: str) -> list:
    """Lines that read a KEFU_ variable from a mapping (os.environ, an alias of it, getenv):
    ``x.get("KEFU_…")``, ``getenv("KEFU_…")``, ``x["KEFU_…"]`` (load), ``"KEFU_…" in x``.
    Building a child process's environment (dict literals, keywords, stores, pop) is not a read."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and _is_kefu(node.args[0]):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("get", "getenv", "setdefault"):
                lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_kefu(node.slice):
            lines.append(node.lineno)
        elif isinstance(node, ast.Compare) and _is_kefu(node.left) and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_scanner_sees_reads_and_not_child_environments():
    reads = (f'import os\nA = os.environ.get("{PREFIX}A", "1")\nB = os.getenv("{PREFIX}B")\n'
             f'env = os.environ\nC = env["{PREFIX}C"]\nD = "{PREFIX}D" in env\nE = env.get(f"{PREFIX}{{x}}")\n')
    assert environment_reads(reads) == [2, 3, 5, 6, 7]
    writes = (f'env = dict(PYTHONPATH="x", {PREFIX}PORT="1")\nenv.update({PREFIX}RASA_URL="u")\n'
              f'env["{PREFIX}A"] = "1"\nenv.pop("{PREFIX}REDIS_URL", None)\nchild = {{"{PREFIX}DATA_KEY": "k"}}\n'
              f'value = setting("{PREFIX}PORT")\n')
    assert environment_reads(writes) == []


def test_only_bot_settings_reads_the_environment():
    offenders = {}
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "bot" / "settings.py":
                continue
            lines = environment_reads(path.read_text(encoding="utf-8"))
            if lines:
                offenders[str(path.relative_to(ROOT))] = lines
    assert not offenders, f"read these through bot.settings.setting(): {offenders}"


def test_table_entries_are_well_formed():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names)), "a name appears twice in SETTINGS"
    for s in SETTINGS:
        assert re.fullmatch(r"KEFU_[A-Z0-9_]+", s.name), s.name
        assert s.doc.strip() and "\n" not in s.doc, f"{s.name}: doc must be one line"
        if isinstance(s.default, (str, int, float, Path)):    # the default is what the parser makes of it
            assert s.parse(str(s.default)) == s.default, s.name


def test_values_are_read_at_each_call(monkeypatch):
    monkeypatch.setenv("KEFU_RATE_BURST", "7")
    assert setting("KEFU_RATE_BURST") == 7
    monkeypatch.setenv("KEFU_RATE_BURST", "9")
    assert setting("KEFU_RATE_BURST") == 9
    monkeypatch.setenv("KEFU_RATE_BURST", "  ")                 # blank counts as unset
    assert setting("KEFU_RATE_BURST") == 20
    monkeypatch.delenv("KEFU_RATE_BURST")
    assert setting("KEFU_RATE_BURST") == 20
    monkeypatch.setenv("KEFU_TELEGRAM_API_BASE", "http://127.0.0.1:9/")
    assert setting("KEFU_TELEGRAM_API_BASE") == "http://127.0.0.1:9"
    monkeypatch.setenv("KEFU_TELEGRAM_MODE", " Polling ")
    assert setting("KEFU_TELEGRAM_MODE") == "polling"
    monkeypatch.setenv("KEFU_PROFILE", "/tmp/x.yml")
    assert setting("KEFU_PROFILE") == Path("/tmp/x.yml")
    with pytest.raises(KeyError):
        setting(PREFIX + "NOT_IN_THE_TABLE")
    monkeypatch.setenv("KEFU_PORT", "eighty")
    with pytest.raises(ValueError):
        setting("KEFU_PORT")


def test_gateway_settings_come_from_the_table(monkeypatch):
    fields = set(Settings.__dataclass_fields__)
    assert fields == set(GATEWAY_FIELDS), "every Settings field maps to one variable"
    for field, name in GATEWAY_FIELDS.items():
        monkeypatch.delenv(name, raising=False)
        assert getattr(Settings(), field) == BY_NAME[name].default
    assert Settings.from_env() == Settings()
    monkeypatch.setenv("KEFU_PORT", "8123")
    monkeypatch.setenv("KEFU_RASA_URL", "http://127.0.0.1:5006/")
    monkeypatch.setenv("KEFU_RASA_TOKEN", "")
    current = Settings.from_env()
    assert (current.port, current.rasa_url, current.rasa_token) == (8123, "http://127.0.0.1:5006", None)
