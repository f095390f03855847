"""A local stand-in for WeCom's 微信客服 API and its callbacks, written from WeCom's docs.

:class:`FakeWeCom` serves ``/cgi-bin/gettoken`` and the ``/cgi-bin/kf/...`` calls with
WeCom's JSON shapes and rules: ``sync_msg`` pages with ``next_cursor``/``has_more`` (the
sync ``token`` from a callback), ``send_msg`` only while the session is 0 or 1, within 48 h
of the customer's last message and 5 times per customer message (95018 / 95001), text
at most 2048 bytes, access tokens that expire (42001); ``send_msg_on_event`` takes an
``enter_session``'s ``welcome_code`` once; ``service_state/get`` and ``trans`` follow
WeCom's state table. Customers and reception staff are simulated by adding messages
and POSTing the encrypted ``kf_msg_or_event`` callback the way WeCom's servers do
(AES-256-CBC, receive id = CorpID, ``msg_signature``: the scheme of
:mod:`tests.fakes.wechat`, written independently of ``connectors.wechat``). Everything
the gateway sent is recorded for assertions.
"""
from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

from aiohttp import web

from tests.fakes import http
from tests.fakes.wechat import TokenPlatform, aes_key, encrypt, signature

CORPID = "ww5f3c8e1a7b2d4c60"
SECRET = "kf-secret-for-tests-only"
TOKEN = "KfCallbackToken2026"
AES_KEY = "kEfUwEcOmKfTeStKeY0123456789abcdefghijkLMNO"   # 43 characters
OPEN_KFID = "wkAJ2GCAAAkefuTestAccount0001"
# which session states may change to which (WeCom's 分配客服会话 table)
TRANSITIONS = {0: {1, 2, 3, 4}, 1: {2, 3, 4}, 2: {3, 4}, 3: {3, 4}, 4: set()}
WINDOW = 48 * 3600


