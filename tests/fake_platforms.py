"""Local stand-ins for the WeChat API and the Telegram Bot API, and a WeChat "client".

The servers run an aiohttp app on a thread of their own so synchronous tests (and the
gateway subprocess) can talk to them. They speak the real wire formats – WeChat's JSON
API and signed/encrypted XML pushes, the Bot API's ``{"ok": true, "result": ...}`` – and
record every call so tests can assert on what the gateway sent.
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
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional

from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class ThreadedServer:
    def __init__(self, app: web.Application, port: int) -> None:
        self.app, self.port = app, port
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._runner = runner
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def start(self) -> "ThreadedServer":
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fake server did not start")
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


# --- WeChat ---------------------------------------------------------------------------------


class FakeWeChatAPI:
    """``/cgi-bin/token`` and ``/cgi-bin/message/custom/send`` as api.weixin.qq.com has them."""

    def __init__(self, appid: str, secret: str) -> None:
        self.appid, self.secret = appid, secret
        self.token_fetches = 0
        self.valid_tokens: set[str] = set()
        self.expired_tokens: set[str] = set()
        self.sent: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/token", self.token)
        self.app.router.add_post("/cgi-bin/message/custom/send", self.custom_send)

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential" or q.get("appid") != self.appid \
                or q.get("secret") != self.secret:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        await asyncio.sleep(0.05)           # a real round trip: lets a stampede show
        with self.lock:
            self.token_fetches += 1
            token = f"ACCESS_TOKEN_{self.token_fetches}_{secrets.token_hex(4)}"
            self.valid_tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": 7200})

    def expire_all(self) -> None:
        with self.lock:
            self.expired_tokens |= self.valid_tokens
            self.valid_tokens.clear()

    async def custom_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if token in self.expired_tokens:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if token not in self.valid_tokens:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        body = json.loads(await request.read())
        if body.get("msgtype") != "text" or not body.get("touser"):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        with self.lock:
            self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def sent_to(self, openid: str) -> List[str]:
        with self.lock:
            return [m["text"]["content"] for m in self.sent if m["touser"] == openid]


def wechat_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


class WeChatPusher:
    """What WeChat's servers do: sign (and in safe mode encrypt) XML and POST it.

    Written from the protocol description independently of ``connectors.wechat.official_account``.
    """

    def __init__(self, url: str, token: str, appid: str, aes_key: str | None,
                 account: str = "gh_kefu_test") -> None:
        self.url, self.token, self.appid, self.account = url, token, appid, account
        self.key = base64.b64decode(aes_key + "=") if aes_key else None
        self._ids = int(time.time() * 1000)

    def next_msg_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    # AES-256-CBC, IV = key[:16], PKCS#7 to 32 bytes, random16 + len + msg + appid
    def encrypt(self, text: str) -> str:
        body = text.encode()
        plain = secrets.token_bytes(16) + struct.pack(">I", len(body)) + body + self.appid.encode()
        pad = 32 - len(plain) % 32
        plain += bytes([pad]) * pad
        enc = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def decrypt(self, data: str) -> str:
        dec = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = dec.update(base64.b64decode(data)) + dec.finalize()
        plain = plain[:-plain[-1]]
        (length,) = struct.unpack(">I", plain[16:20])
        assert plain[20 + length:].decode() == self.appid
        return plain[20:20 + length].decode()

    @staticmethod
    def cdata(text: str) -> str:
        return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"

    def message_xml(self, openid: str, msg_type: str = "text", *, content: str | None = None,
                    msg_id: str | None = None, event: str | None = None,
                    create_time: int | None = None, extra: str = "") -> str:
        parts = [f"<ToUserName>{self.cdata(self.account)}</ToUserName>",
                 f"<FromUserName>{self.cdata(openid)}</FromUserName>",
                 f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
                 f"<MsgType>{self.cdata(msg_type)}</MsgType>"]
        if content is not None:
            parts.append(f"<Content>{self.cdata(content)}</Content>")
        if event:
            parts.append(f"<Event>{self.cdata(event)}</Event>")
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
                 "signature": wechat_signature(self.token, timestamp, nonce)}
        body = xml.encode() if isinstance(xml, str) else xml
        if safe and not raw:
            encrypted = self.encrypt(xml if isinstance(xml, str) else xml.decode())
            body = (f"<xml><ToUserName>{self.cdata(self.account)}</ToUserName>"
                    f"<Encrypt>{self.cdata(encrypted)}</Encrypt></xml>").encode()
            query.update(encrypt_type="aes",
                         msg_signature=wechat_signature(self.token, timestamp, nonce, encrypted))
        if forge:
            query["signature"] = "0" * 40
            if "msg_signature" in query:
                query["msg_signature"] = "0" * 40
        request = urllib.request.Request(f"{self.url}?{urllib.parse.urlencode(query)}", data=body,
                                         headers={"Content-Type": "text/xml"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        return status, self.reply_content(text, timestamp=timestamp, nonce=nonce) if safe else (
            self.plain_content(text))

    def reply_content(self, text: str, **_) -> str:
        """Check the encrypted reply's signature and return its Content ("success" as is)."""
        if text in ("success", ""):
            return text
        root = ET.fromstring(text)
        encrypted = root.findtext("Encrypt")
        sig = wechat_signature(self.token, root.findtext("TimeStamp"), root.findtext("Nonce"),
                               encrypted)
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


