"""A local WeChat Official Account API, and WeChat's pushes to the gateway.

:class:`FakeWeChatAPI` serves ``/cgi-bin/token`` and ``/cgi-bin/message/custom/send`` with
api.weixin.qq.com's JSON (errcodes 40125, 40001, 42001, 40008) and records what was sent;
:class:`WeChatPusher` does what WeChat's servers do: sign (and in safe mode encrypt) XML
and POST it. The message scheme (:func:`encrypt` / :func:`decrypt`, :func:`signature`) is
written from the protocol description independently of ``connectors.wechat``; WeCom uses
the same one (:mod:`tests.fakes.wecom`).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import struct
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Tuple

from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.fakes import FakePlatform, http

WECHAT_TOKEN = "kefuTestToken"
WECHAT_APPID = "wx0123456789abcdef"
WECHAT_SECRET = "test-app-secret"
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


# --- the scheme WeChat and WeCom share ------------------------------------------------------


def signature(*parts: str) -> str:
    """SHA-1 of the sorted parts: the URL ``signature`` and the ``msg_signature``."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()



def aes_key(encoding_aes_key: str) -> bytes:
    return base64.b64decode(encoding_aes_key + "=")


def encrypt(key: bytes, text: str, receive_id: str) -> str:
    """AES-256-CBC, IV = key[:16], PKCS#7 to 32 bytes, random16 + len + msg + receive id."""
    body = text.encode()
    plain = secrets.token_bytes(16) + struct.pack(">I", len(body)) + body + receive_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def decrypt(key: bytes, data: str, receive_id: str) -> str:
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(base64.b64decode(data)) + dec.finalize()
    plain = plain[:-plain[-1]]
    (length,) = struct.unpack(">I", plain[16:20])
    assert plain[20 + length:].decode() == receive_id
    return plain[20:20 + length].decode()


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class TokenPlatform(FakePlatform):
    """Access tokens as WeChat and WeCom issue them: counted, valid until :meth:`expire_all`."""

    token_prefix = "ACCESS_TOKEN"
    token_delay = 0.05              # a real round trip: lets a stampede show

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.token_fetches = 0
        self.valid_tokens: set[str] = set()
        self.expired_tokens: set[str] = set()

    async def issue_token(self) -> str:
        await asyncio.sleep(self.token_delay)
        with self.lock:
            self.token_fetches += 1
            token = f"{self.token_prefix}_{self.token_fetches}_{secrets.token_hex(6)}"
            self.valid_tokens.add(token)
        return token

    def expire_all(self) -> None:
        with self.lock:
            self.expired_tokens |= self.valid_tokens
            self.valid_tokens.clear()

    def token_refused(self, token: str, invalid: Tuple[int, str]) -> Optional[Tuple[int, str]]:
        """(errcode, errmsg) for an expired or unknown token, else None."""
        with self.lock:
            if token in self.expired_tokens:
                return 42001, "access_token expired"
            return None if token in self.valid_tokens else invalid


def option(reply: str, title: str) -> str:
    """The number a text reply shows in front of ``title`` ("2. 物流配送" -> "2"): buttons as
    WeChat and WeCom customers see them."""
    for line in reply.splitlines():
        number, _, rest = line.partition(". ")
        if rest.strip() == title and number.isdigit():
            return number
    raise AssertionError(f"no option {title!r} in {reply!r}")


# --- the Official Account API ---------------------------------------------------------------


class FakeWeChatAPI(TokenPlatform):
    """``/cgi-bin/token`` and ``/cgi-bin/message/custom/send`` as api.weixin.qq.com has them."""

    def __init__(self, appid: str = WECHAT_APPID, secret: str = WECHAT_SECRET) -> None:
        super().__init__()
        self.appid, self.secret = appid, secret
        self.sent: List[Dict[str, Any]] = []

    def env(self) -> Dict[str, str]:
        """The gateway's settings for this account (and :class:`WeChatPusher`'s token, key)."""
        return {"KEFU_WECHAT_TOKEN": WECHAT_TOKEN, "KEFU_WECHAT_APPID": self.appid,
                "KEFU_WECHAT_SECRET": self.secret, "KEFU_WECHAT_AES_KEY": WECHAT_AES_KEY,
                "KEFU_WECHAT_API_BASE": self.url}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_post("/cgi-bin/message/custom/send", self.custom_send)

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential" or q.get("appid") != self.appid \
                or q.get("secret") != self.secret:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        return web.json_response({"access_token": await self.issue_token(), "expires_in": 7200})

    async def custom_send(self, request: web.Request) -> web.Response:
        refused = self.token_refused(request.query.get("access_token", ""),
                                     (40001, "invalid credential"))
        if refused:
            return web.json_response({"errcode": refused[0], "errmsg": refused[1]})
        body = json.loads(await request.read())
        if body.get("msgtype") != "text" or not body.get("touser"):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        with self.lock:
            self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def sent_to(self, openid: str) -> List[str]:
        with self.lock:
            return [m["text"]["content"] for m in self.sent if m["touser"] == openid]


