"""Train the assistant only when its inputs changed.

The model file is named after a hash of everything training reads (config, domain,
data, the business profile, the domain dictionary and the custom NLU component), so
``make run`` and the test suite reuse a model that matches and retrain one that doesn't.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

from bot.training import responses as render_responses
from bot.profile.business import PROJECT_ROOT
from bot.brain.rasa_server import rasa_env

# Everything that changes what a trained model does: config (first), domain, data, the
# domain dictionary, every custom Rasa graph component, and the profile files rendered into
# responses. A component left out here once made an edited classifier reuse an old model.
INPUTS = ["config.yml", "domain.yml", "data", "bot/dictionary", "bot/brain/components",
          "bot/business_profile.yml", "bot/faq_answers.yml", "bot/response_templates.yml"]
MODELS = PROJECT_ROOT / "models"


def data_hash(root: Path = PROJECT_ROOT, config: str = "config.yml") -> str:
    digest = hashlib.sha256()
    for entry in [config] + INPUTS[1:]:
        path = root / entry
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def model_path(config: str = "config.yml") -> Path:
    return MODELS / f"kefu-{data_hash(config=config)}.tar.gz"


def ensure_model(config: str = "config.yml", *, force: bool = False) -> Path:
    """Render the profile's responses, then train unless a matching model exists."""
    render_responses.main([])
    target = model_path(config)
    if target.exists() and not force:
        print(f"model up to date: {target.relative_to(PROJECT_ROOT)}")
        return target
    MODELS.mkdir(exist_ok=True)
    env = rasa_env()
    cmd = [str(Path(sys.executable).with_name("rasa")), "train", "--config", config,
           "--out", str(MODELS), "--fixed-model-name", target.name[:-len(".tar.gz")]]
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--config", default="config.yml")
    args = parser.parse_args()
    ensure_model(args.config, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
