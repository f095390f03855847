"""What Rasa trains on for one business: the shared parts plus the business pack's.

Runs in ``make train`` (bot/training/model_cache.py), ``make validate`` and the benches.

* **domain**: the fixed top-level ``domain.yml`` is the shared part (intents, session, the
  dialogue machinery's actions and replies); the pack's domain files (slots, forms,
  buttons, responses that differ) are merged over it into
  ``var/build/<business>/domain.yml``. Merging here rather than handing Rasa a directory of
  domain files gives one order (shared first, then the pack's files sorted by name, a
  pack's key replaces the shared one) and one file ``rasa data validate`` and a reviewer
  can read. A pack file may also ``drop:`` shared names it does not serve
  (``drop: {entities: [order_id]}``).
* **data**: the pack's data folders (NLU, rules, stories), as listed in its pack.yml;
* **config**: ``config.yml``, with the jieba ``dictionary_path`` pointing at a folder that
  holds ``bot/dictionary`` and the pack's own word lists, and the components the pack's
  ``pipeline:`` adds, each placed ``after:`` a step of config.yml (a value written
  ``profile:<key>`` is that key of the pack's profile, e.g. the estate's shared places).

A pack with no domain files and no words of its own trains on ``domain.yml`` and
``config.yml`` exactly as they are.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

from bot.profile import pack as packs
from bot.profile.business import PROJECT_ROOT

SHARED_DOMAIN = "domain.yml"
SHARED_DICTIONARY = "bot/dictionary"
LIST_KEYS = ("intents", "entities", "actions", "forms_order")
DICT_KEYS = ("slots", "forms", "responses", "session_config")


@dataclass(frozen=True)
class Inputs:
    """The paths one ``rasa train`` / ``rasa data validate`` run reads (project-relative)."""
    config: str
    domain: str
    data: Tuple[str, ...]

    def args(self) -> List[str]:
        return ["--config", self.config, "--domain", self.domain, "--data", *self.data]


def yaml_files(path: Path) -> List[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def entry_name(item: Any) -> str:
    """An intent or entity may be written ``name`` or ``{name: {options}}``."""
    return next(iter(item)) if isinstance(item, dict) else str(item)


def merge_domain(shared: Dict[str, Any], parts: List[Tuple[Path, Dict[str, Any]]]) -> Dict[str, Any]:
    """``shared`` with each part merged over it, in order (a part's keys win)."""
    merged: Dict[str, Any] = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                              for k, v in shared.items()}
    for path, part in parts:
        for key, drop in (part.get("drop") or {}).items():
            if key in merged and isinstance(merged[key], list):
                merged[key] = [i for i in merged[key] if entry_name(i) not in drop]
            elif key in merged and isinstance(merged[key], dict):
                merged[key] = {k: v for k, v in merged[key].items() if k not in drop}
            else:
                raise packs.PackError(f"{path}: drop.{key}: the shared domain has no {key}")
        for key, value in part.items():
            if key in ("drop", "version"):
                continue
            if isinstance(value, list):
                have = {entry_name(i) for i in merged.get(key) or []}
                merged[key] = list(merged.get(key) or []) + [i for i in value if entry_name(i) not in have]
            elif isinstance(value, dict):
                merged[key] = {**(merged.get(key) or {}), **value}
            else:
                merged[key] = value
    return merged


def domain_parts(pack: packs.Pack) -> List[Tuple[Path, Dict[str, Any]]]:
    parts = []
    for entry in pack.domain:
        for file in yaml_files(pack.root / entry):
            parts.append((file, yaml.safe_load(file.read_text(encoding="utf-8")) or {}))
    return parts


def build_dir(pack: packs.Pack) -> Path:
    return pack.root / "var" / "build" / pack.name


def domain_of(pack: packs.Pack) -> Dict[str, Any]:
    shared = yaml.safe_load((pack.root / SHARED_DOMAIN).read_text(encoding="utf-8"))
    return merge_domain(shared, domain_parts(pack))


def profile_value(profile: Dict[str, Any], dotted: str, where: str) -> Any:
    """``business.estate`` of the profile (a missing key names ``where``)."""
    value: Any = profile
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise packs.PackError(f"{where} has no {dotted}")
        value = value[key]
    return value


