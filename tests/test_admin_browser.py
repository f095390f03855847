"""The admins' 训练 page in a real browser (Debian's chromium via Playwright, issue 6):
inbox → annotate → train (fine-tune, for real) → compare → activate, then roll back.

``KEFU_ADMIN_SCREENSHOT=docs/admin.png`` also saves the screenshot shown in the README.
"""
from __future__ import annotations

import os
import time

import pytest

from tests.conftest import Customer
from tests.handoff_helpers import make_agent, sign_in

pytestmark = pytest.mark.e2e


def wait_in_page(page, expression: str, seconds: float) -> None:
    """Until ``expression`` is true in the page (evaluated through the driver, not by eval)."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true in the page: {expression}"
        page.wait_for_timeout(200)

HOSTILE = '<img src=x onerror="window.__pwned=1">我的电话13812345678'


def test_inbox_annotate_train_compare_activate_in_the_browser(admin_stack, browser):  # noqa: F811
    customer = Customer(admin_stack.url, "admin-browser")
    customer.say("包装破了")
    customer.say(HOSTILE)
    name, password = make_agent("chief", role="admin")
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    try:
        page = ctx.new_page()
        sign_in(page, admin_stack.url + "/console/admin", name, password, "训练")

        row = page.locator("#inbox tr", has_text="包装破了").first
        row.wait_for(timeout=30_000)
        # customers' text is text: no markup, phones masked
        hostile = page.locator("#inbox .msg", has_text="onerror")
        assert "138****5678" in hostile.first.inner_text()
        assert "13812345678" not in page.inner_text("#inbox")
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#inbox img").count() == 0

        row.locator("select.intent").select_option("complain")
        row.locator("button.save").click()
        page.locator("#inbox tr", has_text="包装破了").first.wait_for(state="detached")

        page.check("#finetune")
        page.click("#train")
        page.wait_for_selector("#train-status >> text=/训练中|排队/", timeout=60_000)
        page.wait_for_selector("#train-status >> text=训练完成", timeout=900_000)

        page.click("#compare")
        page.wait_for_selector("#verdict", timeout=900_000)
        assert page.locator("#scores tr").count() == 4
        # polled from Python: wait_for_function evals its predicate in the page, which the
        # console's CSP (script-src 'self', no unsafe-eval) refuses once it has to poll
        wait_in_page(page, "document.getElementById('confusion').naturalWidth > 0", 30)
        if "更差" in page.inner_text("#verdict"):
            page.fill("#reason", "browser test: a few fine-tune epochs")
        page.click("#activate")
        page.locator("#log tr", has_text=name).filter(has_text="上线").wait_for(timeout=300_000)
        wait_in_page(page, "!document.getElementById('activate').disabled", 30)
        assert page.inner_text("#activate-error") == ""
        shot = os.environ.get("KEFU_ADMIN_SCREENSHOT")
        if shot:
            page.screenshot(path=shot, full_page=True)

        page.fill("#reason", "")
        page.click("#rollback")
        page.locator("#log tr", has_text=name).filter(has_text="回滚").wait_for(timeout=300_000)
        assert page.inner_text("#activate-error") == ""
    finally:
        ctx.close()