# --- Telegram -------------------------------------------------------------------------------


class FakeBotAPI:
    """The Bot API methods the connector uses, with real result shapes; calls are recorded."""

    def __init__(self, token: str, username: str = "kefu_test_bot") -> None:
        self.token, self.username = token, username
        self.calls: List[tuple[str, Dict[str, Any]]] = []
        self.updates: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self._message_id = 1000
        self.app = web.Application()
        self.app.router.add_route("*", "/bot{token}/{method}", self.dispatch)

    async def _params(self, request: web.Request) -> Dict[str, Any]:
        if request.content_type == "application/json":
            return await request.json()
        form = await request.post()
        params: Dict[str, Any] = {}
        for key, value in form.items():
            try:
                params[key] = json.loads(value)
            except (ValueError, TypeError):
                params[key] = value
        return params

    def _message(self, chat_id: int, text: str, reply_markup: Any = None) -> Dict[str, Any]:
        self._message_id += 1
        msg = {"message_id": self._message_id, "date": int(time.time()),
               "chat": {"id": int(chat_id), "type": "private", "first_name": "Customer"},
               "from": {"id": 7000001, "is_bot": True, "first_name": "Kefu",
                        "username": self.username},
               "text": text}
        if reply_markup:
            msg["reply_markup"] = reply_markup
        return msg

    async def dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = await self._params(request)
        with self.lock:
            self.calls.append((method, params))
        if method == "getMe":
            result: Any = {"id": 7000001, "is_bot": True, "first_name": "Kefu",
                           "username": self.username, "can_join_groups": False,
                           "can_read_all_group_messages": False,
                           "supports_inline_queries": False}
        elif method == "sendMessage":
            result = self._message(params["chat_id"], params["text"], params.get("reply_markup"))
        elif method == "editMessageReplyMarkup":
            result = self._message(params["chat_id"], "(edited)", params.get("reply_markup"))
            result["message_id"] = int(params["message_id"])
        elif method in ("answerCallbackQuery", "deleteWebhook", "setWebhook"):
            result = True
        elif method == "getUpdates":
            offset = int(params.get("offset") or 0)
            deadline = time.monotonic() + min(float(params.get("timeout") or 0), 2.0)
            while True:
                with self.lock:
                    result = [u for u in self.updates if u["update_id"] >= offset]
                if result or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0.05)
        else:
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": "Not Found: method not found"}, status=404)
        return web.json_response({"ok": True, "result": result})

    def sent(self, chat_id: int | None = None) -> List[Dict[str, Any]]:
        with self.lock:
            return [p for m, p in self.calls if m == "sendMessage"
                    and (chat_id is None or int(p["chat_id"]) == chat_id)]

    def methods(self) -> List[str]:
        with self.lock:
            return [m for m, _ in self.calls]