def with_pack_components(pack: packs.Pack, pipeline: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """``pipeline`` with the components the pack's ``pipeline:`` adds, each after its step."""
    extras = pack.manifest.get("pipeline") or []
    if not isinstance(extras, list):
        raise packs.PackError(f"{pack.manifest_path()}: pipeline: a list of components")
    profile = None
    steps = list(pipeline)
    for n, extra in enumerate(extras):
        where = f"{pack.manifest_path()}: pipeline[{n}]"
        if not isinstance(extra, dict) or not extra.get("name") or not extra.get("after"):
            raise packs.PackError(f"{where}: a component needs a name and the step it comes after")
        step = {k: v for k, v in extra.items() if k != "after"}
        for key, value in step.items():
            if isinstance(value, str) and value.startswith("profile:"):
                if profile is None:
                    profile = yaml.safe_load(pack.path("profile").read_text(encoding="utf-8")) or {}
                step[key] = profile_value(profile, value[len("profile:"):],
                                          f"{where}.{key}: {pack.files['profile']}")
        at = [i for i, s in enumerate(steps) if s.get("name") == extra["after"]]
        if not at:
            raise packs.PackError(f"{where}.after: the pipeline has no step {extra['after']!r}")
        steps.insert(at[-1] + 1, step)
    return steps


def assemble(pack: packs.Pack | None = None, config: str = "config.yml") -> Inputs:
    """Write what the pack needs under var/build/<business>/; the paths to train on."""
    pack = pack or packs.load()
    root = pack.root
    out = build_dir(pack)
    domain = SHARED_DOMAIN
    if pack.domain:
        out.mkdir(parents=True, exist_ok=True)
        target = out / "domain.yml"
        text = ("# Assembled by bot/training/assemble.py from domain.yml and "
                f"{', '.join(pack.domain)}: do not edit.\n"
                + yaml.safe_dump(domain_of(pack), allow_unicode=True, sort_keys=False, width=1000))
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        domain = str(target.relative_to(root))
    if pack.dictionary or pack.manifest.get("pipeline"):
        out.mkdir(parents=True, exist_ok=True)
        settings = yaml.safe_load((root / config).read_text(encoding="utf-8"))
        settings["pipeline"] = with_pack_components(pack, settings.get("pipeline") or [])
        if pack.dictionary:
            words = out / "dictionary"
            if words.exists():
                shutil.rmtree(words)
            words.mkdir(parents=True)
            sources = [root / SHARED_DICTIONARY] + [root / d for d in pack.dictionary]
            for n, source in enumerate(sources):
                for file in sorted(source.glob("*.txt")) if source.is_dir() else [source]:
                    shutil.copy(file, words / f"{n:02d}_{file.name}")
            for step in settings["pipeline"]:
                if step.get("name") == "JiebaTokenizer":
                    step["dictionary_path"] = str(words.relative_to(root))
        target = out / Path(config).name
        target.write_text("# Assembled by bot/training/assemble.py: " + config + " with the pack's words"
                          " and components.\n"
                          + yaml.safe_dump(settings, allow_unicode=True, sort_keys=False), encoding="utf-8")
        config = str(target.relative_to(root))
    data = pack.data or ("data",)
    return Inputs(config=config, domain=domain, data=tuple(data))


def nlu_paths(pack: packs.Pack) -> List[Path]:
    """The pack's NLU training files (rules and stories left out)."""
    found = []
    for entry in pack.data:
        for file in yaml_files(pack.root / entry):
            body = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            if isinstance(body, dict) and "nlu" in body:
                found.append(file)
    return found


def stage_nlu(pack: packs.Pack, target: Path) -> Path:
    """The pack's NLU files copied into one folder (what ``rasa train nlu`` and the bench read)."""
    target.mkdir(parents=True, exist_ok=True)
    for n, file in enumerate(nlu_paths(pack)):
        shutil.copy(file, target / f"{n:02d}_{file.name}")
    return target


def default_root() -> Path:
    return PROJECT_ROOT
