"""WeChat official account (微信公众号): the server-URL check, XML messages, replies.

``GET /webhooks/wechat`` answers WeChat's server check; ``POST /webhooks/wechat`` takes
messages in plaintext or safe mode (``encrypt_type=aes``: AES-256-CBC, ``msg_signature``,
encrypted replies). Every request's signature is checked before its body is read.

A message is processed once, whichever replica WeChat's retries reach (the SQL
:class:`~bot.store.deliveries.DeliveryLedger`, keyed by ``MsgId``; events by
``FromUserName`` + ``CreateTime``). When the bot answers within ``KEFU_WECHAT_PASSIVE_SECONDS``
(4 s) the answer is the HTTP reply; otherwise WeChat gets ``success`` and the answer goes
out through the customer-service message API with the shared access token.

Environment: ``KEFU_WECHAT_TOKEN`` (unset: connector off), ``KEFU_WECHAT_APPID``,
``KEFU_WECHAT_SECRET``, ``KEFU_WECHAT_AES_KEY`` (43 characters, safe mode),
``KEFU_WECHAT_API_BASE`` (default ``https://api.weixin.qq.com``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Dict, List, Optional

import aiohttp
from aiohttp import web

from connectors.wechat.access_token import AccessTokenHolder
from connectors.wechat.crypto import WeChatCrypto, WeChatError, signature_ok
from connectors.welcome import welcome
from connectors.wechat.wire import parse_xml, read_body, split_text, text_reply
from bot.messages import ConversationId, InboundMessage, OutboundMessage
from bot.settings import setting
from bot.store.deliveries import PUSHED, DeliveryLedger, joined_text, resolve_choice
from bot.support.outbox import Rejected, TryLater, Unreachable

logger = logging.getLogger(__name__)

CHANNEL = "wechat"
SUBSCRIBED = "[关注公众号]"    # the transcript's customer line for a follow (subscribe event)
MAX_BODY = 64 * 1024
DEFAULT_API = "https://api.weixin.qq.com"
TOKEN_ERRORS = {40001, 40014, 42001}     # invalid / malformed / expired access_token
TRANSIENT_ERRORS = {-1, 45009, 45011}    # system busy, API quota / rate limits: try again
UNSUPPORTED_TEXT = ("暂时只能看懂文字消息哦～我可以帮您查询退换货、运费、保修等政策，登记投诉、"
                    "报修和退换货，查询工单进度，或者为您转人工。请用文字告诉我您需要什么～")
NON_TEXT = {"image": "[图片]", "voice": "[语音]", "video": "[视频]", "shortvideo": "[小视频]",
            "location": "[位置]", "link": "[链接]", "file": "[文件]"}


@dataclass(frozen=True)
class WeChatConfig:
    token: str
    appid: str = ""
    secret: str = ""
    aes_key: str = ""
    api_base: str = DEFAULT_API
    passive_seconds: float = 4.0

    @classmethod
    def from_env(cls) -> Optional["WeChatConfig"]:
        token = setting("KEFU_WECHAT_TOKEN")
        if not token:
            return None
        return cls(token=token, appid=setting("KEFU_WECHAT_APPID"),
                   secret=setting("KEFU_WECHAT_SECRET"),
                   aes_key=setting("KEFU_WECHAT_AES_KEY"),
                   api_base=setting("KEFU_WECHAT_API_BASE"),
                   passive_seconds=setting("KEFU_WECHAT_PASSIVE_SECONDS"))


class WeChatChannel:
    def __init__(self, app: web.Application, config: WeChatConfig) -> None:
        self.app, self.config = app, config
        self.crypto = WeChatCrypto(config.token, config.aes_key, config.appid) \
            if config.aes_key else None
        self.ledger = DeliveryLedger()
        self.tokens = AccessTokenHolder(f"wechat:{config.appid}", self._fetch_token)
        self._http: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task] = set()

    # --- outbound: the WeChat API ---------------------------------------------------------

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._http

    async def _fetch_token(self) -> tuple[str, int]:
        params = {"grant_type": "client_credential", "appid": self.config.appid,
                  "secret": self.config.secret}
        async with self.http().get(f"{self.config.api_base}/cgi-bin/token", params=params) as resp:
            body = await resp.json(content_type=None)
        if not isinstance(body, dict) or not body.get("access_token"):
            code = body.get("errcode") if isinstance(body, dict) else None
            raise RuntimeError(f"wechat token request refused (errcode {code})")
        return body["access_token"], int(body.get("expires_in", 7200))

    async def send_text(self, openid: str, content: str) -> None:
        """One customer-service text message; a rejected token is refreshed once."""
        payload = json.dumps({"touser": openid, "msgtype": "text", "text": {"content": content}},
                             ensure_ascii=False).encode("utf-8")
        token = await self.tokens.get()
        for attempt in (1, 2):
            async with self.http().post(f"{self.config.api_base}/cgi-bin/message/custom/send",
                                        params={"access_token": token}, data=payload,
                                        headers={"Content-Type": "application/json"}) as resp:
                body = await resp.json(content_type=None)
            code = body.get("errcode", 0) if isinstance(body, dict) else -1
            if code == 0:
                return
            if code in TOKEN_ERRORS and attempt == 1:
                token = await self.tokens.get(bad=token)
                continue
            if code in TRANSIENT_ERRORS or code in TOKEN_ERRORS:         # retried with backoff
                raise TryLater(f"wechat custom send failed (errcode {code})")
            # 45015 past the 48 h window, 43004 unsubscribed, 40003 bad openid …: never
            raise Rejected(f"wechat refused the message (errcode {code})")

    async def push(self, user_id: str, messages: List[OutboundMessage]) -> None:
        """The gateway's sender for this channel (late answers, agents' replies, notices),
        called by the outbox: a network failure is :class:`Unreachable` (retried, nothing lost)."""
        try:
            for piece in split_text(joined_text(messages)):
                await self.send_text(user_id, piece)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unreachable(type(exc).__name__) from exc

    # --- inbound --------------------------------------------------------------------------

    def _check_signature(self, query) -> None:
        parts = (self.config.token, query.get("timestamp", ""), query.get("nonce", ""))
        if not signature_ok(parts, query.get("signature")):
            raise WeChatError(403, "bad signature")

    async def verify_url(self, request: web.Request) -> web.Response:
        try:
            self._check_signature(request.query)
        except WeChatError:
            logger.warning("wechat server check with a bad signature refused")
            return web.Response(status=403, text="forbidden")
        return web.Response(text=request.query.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        query = request.query
        safe = query.get("encrypt_type") == "aes"
        try:
            self._check_signature(query)
            body = await read_body(request, MAX_BODY)
            outer = parse_xml(body)
            if safe:
                if self.crypto is None:
                    raise WeChatError(400, "safe mode message but KEFU_WECHAT_AES_KEY is unset")
                encrypted = outer.get("Encrypt", "")
                parts = (self.config.token, query.get("timestamp", ""), query.get("nonce", ""),
                         encrypted)
                if not encrypted or not signature_ok(parts, query.get("msg_signature")):
                    raise WeChatError(403, "bad msg_signature")
                fields = parse_xml(self.crypto.decrypt(encrypted))
            else:
                fields = outer
            for name in ("ToUserName", "FromUserName", "CreateTime", "MsgType"):
                if not fields.get(name):
                    raise WeChatError(400, f"{name} missing")
        except WeChatError as exc:
            logger.warning("wechat request refused (%d): %s", exc.status, exc)
            return web.Response(status=exc.status, text=str(exc))
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="body too large")
        content = await self.answer(fields)
        if not content:
            return web.Response(text="success")
        reply = text_reply(fields["FromUserName"], fields["ToUserName"], content)
        if safe:
            reply = self.crypto.encrypted_reply(reply, query.get("nonce") or secrets.token_hex(8))
        return web.Response(text=reply, content_type="application/xml", charset="utf-8")

    async def answer(self, fields: Dict[str, str]) -> str:
        """The passive reply text for one message ("" means reply ``success``)."""
        openid, kind = fields["FromUserName"], fields["MsgType"].lower()
        key = fields.get("MsgId") or f"{openid}:{fields['CreateTime']}"
        text = self._inbound_text(fields)
        if text is None:                                   # unsubscribe, location reports …
            return ""
        first, reply = await asyncio.to_thread(self.ledger.claim, CHANNEL, key)
        if not first:
            return await self._repeat(key, reply)
        router = self.app["router"]
        if kind in NON_TEXT and not text:
            conversation = ConversationId.of(CHANNEL, openid)
            await router.record(conversation, CHANNEL, "customer", NON_TEXT[kind])
            await router.record(conversation, CHANNEL, "system", UNSUPPORTED_TEXT)
            await asyncio.to_thread(self.ledger.settle, CHANNEL, key, UNSUPPORTED_TEXT)
            return UNSUPPORTED_TEXT
        if kind == "event" and text == SUBSCRIBED:        # a new follower: the welcome, no turn
            replies = await router.welcome(
                InboundMessage(channel=CHANNEL, user_id=openid, text=text, delivery_id=key), welcome())
            first, *rest = split_text(joined_text(replies)) or [""]
            await asyncio.to_thread(self.ledger.settle, CHANNEL, key, first)
            if rest:
                await self._send_later(openid, [OutboundMessage(piece) for piece in rest])
            return first
        if not text.startswith("/"):
            text = await asyncio.to_thread(resolve_choice, ConversationId.of(CHANNEL, openid), text)
        message = InboundMessage(channel=CHANNEL, user_id=openid, text=text, delivery_id=key)
        task = asyncio.ensure_future(router.handle(message))
        try:
            replies = await asyncio.wait_for(asyncio.shield(task), self.config.passive_seconds)
        except asyncio.TimeoutError:
            await asyncio.to_thread(self.ledger.settle, CHANNEL, key, PUSHED)
            self._spawn(self._push_when_done(openid, key, task))
            return ""
        first, *rest = split_text(joined_text(replies)) or [""]
        if await asyncio.to_thread(self.ledger.settle, CHANNEL, key, first):
            if rest:                       # one passive reply per message: the rest by push
                await self._send_later(openid, [OutboundMessage(piece) for piece in rest])
            return first
        # a retry already told WeChat ``success``: this answer must go out by push
        await self._send_later(openid, replies)
        return ""

    async def _repeat(self, key: str, reply: Optional[str]) -> str:
        """A retry of a delivery seen before: the same reply, or ``success``; never the bot."""
        if reply is None:
            reply = await self.ledger.wait_settled(CHANNEL, key, self.config.passive_seconds)
        if reply is None:
            # still in flight: from now on its answer goes out by push
            if await asyncio.to_thread(self.ledger.settle, CHANNEL, key, PUSHED):
                return ""
            reply = await asyncio.to_thread(self.ledger.reply, CHANNEL, key)
        logger.info("wechat retry of a processed message answered from the ledger")
        return reply or ""

    def _inbound_text(self, fields: Dict[str, str]) -> Optional[str]:
        kind = fields["MsgType"].lower()
        if kind == "text":
            return fields.get("Content", "")
        if kind == "event":
            event = fields.get("Event", "").lower()
            if event == "subscribe":
                return SUBSCRIBED
            if event == "click" and fields.get("EventKey"):
                return fields["EventKey"]
            return None
        if kind == "voice" and fields.get("Recognition"):    # WeChat's own speech-to-text
            return fields["Recognition"]
        return ""          # non-text: a polite answer, no bot turn

    async def _send_later(self, openid: str, replies: List[OutboundMessage]) -> None:
        """Pushed through the gateway's durable outbox (in order, retried, never lost)."""
        await self.app["router"].outbox.send_later(ConversationId.of(CHANNEL, openid), CHANNEL,
                                                   openid, replies)

    async def _push_when_done(self, openid: str, key: str, task: asyncio.Future) -> None:
        await self._send_later(openid, await task)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(t: asyncio.Task) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("wechat push failed: %s", type(t.exception()).__name__)
        task.add_done_callback(done)

    async def close(self, _app=None) -> None:
        for task in list(self._background):
            try:
                await asyncio.wait_for(task, 5)
            except Exception:
                pass
        if self._http is not None:
            await self._http.close()


async def connector_off(request: web.Request) -> web.Response:
    return web.Response(status=404, text="wechat connector is off")


def setup(app: web.Application) -> None:
    config = WeChatConfig.from_env()
    if config is None:   # the routes exist (one documented surface) but refuse everything
        logger.info("wechat connector off (KEFU_WECHAT_TOKEN unset)")
        app.router.add_get("/webhooks/wechat", connector_off)
        app.router.add_post("/webhooks/wechat", connector_off)
        return
    channel = WeChatChannel(app, config)
    app["wechat"] = channel
    app.router.add_get("/webhooks/wechat", channel.verify_url)
    app.router.add_post("/webhooks/wechat", channel.receive)
    app["senders"][CHANNEL] = channel.push
    app.on_cleanup.append(channel.close)
    logger.info("wechat connector on (%s mode)", "safe" if channel.crypto else "plaintext")