class Callbacks:
    """What WeCom's servers do to the callback URL: encrypt, sign, GET or POST."""

    def __init__(self, url: str, token: str = TOKEN, aes_key_text: str = AES_KEY,
                 receive_id: str = CORPID) -> None:
        self.url, self.token, self.receive_id = url, token, receive_id
        self.key = aes_key(aes_key_text)

    def encrypt(self, text: str, receive_id: str | None = None) -> str:
        return encrypt(self.key, text, receive_id or self.receive_id)

    def event_xml(self, open_kfid: Optional[str], sync_token: str) -> str:
        kf = f"<OpenKfId><![CDATA[{open_kfid}]]></OpenKfId>" if open_kfid else ""
        return (f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>"
                f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                f"<Event><![CDATA[kf_msg_or_event]]></Event><Token><![CDATA[{sync_token}]]></Token>"
                f"{kf}</xml>")

    def envelope(self, encrypted: str) -> bytes:
        return (f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName><Encrypt><![CDATA["
                f"{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>").encode()

    def post_raw(self, body: bytes, query: Dict[str, str], timeout: float = 10) -> Tuple[int, str]:
        return http(f"{self.url}?{urllib.parse.urlencode(query)}", body,
                    {"Content-Type": "text/xml"}, timeout)

    def signed_query(self, encrypted: str, forge: bool = False) -> Dict[str, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        sig = "0" * 40 if forge else signature(self.token, timestamp, nonce, encrypted)
        return {"msg_signature": sig, "timestamp": timestamp, "nonce": nonce}

    def post_event(self, open_kfid: Optional[str], sync_token: str, *, forge: bool = False,
                   receive_id: str | None = None) -> Tuple[int, str]:
        encrypted = self.encrypt(self.event_xml(open_kfid, sync_token), receive_id)
        return self.post_raw(self.envelope(encrypted), self.signed_query(encrypted, forge))

    def verify(self, plain: str, *, forge: bool = False,
               receive_id: str | None = None) -> Tuple[int, str]:
        echostr = self.encrypt(plain, receive_id)
        query = {**self.signed_query(echostr, forge), "echostr": echostr}
        return http(f"{self.url}?{urllib.parse.urlencode(query)}", timeout=10)


class FakeWeCom(TokenPlatform):
    token_prefix, token_delay = "KF_ACCESS", 0.02

    def __init__(self, corpid: str = CORPID, secret: str = SECRET, page_size: int = 1000) -> None:
        super().__init__()
        self.corpid, self.secret, self.page_size = corpid, secret, page_size
        self.messages: Dict[str, List[Dict[str, Any]]] = {}      # open_kfid -> msg_list, in order
        self.sync_tokens: set[str] = set()
        self.sync_calls: List[Dict[str, Any]] = []
        self.relist_next = 0            # the next next_cursor points this many messages back
        self.sessions: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self.welcome_codes: Dict[str, Tuple[str, str, float]] = {}
        self.sent: List[Dict[str, Any]] = []                     # accepted send_msg / on_event
        self.refused: List[Tuple[str, int]] = []                 # (path, errcode)
        self.trans_calls: List[Dict[str, Any]] = []
        self.hold: Dict[str, asyncio.Event] = {}                 # external_userid -> held sends
        self.held = 0
        self._ids = int(time.time() * 1000)
        self.callbacks: Optional[Callbacks] = None

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        for path in ("sync_msg", "send_msg", "send_msg_on_event", "service_state/get",
                     "service_state/trans"):
            app.router.add_post(f"/cgi-bin/kf/{path}", self.call)

    # --- running ---------------------------------------------------------------------------

    def env(self, handoff: str = "kefu") -> Dict[str, str]:
        return {"KEFU_WECOM_KF_CORPID": self.corpid, "KEFU_WECOM_KF_SECRET": self.secret,
                "KEFU_WECOM_KF_TOKEN": TOKEN, "KEFU_WECOM_KF_AES_KEY": AES_KEY,
                "KEFU_WECOM_KF_API_BASE": self.url, "KEFU_WECOM_KF_HANDOFF": handoff}

    def connect(self, gateway_url: str) -> Callbacks:
        self.callbacks = Callbacks(f"{gateway_url}/webhooks/wecom-kf", receive_id=self.corpid)
        return self.callbacks

    # --- access tokens ---------------------------------------------------------------------

    async def gettoken(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("corpid") != self.corpid or q.get("corpsecret") != self.secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        return web.json_response({"errcode": 0, "errmsg": "ok",
                                  "access_token": await self.issue_token(), "expires_in": 7200})

    # --- the customers' side -------------------------------------------------------------------

    def _next_id(self) -> str:
        self._ids += 1
        return f"msg{self._ids}{secrets.token_hex(3)}"

    def session(self, user: str, open_kfid: str = OPEN_KFID) -> Dict[str, Any]:
        return self.sessions.setdefault((open_kfid, user), {
            "state": 4, "servicer": "", "last_customer": 0.0, "replies": 0})

    def _append(self, open_kfid: str, msg: Dict[str, Any]) -> Dict[str, Any]:
        msg.setdefault("msgid", self._next_id())
        msg.setdefault("send_time", int(time.time()))
        msg.setdefault("open_kfid", open_kfid)
        with self.lock:
            self.messages.setdefault(open_kfid, []).append(msg)
        return msg

    def customer_message(self, user: str, content: str | None = None, *, msgtype: str = "text",
                         payload: Dict[str, Any] | None = None, open_kfid: str = OPEN_KFID,
                         at: float | None = None) -> Dict[str, Any]:
        """The customer writes: the session opens (4 -> 0) and the reply budget resets."""
        sent = at if at is not None else time.time()
        with self.lock:
            s = self.session(user, open_kfid)
            if s["state"] == 4:
                s["state"] = 0
            s["last_customer"], s["replies"] = sent, 0
        msg = {"external_userid": user, "origin": 3, "msgtype": msgtype, "send_time": int(sent)}
        if msgtype == "text":
            msg["text"] = {"content": content or ""}
        else:
            msg[msgtype] = payload or {"media_id": secrets.token_hex(8)}
        return self._append(open_kfid, msg)

    def enter_session(self, user: str, open_kfid: str = OPEN_KFID) -> str:
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.session(user, open_kfid)
            self.welcome_codes[code] = (open_kfid, user, time.time() + 20)
        self._append(open_kfid, {"origin": 4, "msgtype": "event", "event": {
            "event_type": "enter_session", "open_kfid": open_kfid, "external_userid": user,
            "scene": "123", "scene_param": "abc", "welcome_code": code}})
        return code

    def staff_message(self, user: str, servicer: str, content: str,
                      open_kfid: str = OPEN_KFID) -> Dict[str, Any]:
        with self.lock:
            s = self.session(user, open_kfid)
            s["state"], s["servicer"] = 3, servicer
        return self._append(open_kfid, {"external_userid": user, "origin": 5,
                                        "servicer_userid": servicer, "msgtype": "text",
                                        "text": {"content": content}})

    def status_change(self, user: str, change_type: int, servicer: str = "",
                      open_kfid: str = OPEN_KFID) -> None:
        with self.lock:
            s = self.session(user, open_kfid)
            s["state"] = {1: 3, 2: 3, 3: 4, 4: 3}[change_type]
            s["servicer"] = servicer if change_type != 3 else ""
        self._append(open_kfid, {"origin": 4, "msgtype": "event", "event": {
            "event_type": "session_status_change", "open_kfid": open_kfid,
            "external_userid": user, "change_type": change_type,
            "new_servicer_userid": servicer, "msg_code": secrets.token_hex(6)}})

    def send_fail(self, user: str, fail_msgid: str, fail_type: int = 10,
                  open_kfid: str = OPEN_KFID) -> None:
        self._append(open_kfid, {"origin": 4, "msgtype": "event", "event": {
            "event_type": "msg_send_fail", "open_kfid": open_kfid, "external_userid": user,
            "fail_msgid": fail_msgid, "fail_type": fail_type}})

    def notify(self, open_kfid: str = OPEN_KFID, times: int = 1) -> List[Tuple[int, str]]:
        """WeCom's callback for new messages (``times``: delivered again, as on a timeout)."""
        token = "ENC" + secrets.token_urlsafe(24)
        with self.lock:
            self.sync_tokens.add(token)
        return [self.callbacks.post_event(open_kfid, token) for _ in range(times)]

    # --- what the gateway did --------------------------------------------------------------------

    def sent_to(self, user: str) -> List[str]:
        with self.lock:
            return [m["text"]["content"] for m in self.sent if m.get("touser") == user]

    def sent_calls(self, user: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.sent if m.get("touser") == user]

    # --- the API -------------------------------------------------------------------------------

    def _error(self, path: str, code: int, msg: str) -> web.Response:
        with self.lock:
            self.refused.append((path, code))
        return web.json_response({"errcode": code, "errmsg": msg})

    async def call(self, request: web.Request) -> web.Response:
        path = request.path.removeprefix("/cgi-bin/")
        refused = self.token_refused(request.query.get("access_token", ""),
                                     (40014, "invalid access_token"))
        if refused:
            return self._error(path, *refused)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(path, 47001, "data format error")
        handler = {"kf/sync_msg": self.sync_msg, "kf/send_msg": self.send_msg,
                   "kf/send_msg_on_event": self.send_on_event,
                   "kf/service_state/get": self.state_get,
                   "kf/service_state/trans": self.state_trans}[path]
        return await handler(path, body, request)

    @staticmethod
    def _cursor(position: int) -> str:
        return base64.urlsafe_b64encode(f"c{position}:{secrets.token_hex(2)}".encode()).decode()

    @staticmethod
    def _position(cursor: str) -> int:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":")[0][1:])

    async def sync_msg(self, path: str, body: Dict[str, Any], _request=None) -> web.Response:
        sync_token = body.get("token")
        if sync_token and sync_token not in self.sync_tokens:
            return self._error(path, 95007, "invalid msg token")
        open_kfid = body.get("open_kfid", "")
        if open_kfid not in self.messages and open_kfid != OPEN_KFID:
            return self._error(path, 95000, "invalid open_kfid")
        try:
            start = self._position(body["cursor"]) if body.get("cursor") else 0
        except (ValueError, IndexError):
            return self._error(path, 95006, "invalid cursor")
        limit = min(int(body.get("limit", 1000) or 1000), 1000, self.page_size)
        with self.lock:
            listing = self.messages.get(open_kfid, [])
            page = [dict(m) for m in listing[start:start + limit]]
            end = start + len(page)
            has_more = int(end < len(listing))
            self.sync_calls.append({"cursor": body.get("cursor"), "token": sync_token,
                                    "limit": body.get("limit"), "returned": len(page)})
            if self.relist_next and page:
                end, self.relist_next = max(0, end - self.relist_next), 0
                has_more = 1
        return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": self._cursor(end),
                                  "has_more": has_more, "msg_list": page})

    async def send_msg(self, path: str, body: Dict[str, Any], request: web.Request) -> web.Response:
        user, open_kfid = body.get("touser", ""), body.get("open_kfid", "")
        if body.get("msgtype") != "text" or not isinstance(body.get("text"), dict):
            return self._error(path, 40008, "invalid message type")
        if len(str(body["text"].get("content", "")).encode()) > 2048:
            return self._error(path, 45002, "content size out of limit")
        held = self.hold.get(user)
        if held is not None and not held.is_set():     # WeCom slow to answer (a crash test)
            self.held += 1
            await held.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)          # the caller is gone: nothing sent
        with self.lock:
            s = self.sessions.get((open_kfid, user))
            if s is None:
                return self._error(path, 95000, "invalid external_userid")
            if s["state"] not in (0, 1):
                return self._error(path, 95018, "send msg session status invalid")
            if time.time() - s["last_customer"] > WINDOW or s["replies"] >= 5:
                return self._error(path, 95001, "send msg count limit")
            s["replies"] += 1
            msgid = body.get("msgid") or self._next_id()
            self.sent.append({**body, "msgid": msgid, "kind": "send_msg"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def send_on_event(self, path: str, body: Dict[str, Any], _request=None) -> web.Response:
        with self.lock:
            found = self.welcome_codes.pop(str(body.get("code", "")), None)
            if found is None or found[2] < time.time():
                return self._error(path, 95012, "invalid msg code")
            open_kfid, user, _ = found
            msgid = body.get("msgid") or self._next_id()
            self.sent.append({**body, "touser": user, "open_kfid": open_kfid, "msgid": msgid,
                              "kind": "on_event"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def state_get(self, path: str, body: Dict[str, Any], _request=None) -> web.Response:
        with self.lock:
            s = self.sessions.get((body.get("open_kfid", ""), body.get("external_userid", "")))
            if s is None:
                return self._error(path, 95000, "invalid external_userid")
            return web.json_response({"errcode": 0, "errmsg": "ok", "service_state": s["state"],
                                      "servicer_userid": s["servicer"]})

    async def state_trans(self, path: str, body: Dict[str, Any], _request=None) -> web.Response:
        with self.lock:
            s = self.sessions.get((body.get("open_kfid", ""), body.get("external_userid", "")))
            target = body.get("service_state")
            if s is None:
                return self._error(path, 95000, "invalid external_userid")
            if target not in TRANSITIONS[s["state"]]:
                return self._error(path, 95016, "invalid session state transition")
            if target == 3 and not body.get("servicer_userid"):
                return self._error(path, 95017, "servicer_userid required")
            s["state"], s["servicer"] = target, body.get("servicer_userid", "")
            self.trans_calls.append(dict(body))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msg_code": secrets.token_hex(6)})
