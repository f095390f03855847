"""WeCom's 微信客服 HTTP API (``qyapi.weixin.qq.com``), as the 微信客服 channel uses it.

``gettoken`` (corpid + the 微信客服 secret) gives the access token, held by the shared
:class:`~connectors.wechat.access_token.AccessTokenHolder` (one SQL row for every replica,
cached in memory, never fetched per call); a call answered with 40001/40014/42001 gets a
fresh token and is made once more. Every call is a JSON POST answered with ``errcode``.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Dict, Optional

import aiohttp

from connectors.wechat.access_token import AccessTokenHolder

logger = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 42001}   # invalid / malformed / expired access_token
SESSION_STATE_INVALID = 95018          # send_msg while the session is not 0 or 1
SEND_LIMIT = 95001                     # send_msg over WeCom's count / 48 h limit


class KfApiError(Exception):
    """WeCom answered with a non-zero ``errcode`` (or could not be reached: ``errcode`` -1)."""

    def __init__(self, path: str, errcode: int, errmsg: str = "") -> None:
        super().__init__(f"{path}: errcode {errcode} {errmsg[:80]}")
        self.path, self.errcode, self.errmsg = path, errcode, errmsg


class KfApi:
    def __init__(self, api_base: str, corpid: str, secret: str, engine=None) -> None:
        self.api_base, self.corpid, self.secret = api_base.rstrip("/"), corpid, secret
        self.tokens = AccessTokenHolder(f"wecom_kf:{corpid}", self._fetch_token, engine=engine)
        self._http: aiohttp.ClientSession | None = None

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _fetch_token(self) -> tuple[str, int]:
        params = {"corpid": self.corpid, "corpsecret": self.secret}
        async with self.http().get(f"{self.api_base}/cgi-bin/gettoken", params=params) as resp:
            body = await resp.json(content_type=None)
        if not isinstance(body, dict) or body.get("errcode", 0) != 0 or not body.get("access_token"):
            code = body.get("errcode") if isinstance(body, dict) else None
            raise KfApiError("gettoken", code if isinstance(code, int) else -1)
        return body["access_token"], int(body.get("expires_in", 7200))

    async def call(self, path: str, payload: Dict[str, Any]) -> Dict[str, Any]:
        """POST ``payload`` to ``/cgi-bin/<path>``; the answer, or :class:`KfApiError`."""
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        token = await self.tokens.get()
        for attempt in (1, 2):
            try:
                async with self.http().post(f"{self.api_base}/cgi-bin/{path}",
                                            params={"access_token": token}, data=data,
                                            headers={"Content-Type": "application/json"}) as resp:
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, ValueError, asyncio.TimeoutError) as exc:
                raise KfApiError(path, -1, type(exc).__name__) from exc
            if not isinstance(body, dict):
                raise KfApiError(path, -1, "not a JSON object")
            code = body.get("errcode", 0)
            if code == 0:
                return body
            if code in TOKEN_ERRORS and attempt == 1:
                logger.info("wecom-kf access token refused (%s), refreshing", code)
                token = await self.tokens.get(bad=token)
                continue
            raise KfApiError(path, int(code) if isinstance(code, int) else -1,
                             str(body.get("errmsg", "")))
        raise AssertionError("unreachable")

    # --- the calls the channel makes -------------------------------------------------------

    async def sync_msg(self, open_kfid: str, cursor: Optional[str], token: Optional[str],
                       limit: int = 1000) -> Dict[str, Any]:
        payload: Dict[str, Any] = {"open_kfid": open_kfid, "limit": limit, "voice_format": 0}
        if cursor:
            payload["cursor"] = cursor
        if token:
            payload["token"] = token
        return await self.call("kf/sync_msg", payload)

    async def send_text(self, open_kfid: str, external_userid: str, content: str,
                        msgid: Optional[str] = None) -> str:
        payload: Dict[str, Any] = {"touser": external_userid, "open_kfid": open_kfid,
                                   "msgtype": "text", "text": {"content": content}}
        if msgid:
            payload["msgid"] = msgid
        return str((await self.call("kf/send_msg", payload)).get("msgid", ""))

    async def send_on_event(self, code: str, content: str, msgid: Optional[str] = None) -> str:
        payload: Dict[str, Any] = {"code": code, "msgtype": "text", "text": {"content": content}}
        if msgid:
            payload["msgid"] = msgid
        return str((await self.call("kf/send_msg_on_event", payload)).get("msgid", ""))

    async def service_state(self, open_kfid: str, external_userid: str) -> tuple[int, str]:
        body = await self.call("kf/service_state/get", {"open_kfid": open_kfid,
                                                        "external_userid": external_userid})
        return int(body.get("service_state", 0)), str(body.get("servicer_userid", "") or "")

    async def trans(self, open_kfid: str, external_userid: str, state: int,
                    servicer_userid: Optional[str] = None) -> Dict[str, Any]:
        payload: Dict[str, Any] = {"open_kfid": open_kfid, "external_userid": external_userid,
                                   "service_state": state}
        if servicer_userid:
            payload["servicer_userid"] = servicer_userid
        return await self.call("kf/service_state/trans", payload)
