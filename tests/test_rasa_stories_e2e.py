"""tests/test_stories.yml through Rasa's own test runner (`rasa test core`), the convention
Rasa users expect beside the gateway end-to-end tests."""
import subprocess
import sys
from pathlib import Path

import pytest

from bot.profile.business import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_rasa_test_core_passes_the_conversation_stories(trained_model, tmp_path):
    rasa = Path(sys.executable).parent / "rasa"
    result = subprocess.run(
        [str(rasa), "test", "core", "--model", str(trained_model), "--stories",
         str(PROJECT_ROOT / "tests" / "test_stories.yml"), "--out", str(tmp_path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
        env={**__import__("os").environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    failed = (tmp_path / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert "story:" not in failed, failed
