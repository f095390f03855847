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
import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from xml.etree.ElementTree import ParseError

from bot.store.engine import get_engine, retrying
from bot.store.schema import PlatformToken
from bot.messages import InboundMessage, OutboundMessage
from bot.store.deliveries import PUSHED, DeliveryLedger, joined_text, resolve_choice

logger = logging.getLogger(__name__)

CHANNEL = "wechat"
MAX_BODY = 64 * 1024
DEFAULT_API = "https://api.weixin.qq.com"
TOKEN_ERRORS = {40001, 40014, 42001}     # invalid / malformed / expired access_token
UNSUPPORTED_TEXT = ("暂时只能看懂文字消息哦～我可以帮您查询退换货、运费、保修等政策，登记投诉、"
                    "报修和退换货，查询工单进度，或者为您转人工。请用文字告诉我您需要什么～")
NON_TEXT = {"image": "[图片]", "voice": "[语音]", "video": "[视频]", "shortvideo": "[小视频]",
            "location": "[位置]", "link": "[链接]", "file": "[文件]"}


class WeChatError(Exception):
    """A request that is not from WeChat or cannot be read (the status says which)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def signature(*parts: str) -> str:
    """WeChat's SHA1 over the sorted parts (token, timestamp, nonce[, encrypt])."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8", "surrogatepass")).hexdigest()


def signature_ok(expected_parts, given: Optional[str]) -> bool:
    return bool(given) and hmac.compare_digest(signature(*expected_parts).encode(),
                                               given.encode("utf-8", "surrogatepass"))


class WeChatCrypto:
    """The WXBizMsgCrypt scheme: AES-256-CBC, IV = key[:16], PKCS#7 to 32-byte blocks.

    Plaintext = 16 random bytes + 4-byte big-endian length + message + appid.
    """

    BLOCK = 32

    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        self.key = base64.b64decode(encoding_aes_key + "=")
        if len(self.key) != 32:
            raise ValueError("EncodingAESKey does not decode to 32 bytes")
        self.token, self.appid = token, appid

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, text: str, random16: bytes | None = None) -> str:
        body = text.encode("utf-8")
        plain = (random16 or secrets.token_bytes(16)) + struct.pack(">I", len(body)) + body \
            + self.appid.encode("utf-8")
        pad = self.BLOCK - len(plain) % self.BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (ValueError, TypeError):
            raise WeChatError(400, "Encrypt is not base64")
        if not raw or len(raw) % 16:
            raise WeChatError(400, "Encrypt has a wrong length")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= self.BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise WeChatError(403, "bad padding (wrong key?)")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise WeChatError(403, "decrypted message too short")
        (length,) = struct.unpack(">I", plain[16:20])
        body, appid = plain[20:20 + length], plain[20 + length:]
        if len(body) != length or not hmac.compare_digest(appid, self.appid.encode("utf-8")):
            raise WeChatError(403, "appid does not match")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise WeChatError(400, "decrypted message is not UTF-8")

    def encrypted_reply(self, reply_xml: str, nonce: str, timestamp: str | None = None) -> str:
        timestamp = timestamp or str(int(time.time()))
        encrypted = self.encrypt(reply_xml)
        sig = signature(self.token, timestamp, nonce, encrypted)
        return (f"<xml><Encrypt>{cdata(encrypted)}</Encrypt><MsgSignature>{cdata(sig)}"
                f"</MsgSignature><TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}"
                f"</Nonce></xml>")


