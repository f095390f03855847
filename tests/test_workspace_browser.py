"""The workspace in a real browser (Debian's chromium, Playwright), issue 15.

A customer files a repair with the bot; an agent finds it in 工单 by the phone's last 4
digits, assigns it to themselves (the phone shows in clear), moves it to resolved, records
the 回访 with a score and sees the ticket closed. A lead has 报表 open before and after:
the figures and the charts change, and the tickets CSV downloads with the ticket in it.

``KEFU_WORKSPACE_SCREENSHOTS=docs`` saves docs/tickets.png, docs/return-calls.png and
docs/reports.png (shown in the README).

Every live update (a change anywhere) draws the open ticket again: what the agent was
choosing or typing there is kept (the second test), or the status chosen in the select
could fall back to the first option between the choice and the click.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from bot.profile.business import shop_tz
from bot.settings import setting
from bot.store.tickets import TicketStore
from tests.conftest import Customer
from tests.handoff_helpers import AgentClient, make_agent, sign_in, wait_until

pytestmark = pytest.mark.e2e


def shot(page, name: str) -> None:
    folder = setting("KEFU_WORKSPACE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(400)
        page.screenshot(path=str(Path(folder) / name))


def figure(page, metric: str) -> str:
    return page.inner_text(f'.fig[data-metric="{metric}"] .v')


def chart_svg(page, name: str) -> str:
    src = page.get_attribute(f'img.r-chart[data-chart="{name}"]', "src")
    return page.evaluate("src => fetch(src).then(r => r.text())", src)


def test_repair_to_return_call_and_the_leads_dashboard(assistant, browser, tmp_path):
    last4 = f"{secrets.randbelow(9000) + 1000}"
    phone = f"1861234{last4}"
    customer = Customer(assistant.url, f"ws-{secrets.token_hex(4)}")
    customer.say("洗衣机不脱水了，麻烦派个师傅上门修一下")
    customer.say("北京市朝阳区建国路88号1单元302")
    customer.say(phone)
    [ticket] = [t for t in TicketStore().for_customer(customer.conversation_id) if t.kind == "repair"]
    day = ticket.created_at.astimezone(shop_tz()).strftime("%Y-%m-%d")

    agent_name, agent_password = make_agent("wsagent")
    lead_name, lead_password = make_agent("wslead", role="lead")
    agent_ctx = browser.new_context(viewport={"width": 1440, "height": 860}, locale="zh-CN")
    lead_ctx = browser.new_context(viewport={"width": 1440, "height": 1100}, locale="zh-CN",
                                   accept_downloads=True)
    try:
        lead = lead_ctx.new_page()
        sign_in(lead, assistant.url + "/console", lead_name, lead_password, "客服工作台")
        lead.click("#tab-reports")
        lead.wait_for_selector('.fig[data-metric="return_calls"]')
        lead.fill("#r-from", day)
        lead.fill("#r-to", day)
        lead.click("#r-go")
        lead.wait_for_selector('img.r-chart[data-chart="return_calls"]')
        before_calls, before_csat = figure(lead, "return_calls"), figure(lead, "csat")
        before_svg = chart_svg(lead, "return_calls")

        page = agent_ctx.new_page()
        sign_in(page, assistant.url + "/console", agent_name, agent_password, "客服工作台")
        assert page.locator("#tab-reports").is_hidden()          # agents have no 报表
        page.click("#tab-tickets")
        page.fill("#t-q", last4)
        page.click("#t-search")
        row = page.locator(f'.t-row[data-number="{ticket.number}"]')
        row.wait_for()
        assert phone not in row.inner_text() and last4 in row.inner_text()   # masked in the list
        row.click()
        page.click("#t-assign-me")
        page.locator("#t-detail", has_text=phone).wait_for()              # the assignee sees it
        for status in ("acknowledged", "in_progress", "resolved"):
            page.select_option("#t-new-status", status)
            page.click("#t-status-go")
            page.locator("#t-detail dd", has_text={"acknowledged": "已确认", "in_progress": "处理中",
                                                    "resolved": "已解决"}[status]).wait_for()
        page.locator('#t-clocks .clock[data-clock="first_response"][data-state="hit"]').wait_for()
        shot(page, "tickets.png")

        page.click("#tab-return-calls")
        call = page.locator(f'.rc-row[data-ticket="{ticket.number}"]')
        call.wait_for()
        assert call.locator(".rc-phone").inner_text() == phone
        call.locator(".rc-outcome").select_option("reached")
        call.locator(".rc-score").select_option("4")
        call.locator(".rc-comment").fill("客户确认洗衣机已修好")
        shot(page, "return-calls.png")
        call.locator(".rc-save").click()
        wait_until(lambda: TicketStore().find(ticket.number).status == "closed", 30, "closed")
        page.click("#tab-tickets")
        page.click("#t-search")
        page.locator(f'.t-row[data-number="{ticket.number}"]', has_text="已关闭").wait_for()

        lead.click("#r-go")
        wait_until(lambda: figure(lead, "return_calls") != before_calls, 30, "the figures to change")
        assert figure(lead, "csat") != before_csat
        lead.wait_for_selector('img.r-chart[data-chart="return_calls"]')
        assert chart_svg(lead, "return_calls") != before_svg
        assert lead.evaluate("[...document.querySelectorAll('img.r-chart')].every(i => i.complete && i.naturalWidth > 0)")
        assert lead.locator(".fig .def").count() >= 8                   # every definition shown
        shot(lead, "reports.png")
        with lead.expect_download() as download:
            lead.click("#r-csv-tickets")
        saved = tmp_path / "tickets.csv"
        download.value.save_as(saved)
        text = saved.read_text(encoding="utf-8-sig")
        assert text.startswith("number,kind") and ticket.number in text and phone not in text
    finally:
        agent_ctx.close()
        lead_ctx.close()


def test_a_live_update_keeps_what_the_agent_was_choosing(assistant, browser):
    ticket, _ = TicketStore().open_ticket(kind="repair", category="洗衣机", description="不脱水",
                                          customer_id=f"web:ws-live-{secrets.token_hex(4)}",
                                          channel="web", idempotency_key=secrets.token_hex(8))
    agent_name, agent_password = make_agent("wslive")
    lead_name, lead_password = make_agent("wslivelead", role="lead")
    lead = AgentClient(assistant.url).login(lead_name, lead_password)
    ctx = browser.new_context(viewport={"width": 1440, "height": 860}, locale="zh-CN")
    try:
        page = ctx.new_page()
        sign_in(page, assistant.url + "/console", agent_name, agent_password, "客服工作台")
        page.click("#tab-tickets")
        page.fill("#t-q", ticket.number)
        page.click("#t-search")
        page.locator(f'.t-row[data-number="{ticket.number}"]').click()
        page.click("#t-assign-me")
        page.locator("#t-detail dd", has_text=agent_name).wait_for()    # assigned: drawn again
        page.select_option("#t-new-status", "resolved")                 # not the first option
        page.fill("#t-note", "上门时间待定")
        # someone else changes the ticket meanwhile: the live update draws the page again
        status, _ = lead.call("POST", f"/api/agent/tickets/{ticket.number}/note", {"text": "组长已跟进"})
        assert status == 200
        page.locator("#t-detail .events", has_text="组长已跟进").wait_for()
        assert page.input_value("#t-new-status") == "resolved"
        assert page.input_value("#t-note") == "上门时间待定"
        page.click("#t-status-go")
        page.locator("#t-detail dd", has_text="已解决").wait_for()
        assert TicketStore().find(ticket.number).status == "resolved"
    finally:
        ctx.close()
