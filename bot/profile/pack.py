"""The business pack: everything one business states, promises and is trained on.

Runs in every process (gateway, action server, training, benches). ``KEFU_BUSINESS`` names
the pack, a folder ``businesses/<name>/`` whose ``pack.yml`` says where each part lives:

    name: property
    title: 示例花园物业服务中心
    files:                      # one file each, relative to the project root
      profile: businesses/property/profile.yml            # facts and promises
      faq_answers: businesses/property/faq_answers.yml    # one template per FAQ topic
      response_templates: businesses/property/response_templates.yml
      canned_replies: businesses/property/canned_replies.yml
      messages: businesses/property/messages.yml          # what the actions say
      rendered: businesses/property/data/responses/rendered.yml   # written by make responses
    domain: [businesses/property/domain]     # merged over the shared domain.yml
    data: [businesses/property/data]         # NLU, rules and stories Rasa trains on
    dictionary: [businesses/property/dictionary]   # jieba words beside bot/dictionary
    evaluation: {own_split: tests/nlu_property, blind: tests/nlu_blind_property}

Code reads facts through :mod:`bot.profile.business` and wording through :func:`say`; it
never holds a business's facts or wording itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

from bot.settings import setting

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
PACKS = "businesses"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
FILE_KEYS = ("profile", "faq_answers", "response_templates", "canned_replies", "messages", "rendered")


class PackError(ValueError):
    """A pack that is missing or says something impossible (names the file and key)."""


@dataclass(frozen=True)
class Pack:
    name: str
    title: str
    root: Path                                  # the project the paths are relative to
    files: Dict[str, str]
    domain: Tuple[str, ...] = ()
    data: Tuple[str, ...] = ()
    dictionary: Tuple[str, ...] = ()
    evaluation: Dict[str, str] = field(default_factory=dict)
    manifest: Dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.root / PACKS / self.name

    def path(self, key: str) -> Path:
        """One of the pack's files (``profile``, ``faq_answers`` …) as an absolute path."""
        if key not in self.files:
            raise PackError(f"{self.manifest_path()}: files.{key} missing")
        return self.root / self.files[key]

    def manifest_path(self) -> Path:
        return self.folder / "pack.yml"

    def entries(self) -> List[str]:
        """Every project-relative path this pack trains on or states (the model cache key)."""
        listed = [PACKS + "/" + self.name]
        listed += [v for k, v in self.files.items()]
        listed += list(self.domain) + list(self.data) + list(self.dictionary)
        return sorted(dict.fromkeys(listed))

    def evaluation_path(self, key: str) -> Path | None:
        value = self.evaluation.get(key)
        return self.root / value if value else None


def _tuple(value: Any, where: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PackError(f"{where}: a path or a list of paths")
    return tuple(value)


def names(root: Path = PROJECT_ROOT) -> List[str]:
    """The packs in ``businesses/`` (folders with a pack.yml)."""
    folder = root / PACKS
    return sorted(p.parent.name for p in folder.glob("*/pack.yml")) if folder.is_dir() else []


def business() -> str:
    """The business this process serves (``KEFU_BUSINESS``, default ``shop``)."""
    return setting("KEFU_BUSINESS")


def load(name: str | None = None, root: Path = PROJECT_ROOT) -> Pack:
    """The pack called ``name`` (default: ``KEFU_BUSINESS``) of the project at ``root``."""
    name = name or business()
    manifest = root / PACKS / name / "pack.yml"
    if not NAME_RE.match(name or ""):
        raise PackError(f"KEFU_BUSINESS={name!r}: a pack name is lower-case letters, digits and _")
    if not manifest.exists():
        raise PackError(f"no business pack {name!r}: {manifest} missing "
                        f"(packs: {', '.join(names(root)) or 'none'})")
    return _load(str(manifest), manifest.stat().st_mtime, str(root))


@lru_cache(maxsize=16)
def _load(manifest: str, mtime: float, root: str) -> Pack:
    path = Path(manifest)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PackError(f"{path}: not YAML ({exc})") from exc
    name = path.parent.name
    if data.get("name") != name:
        raise PackError(f"{path}: name: {data.get('name')!r} must be the folder's name {name!r}")
    files = data.get("files") or {}
    missing = [k for k in FILE_KEYS if not isinstance(files.get(k), str)]
    if missing:
        raise PackError(f"{path}: files.{missing[0]} missing (every pack names {', '.join(FILE_KEYS)})")
    return Pack(name=name, title=str(data.get("title") or name), root=Path(root), files=dict(files),
                domain=_tuple(data.get("domain"), f"{path}: domain"),
                data=_tuple(data.get("data"), f"{path}: data"),
                dictionary=_tuple(data.get("dictionary"), f"{path}: dictionary"),
                evaluation=dict(data.get("evaluation") or {}), manifest=data)


def current() -> Pack:
    return load()


# --- wording ---------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _messages(path: str, mtime: float) -> Dict[str, Any]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def messages() -> Dict[str, Any]:
    """The pack's ``messages.yml``: what the actions say, keyed by purpose."""
    path = current().path("messages")
    return _messages(str(path), path.stat().st_mtime)


def say(key: str, **values: Any) -> str:
    """The pack's text ``key`` filled with the profile's facts and ``values``.

    ``{number}``-style placeholders take ``values``; ``{section[key]}`` the profile's facts.
    A key the pack lacks is a :class:`PackError` naming the file and key (``make validate``
    finds it before a customer does).
    """
    from bot.profile.business import load_profile

    template = _entry(key)
    return str(template).format_map({**load_profile(), **values})


def _entry(key: str) -> Any:
    texts = messages()
    if key not in texts:
        raise PackError(f"{current().path('messages')}: {key} missing")
    return texts[key]


def buttons(key: str) -> List[Dict[str, str]]:
    """The buttons the pack's messages.yml lists under ``key``: ``[{title, payload}, …]``
    (the payload is what the button sends, as if the customer typed it)."""
    return [{"title": str(b["title"]), "payload": str(b["payload"])} for b in _entry(key) or []]


def labels(key: str) -> Dict[str, str]:
    """A mapping the pack's messages.yml holds under ``key`` (a name per field, per form …)."""
    return {str(k): str(v) for k, v in (_entry(key) or {}).items()}


def text_list(key: str) -> List[str]:
    """A list the pack's messages.yml holds under ``key`` (words, buttons' titles …)."""
    value = messages().get(key) or []
    return [str(v) for v in value]