def split_text(text: str, limit: int = 2000) -> List[str]:
    """Pieces of at most ``limit`` UTF-8 bytes (WeChat's text limit is 2048), cut between
    messages or lines where possible, so a long answer arrives whole in several parts."""
    pieces: List[str] = []
    current = ""
    for part in text.split("\n"):
        candidate = f"{current}\n{part}" if current else part
        if len(candidate.encode("utf-8")) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = ""
        while len(part.encode("utf-8")) > limit:          # one overlong line: cut by characters
            cut = limit // 4
            while len(part[:cut + 1].encode("utf-8")) <= limit and cut < len(part):
                cut += 1
            pieces.append(part[:cut])
            part = part[cut:]
        current = part
    if current:
        pieces.append(current)
    return [p.strip("\n") for p in pieces if p.strip()]


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def parse_xml(body: bytes | str) -> Dict[str, str]:
    """The flat ``<xml>`` of a WeChat message as a dict; entities and DTDs are refused."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException as exc:
        raise WeChatError(400, f"forbidden XML construct: {type(exc).__name__}")
    except (ParseError, ValueError, TypeError) as exc:
        raise WeChatError(400, f"malformed XML: {type(exc).__name__}")
    if root.tag != "xml":
        raise WeChatError(400, "root element is not <xml>")
    fields: Dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str):
            fields[child.tag] = (child.text or "").strip() if len(child) == 0 else ""
    return fields


def text_reply(to_user: str, from_user: str, content: str) -> str:
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType>"
            f"{cdata('text')}</MsgType><Content>{cdata(content)}</Content></xml>")


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
        env = os.environ
        token = env.get("KEFU_WECHAT_TOKEN", "")
        if not token:
            return None
        return cls(token=token, appid=env.get("KEFU_WECHAT_APPID", ""),
                   secret=env.get("KEFU_WECHAT_SECRET", ""),
                   aes_key=env.get("KEFU_WECHAT_AES_KEY", ""),
                   api_base=(env.get("KEFU_WECHAT_API_BASE") or DEFAULT_API).rstrip("/"),
                   passive_seconds=float(env.get("KEFU_WECHAT_PASSIVE_SECONDS", "4")))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


class AccessTokenHolder:
    """The one holder of an app's access token, shared by all replicas through SQL.

    The token and its expiry live in ``platform_tokens``. A replica that finds it missing,
    near expiry or rejected (40001/42001) claims a short lease by compare-and-set and
    fetches a new one; the others wait for the row to change instead of asking too, so
    a burst of requests or replicas causes one fetch, not a stampede.
    """

    MARGIN = dt.timedelta(seconds=300)     # refresh this long before WeChat's expiry
    LEASE = dt.timedelta(seconds=15)

    def __init__(self, name: str, fetch, engine=None) -> None:
        self.name = name
        self.fetch = fetch                 # async () -> (token, expires_in seconds)
        self.engine = engine or get_engine()
        self._lock = asyncio.Lock()
        self._cached: tuple[str, dt.datetime] | None = None

    def _usable(self, token, expires_at, bad) -> bool:
        return bool(token) and token != bad and expires_at is not None \
            and _aware(expires_at) - self.MARGIN > _utcnow()

    def _read(self):
        def work(session):
            row = session.get(PlatformToken, self.name)
            return (row.token, _aware(row.expires_at)) if row else (None, None)
        return retrying(work, engine=self.engine)

    def _claim(self, bad: Optional[str]) -> bool:
        def ensure(session):
            session.add(PlatformToken(name=self.name))
            session.flush()
        try:
            retrying(ensure, engine=self.engine)
        except IntegrityError:
            pass
        now = _utcnow()

        def work(session):
            stale = ((PlatformToken.token.is_(None)) | (PlatformToken.expires_at.is_(None))
                     | (PlatformToken.expires_at < now + self.MARGIN))
            if bad:
                stale = stale | (PlatformToken.token == bad)
            query = update(PlatformToken).where(
                PlatformToken.name == self.name, stale,
                (PlatformToken.lease_until.is_(None)) | (PlatformToken.lease_until < now))
            return session.execute(query.values(lease_until=now + self.LEASE)).rowcount == 1
        return retrying(work, engine=self.engine)

    def _store(self, token: Optional[str], expires_at: Optional[dt.datetime]) -> None:
        def work(session):
            values = {"lease_until": None}
            if token:
                values.update(token=token, expires_at=expires_at)
            session.execute(update(PlatformToken).where(PlatformToken.name == self.name)
                            .values(**values))
        retrying(work, engine=self.engine)

    async def get(self, bad: Optional[str] = None, timeout: float = 20.0) -> str:
        """A valid token; ``bad`` is one the platform just rejected (never returned again)."""
        if self._cached and self._usable(*self._cached, bad):
            return self._cached[0]
        async with self._lock:
            deadline = time.monotonic() + timeout
            while True:
                token, expires_at = await asyncio.to_thread(self._read)
                if self._usable(token, expires_at, bad):
                    self._cached = (token, expires_at)
                    return token
                if await asyncio.to_thread(self._claim, bad):
                    try:
                        token, expires_in = await self.fetch()
                    except BaseException:
                        await asyncio.to_thread(self._store, None, None)
                        raise
                    expires_at = _utcnow() + dt.timedelta(seconds=int(expires_in))
                    await asyncio.to_thread(self._store, token, expires_at)
                    self._cached = (token, expires_at)
                    logger.info("wechat access token refreshed (valid %ss)", expires_in)
                    return token
                if time.monotonic() > deadline:
                    raise TimeoutError("no access token: another replica's refresh hangs")
                await asyncio.sleep(0.2)


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
            raise RuntimeError(f"wechat custom send failed (errcode {code})")

    async def push(self, user_id: str, messages: List[OutboundMessage]) -> None:
        """The gateway's sender for this channel: late answers, agents' replies, notices."""
        for piece in split_text(joined_text(messages)):
            await self.send_text(user_id, piece)

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

    async def _read_body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise WeChatError(413, "body too large")
        body = bytearray()
        while True:
            chunk = await request.content.read(16 * 1024)
            if not chunk:
                return bytes(body)
            body.extend(chunk)
            if len(body) > MAX_BODY:
                raise WeChatError(413, "body too large")

    async def receive(self, request: web.Request) -> web.Response:
        query = request.query
        safe = query.get("encrypt_type") == "aes"
        try:
            self._check_signature(query)
            body = await self._read_body(request)
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
            conversation = f"{CHANNEL}:{openid}"
            await router.record(conversation, CHANNEL, "customer", NON_TEXT[kind])
            await router.record(conversation, CHANNEL, "system", UNSUPPORTED_TEXT)
            await asyncio.to_thread(self.ledger.settle, CHANNEL, key, UNSUPPORTED_TEXT)
            return UNSUPPORTED_TEXT
        if not text.startswith("/"):
            text = await asyncio.to_thread(resolve_choice, f"{CHANNEL}:{openid}", text)
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
                self._spawn(self._send_all(openid, rest))
            return first
        # a retry already told WeChat ``success``: this answer must go out by push
        self._spawn(self.push(openid, replies))
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
                return "/greet"
            if event == "click" and fields.get("EventKey"):
                return fields["EventKey"]
            return None
        if kind == "voice" and fields.get("Recognition"):    # WeChat's own speech-to-text
            return fields["Recognition"]
        return ""          # non-text: a polite answer, no bot turn

    async def _send_all(self, openid: str, pieces: List[str]) -> None:
        for piece in pieces:
            await self.send_text(openid, piece)

    async def _push_when_done(self, openid: str, key: str, task: asyncio.Future) -> None:
        replies = await task
        await self.push(openid, replies)

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
