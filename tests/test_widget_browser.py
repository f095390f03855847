"""The embeddable web widget on somebody else's site, in a real browser (Debian's chromium).

A shop's pages, served by a separate local HTTP server on another port (another origin),
embed ``<script src="<gateway>/widget.js" data-kefu-title=… async>``. The gateway allows that
origin in ``KEFU_WIDGET_ORIGINS`` (a stack of its own, since the setting is read at start).
A customer opens the widget with the keyboard, asks an FAQ, starts a complaint, follows a link
to another page of the shop (the conversation comes back), finishes the complaint (ticket
KF…), asks for a person; an agent claims and replies through the console API and the reply
arrives in the widget without a reload. The widget never posts a message the customer did
not write; the gateway's own page at / no longer posts a greeting on load and shows the
conversation again after a reload. A site not in the list gets nothing (the browser's CORS).

``KEFU_WIDGET_SCREENSHOT=docs/widget.png`` also saves the screenshot shown in the README.
"""
from __future__ import annotations

import functools
import http.server
import re
import secrets
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.profile import business as profile
from bot.profile.privacy import mask_customer_text
from bot.settings import setting
from bot.store.agents import AgentStore
from bot.store.tickets import TicketStore
from bot.store.transcripts import TranscriptStore
from tests.conftest import free_port, start_stack
from tests.handoff_helpers import AgentClient, wait_until

pytestmark = pytest.mark.e2e

