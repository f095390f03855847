"""Last file of the run (pytest collects files in name order): scan every process log."""
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
PHONE = re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)")


def test_zz_logs_of_the_whole_run_hold_no_phone_in_clear(assistant):
    """Every phone the tests planted (138…, 139…, 159…, 186…) appears masked, if at all."""
    logs = list(Path(assistant.log_dir).glob("*.log"))
    assert logs, "the stack wrote no logs"
    for log in logs:
        content = log.read_text(encoding="utf-8", errors="replace")
        leaked = PHONE.findall(content)
        assert not leaked, f"{log.name} holds phone numbers in clear: {leaked[:3]}"
