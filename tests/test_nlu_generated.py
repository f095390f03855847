"""data/nlu/generated.yml is what data/generate/ writes (seeded), like the rendered responses."""
from __future__ import annotations

import subprocess
import sys

from bot.profile.business import PROJECT_ROOT

GENERATOR = PROJECT_ROOT / "data" / "generate"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GENERATOR), *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_generated_training_data_is_fresh():
    proc = run("--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def test_noise_keeps_annotations_and_is_seeded():
    sys.path.insert(0, str(GENERATOR))
    try:
        import random

        import noise
    finally:
        sys.path.remove(str(GENERATOR))
    raw = "我家[冰箱](product)不制冷了，电话[138 1234 5678](phone)，怎么办？"
    for seed in range(50):
        for fn in noise.NOISES:
            bent = fn(raw, random.Random(seed))
            assert "[冰箱](product)" in bent and "[138 1234 5678](phone)" in bent, (fn, bent)
        assert noise.noisy(raw, random.Random(seed)) == noise.noisy(raw, random.Random(seed))
    assert noise.dialect("我怎么办", random.Random(0)) != "我怎么办" or \
        noise.dialect("我怎么办", random.Random(1)) != "我怎么办"
