"""The business-pack commands: new (copy a pack), validate (check one), list."""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import yaml

from bot.business.checks import problems
from bot.profile import pack as packs
from bot.profile.business import PROJECT_ROOT


def new(name: str, source: str, root: Path = PROJECT_ROOT, title: Optional[str] = None) -> Path:
    """``businesses/<name>/``: every part of ``source`` copied into the new folder, its
    pack.yml pointing there (a copy, not a fork: the code stays shared)."""
    if not packs.NAME_RE.match(name):
        raise packs.PackError(f"{name!r}: a pack name is lower-case letters, digits and _")
    origin = packs.load(source, root=root)
    folder = root / packs.PACKS / name
    if folder.exists():
        raise packs.PackError(f"{folder} exists already")
    shutil.copytree(origin.folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = dict(origin.manifest)
    own = f"{packs.PACKS}/{origin.name}/"

    def moved(path: str, where: str) -> str:
        if path.startswith(own):
            return f"{packs.PACKS}/{name}/" + path[len(own):]
        target = folder / where
        src = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy(src, target)
        return str(target.relative_to(root))

    layout = {"profile": "profile.yml", "faq_answers": "faq_answers.yml",
              "response_templates": "response_templates.yml", "canned_replies": "canned_replies.yml",
              "messages": "messages.yml", "rendered": "data/responses/rendered.yml"}
    manifest["files"] = {k: moved(v, layout.get(k, Path(v).name)) for k, v in origin.files.items()}
    for key in ("domain", "data", "dictionary"):
        manifest[key] = [moved(p, key if key != "data" else "data") for p in getattr(origin, key)]
    evaluation = dict(origin.evaluation)
    if "train" in evaluation:
        evaluation["train"] = moved(evaluation["train"], "data/nlu")
    evaluation["own_split"] = f"tests/nlu_{name}"
    evaluation["blind"] = f"tests/nlu_blind_{name}"
    manifest.update(name=name, title=title or name, evaluation=evaluation)
    if "generator" in manifest:
        manifest["generator"] = moved(manifest["generator"], Path(manifest["generator"]).name)
    text = (f"# Business pack {name!r}, copied from {origin.name!r} by `python -m bot.business new`.\n"
            "# Edit profile.yml (facts and promises), the templates and the training data; then\n"
            f"# `KEFU_BUSINESS={name} make validate` and `KEFU_BUSINESS={name} make train`.\n")
    (folder / "pack.yml").write_text(text + yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False),
                                     encoding="utf-8")
    return folder


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.business", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("new", help="a new pack copied from another")
    make.add_argument("name")
    make.add_argument("--from", dest="source", default="shop", help="the pack to copy (shop, property …)")
    make.add_argument("--title", help="the business's name as customers read it")
    check = sub.add_parser("validate", help="check a pack for completeness")
    check.add_argument("--business", help="default: KEFU_BUSINESS")
    check.add_argument("--rasa", action="store_true", help="then `rasa data validate` on the assembled domain and data")
    sub.add_parser("list", help="the packs there are")
    args = parser.parse_args(argv)
    try:
        if args.command == "new":
            folder = new(args.name, args.source, title=args.title)
            print(f"created {folder.relative_to(PROJECT_ROOT)}/ from {args.source}; next: "
                  f"KEFU_BUSINESS={args.name} make validate")
            return 0
        if args.command == "list":
            for name in packs.names():
                print(f"{name}\t{packs.load(name).title}")
            return 0
        pack = packs.load(args.business)
    except packs.PackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found = problems(pack)
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    if found:
        print(f"{pack.name}: {len(found)} problem(s)", file=sys.stderr)
        return 1
    print(f"{pack.name}: pack complete ({pack.title})")
    if args.rasa:
        return rasa_validate(pack)
    return 0


def rasa_validate(pack: packs.Pack) -> int:
    """Rasa's own checks (rules against stories, domain against data) on what training reads."""
    import subprocess

    from bot.training import assemble
    from bot.training import responses

    responses.main(["--business", pack.name])
    inputs = assemble.assemble(pack)
    cmd = [str(Path(sys.executable).with_name("rasa")), "data", "validate", *inputs.args()]
    return subprocess.run(cmd, cwd=pack.root).returncode


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


PLACEHOLDER = re.compile(r"\{([a-z_]+)\[([a-z_]+)\]\}")