class TelegramCustomer:
    """A private chat with the bot: posts Bot API updates to the gateway's webhook."""

    _update_id = 500000

    def __init__(self, webhook_url: str, secret: str, api: FakeBotAPI, chat_id: int) -> None:
        self.url, self.secret, self.api, self.chat_id = webhook_url, secret, api, chat_id
        self._message_id = 0

    @classmethod
    def next_update_id(cls) -> int:
        cls._update_id += 1
        return cls._update_id

    def user(self) -> Dict[str, Any]:
        return {"id": self.chat_id, "is_bot": False, "first_name": "顾客", "language_code": "zh-hans"}

    def message_update(self, text: str | None, **extra) -> Dict[str, Any]:
        self._message_id += 1
        message = {"message_id": self._message_id, "date": int(time.time()), "from": self.user(),
                   "chat": {"id": self.chat_id, "type": "private", "first_name": "顾客"}, **extra}
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": len(text.split()[0])}]
        return {"update_id": self.next_update_id(), "message": message}

    def callback_update(self, bot_message: Dict[str, Any], data: str) -> Dict[str, Any]:
        return {"update_id": self.next_update_id(), "callback_query": {
            "id": str(secrets.randbelow(10**12)), "from": self.user(), "chat_instance": "1",
            "data": data, "message": {**bot_message, "chat": {"id": self.chat_id, "type": "private",
                                                             "first_name": "顾客"}}}}

    def post(self, update: Any, *, secret: Optional[str] = None, raw: bytes | None = None
             ) -> int:
        body = raw if raw is not None else json.dumps(update).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not False:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.secret if secret is None else secret
        request = urllib.request.Request(self.url, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=90) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def say(self, text: str | None, **extra) -> List[Dict[str, Any]]:
        """Send a message; returns the bot's sendMessage calls it caused."""
        before = len(self.api.sent(self.chat_id))
        assert self.post(self.message_update(text, **extra)) == 200
        return self.api.sent(self.chat_id)[before:]

    def press(self, bot_message_params: Dict[str, Any], title: str) -> List[Dict[str, Any]]:
        """Press the inline button ``title`` on a message the bot sent."""
        rows = bot_message_params["reply_markup"]["inline_keyboard"]
        [button] = [b for row in rows for b in row if b["text"] == title]
        message = {"message_id": 1, "date": int(time.time()), "text": bot_message_params["text"],
                   "reply_markup": bot_message_params["reply_markup"]}
        before = len(self.api.sent(self.chat_id))
        assert self.post(self.callback_update(message, button["callback_data"])) == 200
        return self.api.sent(self.chat_id)[before:]


# --- the session's fakes, as tests/conftest.py starts them ---------------------------------

WECHAT_TOKEN = "kefuTestToken"
WECHAT_APPID = "wx0123456789abcdef"
WECHAT_SECRET = "test-app-secret"
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TELEGRAM_TOKEN = "7000001:customer-test-token"
TELEGRAM_SECRET = "kefu-webhook-secret"


class ChannelFakes:
    def __init__(self, wechat_port: int, telegram_port: int) -> None:
        self.wechat = FakeWeChatAPI(WECHAT_APPID, WECHAT_SECRET)
        self.telegram = FakeBotAPI(TELEGRAM_TOKEN)
        self.servers = [ThreadedServer(self.wechat.app, wechat_port).start(),
                        ThreadedServer(self.telegram.app, telegram_port).start()]
        self.env = {"KEFU_WECHAT_TOKEN": WECHAT_TOKEN, "KEFU_WECHAT_APPID": WECHAT_APPID,
                    "KEFU_WECHAT_SECRET": WECHAT_SECRET, "KEFU_WECHAT_AES_KEY": WECHAT_AES_KEY,
                    "KEFU_WECHAT_API_BASE": self.servers[0].url,
                    "KEFU_TELEGRAM_TOKEN": TELEGRAM_TOKEN, "KEFU_TELEGRAM_SECRET": TELEGRAM_SECRET,
                    "KEFU_TELEGRAM_API_BASE": self.servers[1].url}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_channel_fakes(wechat_port: int, telegram_port: int) -> ChannelFakes:
    return ChannelFakes(wechat_port, telegram_port)
