"""Train the stock baseline model (bench/stock_config.yml) on the project's data.

Cached like bot/training/model_cache.py: ``models/stock-<hash>.tar.gz``, where the hash covers the stock
config and everything else training reads, so a rerun of ``make bench`` reuses it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.training import responses as render_responses
from bot.profile.business import PROJECT_ROOT
from bot.brain.rasa_server import rasa_env
from bot.training.model_cache import MODELS, data_hash

STOCK_CONFIG = "bench/stock_config.yml"


def stock_model_path() -> Path:
    return MODELS / f"stock-{data_hash(config=STOCK_CONFIG)}.tar.gz"


def ensure_stock_model() -> Path:
    render_responses.main([])
    target = stock_model_path()
    if target.exists():
        print(f"stock baseline model up to date: {target.relative_to(PROJECT_ROOT)}", flush=True)
        return target
    MODELS.mkdir(exist_ok=True)
    print(f"training the stock baseline ({STOCK_CONFIG}) – several minutes …", flush=True)
    env = rasa_env()
    cmd = [str(Path(sys.executable).with_name("rasa")), "train", "--config", STOCK_CONFIG,
           "--out", str(MODELS), "--fixed-model-name", target.name[:-len(".tar.gz")]]
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, check=True)
    return target


if __name__ == "__main__":
    print(ensure_stock_model())