# --- WeChat's pushes --------------------------------------------------------------------------


class WeChatPusher:
    """What WeChat's servers do: sign (and in safe mode encrypt) XML and POST it."""

    cdata = staticmethod(cdata)

    def __init__(self, url: str, token: str, appid: str, aes_key_text: str | None,
                 account: str = "gh_kefu_test") -> None:
        self.url, self.token, self.appid, self.account = url, token, appid, account
        self.key = aes_key(aes_key_text) if aes_key_text else None
        self._ids = int(time.time() * 1000)

    def next_msg_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def encrypt(self, text: str) -> str:
        return encrypt(self.key, text, self.appid)

    def decrypt(self, data: str) -> str:
        return decrypt(self.key, data, self.appid)

    def message_xml(self, openid: str, msg_type: str = "text", *, content: str | None = None,
                    msg_id: str | None = None, event: str | None = None,
                    create_time: int | None = None, extra: str = "") -> str:
        parts = [f"<ToUserName>{cdata(self.account)}</ToUserName>",
                 f"<FromUserName>{cdata(openid)}</FromUserName>",
                 f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
                 f"<MsgType>{cdata(msg_type)}</MsgType>"]
        if content is not None:
            parts.append(f"<Content>{cdata(content)}</Content>")
        if event:
            parts.append(f"<Event>{cdata(event)}</Event>")
        parts.append(extra)
        if msg_type != "event":
            parts.append(f"<MsgId>{msg_id or self.next_msg_id()}</MsgId>")
        return "<xml>" + "".join(parts) + "</xml>"

    def post(self, xml: str | bytes, *, safe: bool | None = None, forge: bool = False,
             raw: bool = False, timeout: float = 60) -> tuple[int, str]:
        """POST like WeChat; returns (status, decrypted reply text or raw body)."""
        safe = self.key is not None if safe is None else safe
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        query = {"timestamp": timestamp, "nonce": nonce, "openid": "x",
                 "signature": signature(self.token, timestamp, nonce)}
        body = xml.encode() if isinstance(xml, str) else xml
        if safe and not raw:
            encrypted = self.encrypt(xml if isinstance(xml, str) else xml.decode())
            body = (f"<xml><ToUserName>{cdata(self.account)}</ToUserName>"
                    f"<Encrypt>{cdata(encrypted)}</Encrypt></xml>").encode()
            query.update(encrypt_type="aes",
                         msg_signature=signature(self.token, timestamp, nonce, encrypted))
        if forge:
            query["signature"] = "0" * 40
            if "msg_signature" in query:
                query["msg_signature"] = "0" * 40
        status, text = http(f"{self.url}?{urllib.parse.urlencode(query)}", body,
                            {"Content-Type": "text/xml"}, timeout)
        if not 200 <= status < 300:
            return status, text
        return status, self.reply_content(text) if safe else self.plain_content(text)

    def reply_content(self, text: str) -> str:
        """Check the encrypted reply's signature and return its Content ("success" as is)."""
        if text in ("success", ""):
            return text
        root = ET.fromstring(text)
        encrypted = root.findtext("Encrypt")
        sig = signature(self.token, root.findtext("TimeStamp"), root.findtext("Nonce"), encrypted)
        assert sig == root.findtext("MsgSignature"), "reply MsgSignature does not verify"
        return self.plain_content(self.decrypt(encrypted))

    def plain_content(self, text: str) -> str:
        if text in ("success", ""):
            return text
        root = ET.fromstring(text)
        assert root.findtext("MsgType") == "text"
        assert root.findtext("FromUserName") == self.account
        return root.findtext("Content")

    def say(self, openid: str, text: str, **kw) -> str:
        status, reply = self.post(self.message_xml(openid, content=text), **kw)
        assert status == 200, (status, reply)
        return reply
