"""The WeChat connector without a model: protocol, refusals, dedup, the access token.

The gateway here is the real router and connector with a scripted Rasa; the WeChat side
is :class:`tests.fakes.wechat.WeChatPusher` (signed, encrypted XML like WeChat's
servers send) and :class:`tests.fakes.wechat.FakeWeChatAPI`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import urllib.error
import urllib.request

import pytest
from hypothesis import given, settings, strategies as st

from bot.store.engine import get_engine
from connectors.wechat import official_account as wechat
from connectors.wechat.access_token import AccessTokenHolder
from connectors.wechat.crypto import WeChatCrypto, WeChatError, signature
from connectors.wechat.wire import parse_xml, split_text, text_reply
from tests.channel_harness import use_greeting, Gateway, eventually
from tests.conftest import free_port
from tests.fakes import ThreadedServer
from tests.fakes.wechat import (WECHAT_AES_KEY, WECHAT_APPID, WECHAT_SECRET, WECHAT_TOKEN,
                                FakeWeChatAPI, WeChatPusher)

# --- the scheme against WeChat's own published sample values ---------------------------------


def test_decrypts_wechat_sample_message_and_checks_its_signature():
    encrypted = ("hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=")
    crypto = WeChatCrypto("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                          "wx2c2769f8efd9abc2")
    assert signature("spamtest", "1409735669", "1320562132", encrypted) == \
        "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    fields = parse_xml(crypto.decrypt(encrypted))
    assert fields["Content"] == "abcdteT" and fields["MsgId"] == "6054768590064713728"


def test_encrypts_like_wechat_sample():
    crypto = WeChatCrypto("pamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                          "wxb11529c136998cb6")
    assert crypto.encrypt("我是中文abcd123", b"aaaabbbbccccdddd") == (
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==")


def test_other_appid_is_refused():
    mine = WeChatCrypto("t", WECHAT_AES_KEY, WECHAT_APPID)
    theirs = WeChatCrypto("t", WECHAT_AES_KEY, "wxsomeoneelse0000")
    with pytest.raises(WeChatError) as exc:
        mine.decrypt(theirs.encrypt("<xml/>"))
    assert exc.value.status == 403


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_encryption_round_trips_any_text(text):
    crypto = WeChatCrypto(WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APPID)
    assert crypto.decrypt(crypto.encrypt(text)) == text


XML_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200)


@settings(max_examples=80, deadline=None)
@given(XML_TEXT, XML_TEXT)
def test_reply_xml_carries_any_content_exactly(openid, content):
    fields = parse_xml(text_reply(openid.strip() or "o", "gh_x", content.strip() or "-"))
    assert fields["Content"] == (content.strip() or "-") and fields["MsgType"] == "text"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: f"<xml>{t}</xml>"))
def test_parser_refuses_garbage_only_with_a_status(body):
    try:
        fields = parse_xml(body)
    except WeChatError as exc:
        assert exc.status == 400
    else:
        assert isinstance(fields, dict)


XXE = b"""<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"""
LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol4;</Content><MsgId>2</MsgId></xml>"""


@pytest.mark.parametrize("body", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_parser_refuses_entities_and_dtds(body):
    with pytest.raises(WeChatError) as exc:
        parse_xml(body)
    assert exc.value.status == 400


# --- through the gateway ------------------------------------------------------------------------


@pytest.fixture
def wechat_api():
    api = FakeWeChatAPI(WECHAT_APPID, WECHAT_SECRET).start()
    yield api
    api.stop()


@pytest.fixture
def gateway(tmp_path, monkeypatch, wechat_api):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path}/kefu.db")
    for key, value in {**wechat_api.env(), "KEFU_WECHAT_PASSIVE_SECONDS": "1"}.items():
        monkeypatch.setenv(key, value)
    use_greeting(monkeypatch, tmp_path)
    gw = Gateway(wechat.setup)
    gw.pusher = WeChatPusher(f"{gw.url}/webhooks/wechat", WECHAT_TOKEN, WECHAT_APPID, WECHAT_AES_KEY)
    yield gw
    gw.stop()


