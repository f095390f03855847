"""The whole handoff in a real browser (Debian's chromium driven by Playwright).

A customer in the web chat asks for a human; an agent, already signed in to the console,
sees the conversation arrive live (SSE), claims it, reads a hostile message as plain text,
replies; the customer sees the reply; the agent closes; the customer is asked to rate and
the rating lands on the ticket.

``KEFU_SCREENSHOT=docs/console.png`` also saves the console screenshot shown in the README.
"""
from __future__ import annotations

import os

import pytest

from bot.store.tickets import TicketStore
from tests.handoff_helpers import make_agent, sign_in, wait_until

pytestmark = pytest.mark.e2e

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"><b>加粗</b>'


def test_customer_agent_handoff_in_the_browser(assistant, browser):
    name, password = make_agent("lily")
    agent_ctx = browser.new_context(viewport={"width": 1360, "height": 820}, locale="zh-CN")
    customer_ctx = browser.new_context(viewport={"width": 480, "height": 760}, locale="zh-CN")
    try:
        console = agent_ctx.new_page()
        sign_in(console, assistant.url + "/console", name, password, "客服工作台")

        chat = customer_ctx.new_page()
        chat.goto(assistant.url + "/")
        chat.wait_for_selector(".msg.bot")                       # the widget's greeting turn
        sender = chat.evaluate("localStorage.getItem('kefu-sender')")
        conversation = f"web:{sender}"
        chat.fill("#text", "转人工")
        chat.press("#text", "Enter")
        chat.wait_for_selector(".msg.notice >> text=排在第", timeout=30_000)
        chat.fill("#text", HOSTILE)
        chat.press("#text", "Enter")
        chat.fill("#text", "我的手机号13812345678，空调不制冷")
        chat.press("#text", "Enter")

        # the queue updates live (no reload): the new conversation with an unread count
        item = console.locator(".item", has_text=conversation)
        item.wait_for(timeout=30_000)
        assert item.locator(".unread").inner_text().strip() != ""
        item.click()
        console.click("#claim")
        console.wait_for_selector("#reply")

        # what the customer wrote is text, never markup, on both sides
        bubble = console.locator(".line.customer .bubble", has_text="window.__pwned")
        assert bubble.inner_text() == HOSTILE
        assert console.locator("#transcript b, #transcript img, #transcript script").count() == 0
        assert console.evaluate("window.__pwned") is None
        assert chat.evaluate("window.__pwned") is None
        # the claiming agent sees the phone in clear; the ticket panel shows SLA and status
        console.locator(".line.customer .bubble", has_text="13812345678").wait_for()
        assert "SLA" in console.inner_text("#sla")

        console.fill("#reply", "您好，我是客服小丽，马上为您查看空调问题。")
        console.click("#send")
        chat.wait_for_selector(".msg.agent >> text=客服小丽", timeout=30_000)

        console.locator(".line.agent", has_text="客服小丽").wait_for()
        shot = os.environ.get("KEFU_SCREENSHOT")
        if shot:
            console.wait_for_timeout(1200)                       # let the SLA countdown tick
            console.screenshot(path=shot)

        console.click("#close")
        chat.wait_for_selector(".msg.notice >> text=打分", timeout=30_000)
        chat.fill("#text", "5分")
        chat.press("#text", "Enter")
        handoff_ticket = wait_until(
            lambda: next((t for t in TicketStore().for_customer(conversation, open_only=False)
                          if t.kind == "callback" and t.rating), None), 60, "the rating")
        assert handoff_ticket.rating == 5
        console.locator(".item", has_text=conversation).locator("text=已结束").wait_for()
    finally:
        agent_ctx.close()
        customer_ctx.close()


def test_widget_posts_one_message_at_a_time_in_typed_order(assistant, browser):
    """A customer typing faster than the bot answers: each POST waits for the previous
    answer, so the bot (and, scaled out, every gateway replica) sees the typed order."""
    from bot.store.transcripts import TranscriptStore

    ctx = browser.new_context(viewport={"width": 480, "height": 760}, locale="zh-CN")
    try:
        chat = ctx.new_page()
        events = []
        chat.on("request", lambda r: r.url.endswith("/api/chat") and events.append(("post", r.post_data_json["message"])))
        chat.on("requestfinished", lambda r: r.url.endswith("/api/chat") and events.append(("answered", r.post_data_json["message"])))
        chat.goto(assistant.url + "/")
        chat.wait_for_selector(".msg.bot")
        sender = chat.evaluate("localStorage.getItem('kefu-sender')")
        typed = ["保修多久", "运费怎么算", "谢谢"]
        for text in typed:                                  # no waiting between them
            chat.fill("#text", text)
            chat.press("#text", "Enter")
        for _ in range(300):            # Playwright delivers events while it waits
            if ("answered", typed[-1]) in events:
                break
            chat.wait_for_timeout(200)
        posts = [e for e in events if e[1] in typed]
        assert posts == [e for t in typed for e in (("post", t), ("answered", t))], posts
        lines = [l["text"] for l in TranscriptStore().transcript(f"web:{sender}") if l["author"] == "customer"]
        assert lines[-3:] == typed
    finally:
        ctx.close()