TITLE = "示例优选 在线客服"
WIDGET = "[data-kefu-widget]"           # the host element; Playwright's CSS pierces its open shadow root
TICKET_RE = re.compile(r"KF\d{10,}")   # KF + date + serial

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  /* a host site's careless global styles: none of them may reach the widget */
  * {{ font-family: serif !important; color: #c00 !important; }}
  button {{ background: lime !important; border: 4px dashed #000 !important; }}
  div {{ padding: 30px !important; }}
  body {{ margin: 0; background: #fafafa; }}
  header.site {{ background: #222; padding: 18px 32px; }}
  header.site a {{ color: #fff !important; margin-right: 24px; font-size: 18px; }}
  main {{ padding: 24px 32px; font-size: 17px; }}
  .product {{ display: inline-block; width: 220px; height: 150px; margin: 0 16px 16px 0;
              background: linear-gradient(135deg, #e8eef7, #cfd9ea); border-radius: 10px; }}
</style></head>
<body>
<header class="site"><a id="home" href="index.html">首页</a><a id="to-shipping" href="shipping.html">配送说明</a></header>
<main><h1>{title}</h1><p>{text}</p>
<span class="product"></span><span class="product"></span><span class="product"></span></main>
<script src="{gateway}/widget.js" data-kefu-title="{widget_title}" async></script>
</body></html>
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """Two pages of a shop on their own origin, and a second, unlisted origin serving them too."""
    site = tmp_path_factory.mktemp("shop-site")
    gateway_port = free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    for name, title, text in (("index.html", "示例优选商城", "冬季家电节，全场满 99 元包邮。"),
                              ("shipping.html", "配送说明", "大件家具 7–15 天送达，其余 3–5 天。")):
        (site / name).write_text(PAGE.format(title=title, text=text, gateway=gateway,
                                             widget_title=TITLE), encoding="utf-8")
    allowed, unlisted = serve(site), serve(site)
    yield SimpleNamespace(gateway_port=gateway_port,
                          origin=f"http://127.0.0.1:{allowed.server_address[1]}",
                          unlisted=f"http://127.0.0.1:{unlisted.server_address[1]}")
    for server in (allowed, unlisted):
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def widget_stack(trained_model, stack_env, shop):
    """The assistant with the shop's origin allowed (same database and fakes as the others)."""
    stack = start_stack(trained_model, Path(stack_env["_work"]) / "widget",
                        {**stack_env, "KEFU_WIDGET_ORIGINS": shop.origin},
                        gateway_port=shop.gateway_port)
    yield stack
    stack.stop()


def record_posts(page, gateway: str) -> list:
    """Every message body the page (or context) posts to /api/chat (preflights are not messages)."""
    posts = []
    page.on("request", lambda r: r.method == "POST" and r.url == f"{gateway}/api/chat"
            and posts.append(r.post_data_json["message"]))
    return posts


def lines(page, scope: str = WIDGET) -> list:
    """The conversation on screen, (author, text), without the welcome."""
    return page.eval_on_selector_all(
        f"{scope} .msg:not([data-welcome])",
        "rows => rows.map(r => [r.dataset.author, r.innerText.trim()])")


def kept(shown: list) -> list:
    """What a reload shows again: not the transient system lines (「收到，正在为您处理…」 when
    Rasa is slow on a busy machine, whose answer then follows as a notice)."""
    return [line for line in shown if line[0] != "system"]


def say(page, text: str, field: str = f"{WIDGET} #text") -> None:
    page.fill(field, text)
    page.press(field, "Enter")


def bot_after(page, count: int, timeout: float = 90) -> str:
    """Wait until the widget shows the bot's answer after the first ``count`` lines; its text
    (a bot line, or the notice it comes as when Rasa took longer than KEFU_REPLY_TIMEOUT)."""
    def probe():
        shown = lines(page)[count:]
        return next((text for author, text in shown if author in ("bot", "notice")), None)
    return wait_until(probe, timeout, "the bot's answer in the widget")


def answer_to(page, text: str) -> str:
    """Say ``text`` in the widget and return everything the bot answered to it."""
    shown = len(lines(page))
    say(page, text)
    bot_after(page, shown + 1)
    page.wait_for_timeout(300)                    # a turn's messages arrive together
    return "\n".join(t for author, t in lines(page)[shown + 1:] if author != "customer")


# What the complaint form may ask, and what this customer answers (the form's wording and
# order belong to the dialogue design; the test only needs to get through it to a ticket).
# A question for the phone may invite the order number too: the phone is what it asks for.
FORM_ANSWERS = (("哪方面", "物流配送"), ("描述", "快递员把冰箱外壳磕坏了，还不承认"),
                ("手机号", "138 1234 5678"), ("电话", "138 1234 5678"), ("订单号", "DD202611200088"),
                ("确认", "确认无误"), ("对吗", "对的"), ("核对", "没问题"))


def finish_form(page, reply: str, steps: int = 8) -> str:
    """Answer the form's questions until the reply carries a ticket number; that reply."""
    for _ in range(steps):
        if TICKET_RE.search(reply):
            return reply
        answer = next((a for cue, a in FORM_ANSWERS if cue in reply), None)
        assert answer, f"the form asked something this test cannot answer: {reply}"
        reply = answer_to(page, answer)
    raise AssertionError(f"no ticket after {steps} answers: {reply}")


def shadow_active(page) -> str | None:
    return page.evaluate(
        "() => { const a = document.querySelector('[data-kefu-widget]').shadowRoot.activeElement;"
        " return a ? (a.id || a.className) : null; }")


def test_a_customer_on_the_shop_site_from_faq_to_an_agent(widget_stack, browser, shop):
    facts = profile.load_profile()
    gateway = widget_stack.url
    ctx = browser.new_context(viewport={"width": 1100, "height": 760}, locale="zh-CN")
    try:
        page = ctx.new_page()
        posts = record_posts(page, gateway)
        page.goto(shop.origin + "/index.html")
        launcher = page.locator(f"{WIDGET} .launcher")
        launcher.wait_for()
        assert launcher.get_attribute("aria-label") == f"打开{TITLE}"
        assert launcher.get_attribute("aria-expanded") == "false"

        # styles are isolated both ways: the shop's global rules never reach the widget
        style = launcher.evaluate("b => { const s = getComputedStyle(b); return [s.backgroundColor, s.borderStyle, s.fontFamily]; }")
        assert style[0] != "rgb(0, 255, 0)" and style[1] != "dashed" and "serif" != style[2].strip()

        # keyboard only: Tab from the shop's last link reaches the button, Enter opens it
        page.focus("#to-shipping")
        page.keyboard.press("Tab")
        assert shadow_active(page) == "launcher"
        page.keyboard.press("Enter")
        page.locator(f"{WIDGET} .panel").wait_for(state="visible")
        assert launcher.get_attribute("aria-expanded") == "true"
        assert shadow_active(page) == "text"                     # typing right away
        assert page.locator(f"{WIDGET} [role=dialog]").get_attribute("aria-labelledby")
        welcome = page.locator(f"{WIDGET} .msg[data-welcome]")
        welcome.wait_for()
        assert facts["shop"]["name"] in welcome.inner_text()
        bubble_color = page.locator(f"{WIDGET} .msg[data-welcome] .bubble").evaluate("b => getComputedStyle(b).color")
        assert bubble_color != "rgb(204, 0, 0)"

        # opening it sent nothing: no greeting, and nothing kept for a visitor who only looked
        page.wait_for_timeout(2500)
        assert posts == []
        assert page.evaluate("localStorage.getItem('kefu-widget-sender')") is None

        # the typing indicator shows while an answer is on its way
        page.evaluate("""() => {
            const t = document.querySelector('[data-kefu-widget]').shadowRoot.querySelector('.typing');
            window.__typing = [];
            new MutationObserver(() => window.__typing.push(t.hidden)).observe(t, {attributes: true});
        }""")
        say(page, "运费怎么算")
        answer = bot_after(page, 1)
        assert f"{facts['shipping']['free_over_yuan']}元" in answer
        sender = page.evaluate("localStorage.getItem('kefu-widget-sender')")
        assert re.fullmatch(r"w[0-9a-f]{32}", sender)
        conversation = f"web:{sender}"
        assert [l["text"] for l in TranscriptStore().transcript(conversation)][0] == "运费怎么算"
        typing_states = page.evaluate("window.__typing")
        assert typing_states[:1] == [False] and typing_states[-1] is True, typing_states

        question = answer_to(page, "快递员态度太差了，还把我的冰箱磕坏了，我要投诉")
        assert not TICKET_RE.search(question)              # the form asks before it files
        before = lines(page)

        # another page of the shop: the conversation (and the open panel) come back
        page.click("#to-shipping")
        page.wait_for_url("**/shipping.html")
        page.locator(f"{WIDGET} .panel").wait_for(state="visible")
        wait_until(lambda: len(lines(page)) >= len(kept(before)), 30, "the history after navigating")
        assert lines(page) == kept(before), (lines(page), before)
        assert page.locator(f"{WIDGET} .msg[data-welcome]").count() == 1
        assert posts == ["运费怎么算", "快递员态度太差了，还把我的冰箱磕坏了，我要投诉"]  # nothing re-sent

        # finish the complaint on this page
        number = TICKET_RE.search(finish_form(page, question)).group(0)
        [ticket] = [t for t in TicketStore().for_customer(conversation) if t.kind == "complaint"]
        assert ticket.number == number

        # a person, please (service hours: the stack's clock is frozen at 10:00 shop time)
        say(page, "转人工")
        page.locator(f"{WIDGET} .msg.notice", has_text="排在第").wait_for(timeout=30_000)

        name, password = f"xiaoli-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
        AgentStore().create(name, password, role="agent", display_name="小丽")
        agent = AgentClient(gateway).login(name, password)
        handoff = agent.handoff_for(conversation)
        status, _ = agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/claim")
        assert status == 200
        status, _ = agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/reply",
                               {"text": f"您好，我是客服小丽，已看到您的投诉工单 {number}，马上为您处理。"})
        assert status == 200
        page.locator(f"{WIDGET} .msg.agent", has_text="客服小丽").wait_for(timeout=30_000)

        shot = setting("KEFU_WIDGET_SCREENSHOT")
        if shot:
            page.wait_for_timeout(300)
            page.screenshot(path=str(shot))

        # Esc closes and gives the focus back to the button; a reply while closed shows a badge
        page.focus(f"{WIDGET} #text")
        page.keyboard.press("Escape")
        page.locator(f"{WIDGET} .panel").wait_for(state="hidden")
        assert shadow_active(page) == "launcher"
        assert launcher.get_attribute("aria-expanded") == "false"
        agent.call("POST", f"/api/agent/handoffs/{handoff['id']}/reply", {"text": "师傅明天上午联系您。"})
        page.locator(f"{WIDGET} .badge", has_text="1").wait_for(timeout=30_000)
        assert "1 条新消息" in launcher.get_attribute("aria-label")

        assert "你好" not in posts
        assert posts[:2] == ["运费怎么算", "快递员态度太差了，还把我的冰箱磕坏了，我要投诉"]
        assert posts[-1] == "转人工" and set(posts[2:-1]) <= {a for _, a in FORM_ANSWERS}
        customer_lines = [l["text"] for l in TranscriptStore().transcript(conversation)
                          if l["author"] == "customer"]
        # the transcript holds what was typed, in order (personal data masked at rest or not)
        assert [mask_customer_text(t) for t in customer_lines] == [mask_customer_text(t) for t in posts]
    finally:
        ctx.close()


def test_messages_typed_just_before_following_a_link_are_not_lost(widget_stack, browser, shop):
    """Two messages, then at once a click to another page: one is on its way (the browser
    finishes it, keepalive; the next page posts it again with its id, and the gateway takes
    it once), the other may not be posted yet (it waits in the tab's sessionStorage). The
    next page shows both with their answers; the bot saw each once, in order."""
    facts = profile.load_profile()
    ctx = browser.new_context(viewport={"width": 1100, "height": 760}, locale="zh-CN")
    try:
        posts = record_posts(ctx, widget_stack.url)      # the context's: a request the
        page = ctx.new_page()                             # page left behind counts too
        page.goto(shop.origin + "/index.html")
        page.locator(f"{WIDGET} .launcher").click()
        page.locator(f"{WIDGET} .msg[data-welcome]").wait_for()
        say(page, "保修多久")
        say(page, "运费怎么算")
        page.click("#to-shipping")
        page.wait_for_url("**/shipping.html")
        page.locator(f"{WIDGET} .panel").wait_for(state="visible")

        def settled():
            shown = kept(lines(page))
            roles = ["customer" if author == "customer" else "answer" for author, _ in shown]
            return shown if roles == ["customer", "answer", "customer", "answer"] else None
        shown = wait_until(settled, 90, "both messages and their answers on the next page")
        assert [shown[0][1], shown[2][1]] == ["保修多久", "运费怎么算"]
        assert f"{facts['shipping']['free_over_yuan']}元" in shown[3][1]
        page.wait_for_timeout(2000)
        assert kept(lines(page)) == shown                       # nothing shown twice
        sender = page.evaluate("localStorage.getItem('kefu-widget-sender')")
        customer_lines = [l["text"] for l in TranscriptStore().transcript(f"web:{sender}")
                          if l["author"] == "customer"]
        assert customer_lines == ["保修多久", "运费怎么算"]          # each once, in order
        # (a message posted again from the next page, with its id, is a repeat, not a turn)
        assert set(posts) <= {"保修多久", "运费怎么算"}
    finally:
        ctx.close()


def test_the_widget_fills_a_phone_screen(widget_stack, browser, shop):
    ctx = browser.new_context(viewport={"width": 360, "height": 700}, locale="zh-CN",
                              is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        page = ctx.new_page()
        page.goto(shop.origin + "/index.html")
        page.locator(f"{WIDGET} .launcher").tap()
        panel = page.locator(f"{WIDGET} .panel")
        panel.wait_for(state="visible")
        box = panel.bounding_box()
        assert (box["x"], box["y"]) == (0, 0) and box["width"] == 360 and box["height"] == 700
        for part in ("#text", ".send", ".close"):
            inner = page.locator(f"{WIDGET} {part}").bounding_box()
            assert inner["x"] >= 0 and inner["x"] + inner["width"] <= 360 and inner["y"] + inner["height"] <= 700, part
        page.locator(f"{WIDGET} .msg[data-welcome]").wait_for()
        say(page, "保修多久")
        assert bot_after(page, 1)
        page.locator(f"{WIDGET} .close").tap()
        panel.wait_for(state="hidden")
        assert page.locator(f"{WIDGET} .launcher").is_visible()
    finally:
        ctx.close()


def test_a_site_not_in_the_origins_list_gets_nothing(widget_stack, browser, shop):
    ctx = browser.new_context(viewport={"width": 1000, "height": 700}, locale="zh-CN")
    try:
        page = ctx.new_page()
        page.goto(shop.unlisted + "/index.html")
        page.locator(f"{WIDGET} .launcher").click()
        # the browser refuses the answers (no Access-Control-Allow-Origin): no welcome, no history
        page.locator(f"{WIDGET} .msg.system", has_text="连接不上").wait_for(timeout=30_000)
        assert page.locator(f"{WIDGET} .msg[data-welcome]").count() == 0
    finally:
        ctx.close()


def test_the_gateway_page_sends_no_greeting_and_keeps_the_conversation(widget_stack, browser):
    ctx = browser.new_context(viewport={"width": 480, "height": 760}, locale="zh-CN")
    try:
        chat = ctx.new_page()
        posts = record_posts(chat, widget_stack.url)
        chat.goto(widget_stack.url + "/")
        chat.locator(".msg.bot[data-welcome]").wait_for()
        chat.wait_for_timeout(2500)
        sender = chat.evaluate("localStorage.getItem('kefu-sender')")
        assert posts == [] and TranscriptStore().transcript(f"web:{sender}") == []

        say(chat, "保修多久", "#text")
        chat.locator(".msg.bot:not([data-welcome]), .msg.notice").first.wait_for(timeout=90_000)
        before = kept(lines(chat, "#log"))
        assert before[0] == ["customer", "保修多久"] and before[1][0] in ("bot", "notice")

        chat.reload()
        chat.locator(".msg.bot[data-welcome]").wait_for()
        wait_until(lambda: len(lines(chat, "#log")) >= len(before), 30, "the history after a reload")
        assert lines(chat, "#log") == before
        chat.wait_for_timeout(2500)
        assert posts == ["保修多久"]                       # the reload posted nothing
    finally:
        ctx.close()