def test_off_without_token(monkeypatch, caplog):
    from aiohttp import web
    monkeypatch.delenv("KEFU_WECHAT_TOKEN", raising=False)
    app = web.Application()
    app["senders"] = {}
    with caplog.at_level("INFO"):
        wechat.setup(app)
    assert "wechat" not in app["senders"]
    server = ThreadedServer(app, free_port()).start()
    try:
        pusher = WeChatPusher(f"{server.url}/webhooks/wechat", WECHAT_TOKEN, WECHAT_APPID, None)
        assert pusher.post(pusher.message_xml("o1", content="hi"))[0] == 404
        assert _get(f"{server.url}/webhooks/wechat?echostr=1")[0] == 404
    finally:
        server.stop()
    assert sum("wechat connector off" in r.getMessage() for r in caplog.records) == 1


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_server_url_check(gateway):
    sig = signature(WECHAT_TOKEN, "1700000000", "n0nce")
    base = f"{gateway.url}/webhooks/wechat?timestamp=1700000000&nonce=n0nce&echostr=e123"
    assert _get(f"{base}&signature={sig}") == (200, "e123")
    assert _get(f"{base}&signature={'0' * 40}")[0] == 403
    assert _get(base)[0] == 403
    assert _get(f"{base}&signature=%C2%80")[0] == 403            # not even ASCII


def test_safe_and_plaintext_mode_both_answer(gateway):
    assert gateway.pusher.say("o-safe", "运费怎么算") == "收到：运费怎么算\n\n还有什么可以帮您？"
    assert gateway.pusher.say("o-plain", "保修几年", safe=False) == "收到：保修几年\n\n还有什么可以帮您？"
    assert gateway.rasa.texts() == ["运费怎么算", "保修几年"]


def test_forged_or_missing_signatures_are_refused_unprocessed(gateway):
    pusher = gateway.pusher
    assert pusher.post(pusher.message_xml("o1", content="hi"), forge=True)[0] == 403
    assert pusher.post(pusher.message_xml("o1", content="hi"), safe=False, forge=True)[0] == 403
    # a valid URL signature but an Encrypt that is not the one signed
    other = WeChatPusher(pusher.url, WECHAT_TOKEN, WECHAT_APPID, WECHAT_AES_KEY)
    xml = pusher.message_xml("o1", content="hi")
    enc = other.encrypt(xml)
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
    request = urllib.request.Request(
        f"{pusher.url}?timestamp=1&nonce=2&signature={signature(WECHAT_TOKEN, '1', '2')}"
        f"&encrypt_type=aes&msg_signature={signature(WECHAT_TOKEN, '1', '2', 'other')}",
        data=body.encode())
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 403
    assert _get(pusher.url)[0] == 403                    # a server check without a signature
    assert gateway.rasa.calls == []


def test_hostile_and_broken_bodies_are_refused_and_others_carry_on(gateway):
    pusher = gateway.pusher
    assert pusher.post(XXE, safe=False)[0] == 400
    assert pusher.post(LAUGHS, safe=False)[0] == 400
    assert pusher.post(XXE.decode())[0] == 400                      # inside the encryption too
    assert pusher.post(b"<xml><ToUserName>gh</To", safe=False)[0] == 400
    assert pusher.post("<xml><Content>no sender</Content></xml>")[0] == 400
    big = pusher.message_xml("o1", content="长" * 30000)             # ~90 KB of UTF-8
    assert pusher.post(big.encode(), safe=False)[0] == 413
    assert gateway.rasa.calls == []
    assert pusher.say("o-other", "你好") .startswith("收到：你好")


