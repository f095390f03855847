"""Train the assistant only when its inputs changed.

One model per business: ``models/<business>-<hash>.tar.gz``, the hash taken over everything
training reads for that business (config, the shared domain, the domain dictionary, the
custom NLU components, and every file its business pack names: profile, templates, domain
parts, training data, words), so ``make run`` and the test suite reuse a model that matches
and retrain one that doesn't. ``make train`` prints the path of the model it trained or
reused as its last line.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

from bot.training import assemble
from bot.training import responses as render_responses
from bot.profile import pack as packs
from bot.profile.business import PROJECT_ROOT
from bot.brain.rasa_server import rasa_env, train_command

# Shared inputs of every business's model: config (first), the shared domain, the domain
# dictionary, every custom Rasa graph component and the code they learn with (the address
# grammar the location extractor learns its place words by, the homophone respelling the
# normaliser rewrites every training example with). A component left out here once made an
# edited classifier reuse an old model.
SHARED_INPUTS = ["config.yml", "domain.yml", "bot/dictionary", "bot/brain/components", "bot/profile/places.py",
                 "bot/profile/soundalike.py"]
# Every file any model reads (what a copy of the project needs, tests/test_layout.py):
# the shared inputs, the packs, and what the packs point at outside their folders.
def _outermost(entries):
    """The entries, without those inside another one (a copy takes each file once)."""
    chosen = sorted(set(entries))
    return [e for e in chosen if not any(e.startswith(o + "/") for o in chosen if o != e)]


INPUTS = SHARED_INPUTS + _outermost(e for name in packs.names() for e in packs.load(name).entries())
MODELS = PROJECT_ROOT / "models"
# the pack files no model reads: what the actions say, the agents' 快捷回复
RUNTIME_ONLY = ("messages", "canned_replies")


def _files(path: Path):
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [path] if path.exists() else []


def data_hash(root: Path = PROJECT_ROOT, config: str = "config.yml", business: str | None = None) -> str:
    """The cache key of ``business``'s model (default ``KEFU_BUSINESS``) in the project at ``root``."""
    pack = packs.load(business, root=root)
    digest = hashlib.sha256(pack.name.encode())
    # read by the running actions and consoles, never by training: rewording retrains nothing
    seen = {pack.path(key) for key in RUNTIME_ONLY}
    for entry in [config] + SHARED_INPUTS[1:] + pack.entries():
        for file in _files(root / entry):
            if file in seen:
                continue
            seen.add(file)
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def model_path(config: str = "config.yml", business: str | None = None) -> Path:
    name = packs.load(business).name
    return MODELS / f"{name}-{data_hash(config=config, business=name)}.tar.gz"


def ensure_model(config: str = "config.yml", *, force: bool = False, business: str | None = None) -> Path:
    """Render the pack's responses, then train unless a matching model exists."""
    pack = packs.load(business)
    render_responses.main(["--business", pack.name])
    target = model_path(config, pack.name)
    if target.exists() and not force:
        print(f"model up to date: {target.relative_to(PROJECT_ROOT)}", file=sys.stderr)
        return target
    MODELS.mkdir(exist_ok=True)
    inputs = assemble.assemble(pack, config)
    env = rasa_env()
    cmd = [*train_command(), *inputs.args(),
           "--out", str(MODELS), "--fixed-model-name", target.name[:-len(".tar.gz")]]
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--config", default="config.yml")
    parser.add_argument("--business", help="the pack to train (default: KEFU_BUSINESS)")
    args = parser.parse_args()
    model = ensure_model(args.config, force=args.force, business=args.business)
    print(model.relative_to(PROJECT_ROOT), flush=True)      # the last line: the model's path
    return 0


if __name__ == "__main__":
    sys.exit(main())