def test_triple_retry_of_one_msgid_runs_the_bot_once(gateway):
    pusher = gateway.pusher
    xml = pusher.message_xml("o-retry", content="我的快递到哪了")
    replies = [pusher.post(xml)[1] for _ in range(4)]
    assert gateway.rasa.texts("wechat:o-retry") == ["我的快递到哪了"]
    assert len(set(replies)) == 1 and replies[0].startswith("收到：")


def test_events_are_deduplicated_by_sender_and_time(gateway):
    pusher = gateway.pusher
    xml = pusher.message_xml("o-sub", "event", event="subscribe", create_time=1700000001)
    first = pusher.post(xml)[1]
    assert pusher.post(xml)[1] == first
    assert gateway.rasa.texts("wechat:o-sub") == []          # a follow is the welcome, no bot turn
    assert "我要投诉" in first


def test_retries_while_the_bot_is_slow_never_run_it_twice_and_answer_by_push(gateway, wechat_api):
    pusher = gateway.pusher
    gateway.rasa.release.clear()                        # the bot takes longer than WeChat waits
    xml = pusher.message_xml("o-slow", content="我要退货")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        first = pool.submit(pusher.post, xml)
        assert eventually(lambda: gateway.rasa.texts("wechat:o-slow"))
        retries = [pool.submit(pusher.post, xml) for _ in range(3)]
        results = [first.result()] + [r.result() for r in retries]
    assert all(r == (200, "success") for r in results)
    gateway.rasa.release.set()
    sent = eventually(lambda: wechat_api.sent_to("o-slow"))
    assert sent == ["收到：我要退货\n\n还有什么可以帮您？"]
    assert gateway.rasa.texts("wechat:o-slow") == ["我要退货"]
    assert pusher.post(xml) == (200, "success")         # a late retry: still once
    assert wechat_api.sent_to("o-slow") == sent and wechat_api.token_fetches == 1


def test_subscribe_welcome_with_numbered_options_answered_by_number(gateway):
    pusher = gateway.pusher
    status, welcome = pusher.post(pusher.message_xml("o-num", "event", event="subscribe"))
    assert "1. 我要投诉" in welcome and "2. 报修/安装" in welcome and "回复数字" in welcome
    assert pusher.say("o-num", "3.").startswith('收到：/inform{"product"')
    assert pusher.say("o-num", "2") == "收到：2\n\n还有什么可以帮您？"   # no options open now
    pusher.post(pusher.message_xml("o-num", "event", event="subscribe", create_time=1))
    assert pusher.say("o-num", "２") == "收到：我要报修\n\n还有什么可以帮您？"   # full-width digit
    texts = gateway.rasa.texts("wechat:o-num")
    assert texts[0].startswith("/inform") and texts[1:] == ["2", "我要报修"]


def test_non_text_messages_get_a_polite_answer_without_the_bot(gateway):
    pusher = gateway.pusher
    for kind, extra in (("image", "<PicUrl>http://x/y.jpg</PicUrl><MediaId>m1</MediaId>"),
                        ("voice", "<MediaId>m2</MediaId><Format>amr</Format>")):
        status, reply = pusher.post(pusher.message_xml("o-img", kind, extra=extra))
        assert status == 200 and "文字" in reply and "投诉" in reply
    assert gateway.rasa.calls == []
    # with WeChat's speech recognition on, a voice message is its text
    reply = pusher.post(pusher.message_xml(
        "o-img", "voice", extra="<MediaId>m3</MediaId><Recognition>运费多少</Recognition>"))[1]
    assert reply.startswith("收到：运费多少")


def test_push_refreshes_an_expired_token_once_across_replicas(gateway, wechat_api):
    channel = gateway.app["wechat"]
    gateway.run(channel.send_text("o-push", "第一条"))
    assert wechat_api.token_fetches == 1
    wechat_api.expire_all()

    # three replicas' holders on the same database, ten sends at once
    replicas = [channel.tokens] + [AccessTokenHolder(channel.tokens.name, channel._fetch_token,
                                                     get_engine()) for _ in range(2)]

    async def burst():
        async def send(i):
            holder = replicas[i % 3]
            token = await holder.get()
            if token in wechat_api.expired_tokens:
                token = await holder.get(bad=token)
            return token
        sends = [channel.send_text("o-push", f"消息{i}") for i in range(10)]
        tokens = [send(i) for i in range(6)]
        return await asyncio.gather(*sends, *tokens)

    results = gateway.run(burst())
    assert wechat_api.token_fetches == 2                  # refreshed once, not per send/replica
    assert len(set(results[10:])) == 1 and results[10] in wechat_api.valid_tokens
    assert len(wechat_api.sent_to("o-push")) == 11


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=3000), st.integers(8, 2000))
def test_split_text_keeps_everything_within_the_limit(text, limit):
    pieces = split_text(text, limit)
    assert all(0 < len(p.encode("utf-8")) <= limit for p in pieces)
    visible = lambda t: "".join(c for c in t if not c.isspace())   # noqa: E731
    assert visible("".join(pieces)) == visible(text)


def test_a_long_answer_arrives_whole_in_parts(gateway, wechat_api):
    first = gateway.pusher.say("o-long", "长回答")
    assert len(first.encode("utf-8")) <= 2048
    rest = eventually(lambda: len(wechat_api.sent_to("o-long")) >= 4 and wechat_api.sent_to("o-long"))
    assert first + "".join(rest) == "这是一段很长的回答。" * 300


def test_a_claim_abandoned_by_a_crashed_gateway_is_taken_over_by_the_retry(tmp_path):
    """Dedup row written, then the gateway died before the transcript: the retry processes it."""
    import datetime as dt

    from sqlalchemy import update

    from bot.store.engine import engine_for
    from bot.store.schema import ProcessedDelivery
    from bot.store.deliveries import ABANDONED_AFTER, DeliveryLedger

    ledger = DeliveryLedger(engine_for(f"sqlite:///{tmp_path}/ledger.db"))
    assert ledger.claim("wechat", "msg-1") == (True, None)
    assert ledger.claim("wechat", "msg-1") == (False, None)        # in flight: not run twice
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=ABANDONED_AFTER + 1)
    with ledger.engine.begin() as conn:
        conn.execute(update(ProcessedDelivery).values(at=old))
    assert ledger.claim("wechat", "msg-1") == (True, None)         # abandoned: taken over
    assert ledger.claim("wechat", "msg-1") == (False, None)        # ... by one retry only
    ledger.settle("wechat", "msg-1", "答复")
    with ledger.engine.begin() as conn:
        conn.execute(update(ProcessedDelivery).values(at=old))
    assert ledger.claim("wechat", "msg-1") == (False, "答复")      # settled rows stay settled


def test_delivery_ledger_forgets_only_what_no_retry_needs(tmp_path):
    import datetime as dt

    from sqlalchemy import func, select, update

    from bot.store.engine import engine_for
    from bot.store.schema import ProcessedDelivery
    from bot.store.deliveries import KEEP_FOR, DeliveryLedger

    ledger = DeliveryLedger(engine_for(f"sqlite:///{tmp_path}/ledger.db"))
    for key in ("old-1", "old-2", "new-1"):
        ledger.claim("wechat", key)
        ledger.settle("wechat", key, "答复")
    long_ago = dt.datetime.now(dt.timezone.utc) - KEEP_FOR - dt.timedelta(hours=1)
    with ledger.engine.begin() as conn:
        conn.execute(update(ProcessedDelivery).where(ProcessedDelivery.key.like("old-%"))
                     .values(at=long_ago))
    assert ledger.prune(dt.datetime.now(dt.timezone.utc) - KEEP_FOR) == 2
    with ledger.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(ProcessedDelivery)).scalar() == 1
    assert ledger.claim("wechat", "new-1") == (False, "答复")      # still deduplicated
