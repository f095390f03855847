"""微信客服's pull model: a callback only says "something new"; the gateway reads it.

A ``kf_msg_or_event`` callback carries a sync ``Token`` and the ``OpenKfId``; the gateway
answers at once and pulls with ``kf/sync_msg`` (cursor, token, limit), page after page
while ``has_more``. One pass per account at a time: a lock in this process and a lease in
SQL (``kf_cursors``) across replicas; a callback that arrives meanwhile is counted, and
the pass runs again before it lets go. Every message of a page is recorded — its dedup
row and transcript lines in one transaction — before the cursor moves past the page, so
a crash neither loses nor repeats a message; then the messages that want an answer are
handed on (:class:`Pulled`).

What the messages become (``origin``): 3, a customer's message → a customer line and a
bot turn (non-text: a polite answer); 4, a system event → ``enter_session`` with a
``welcome_code`` gets the business pack's greeting by ``send_msg_on_event`` (a bot line
with its buttons, so a typed number picks one),
``msg_send_fail`` a system line for the agents, ``session_status_change`` WeCom's new
session state; 5, a message of WeCom's reception staff → an agent line.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple


from bot.store.deliveries import numbered_text
from bot.store.wecom_kf import CHANNEL, KfStore, Line
from connectors.welcome import welcome
from connectors.wechat.kf_api import KfApi, KfApiError

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
MAX_PAGES = 200                     # per pass: 200 000 messages, then the next pass goes on
ALL_ACCOUNTS = "*"                  # a callback without OpenKfId (WeCom's first API version)

NON_TEXT = {"image": "[图片]", "voice": "[语音]", "video": "[视频]", "file": "[文件]",
            "location": "[位置]", "link": "[链接]", "business_card": "[名片]",
            "miniprogram": "[小程序]", "msgmenu": "[菜单]", "channels": "[视频号]",
            "channels_shop_product": "[视频号商品]", "channels_shop_order": "[视频号订单]",
            "merged_msg": "[聊天记录]", "note": "[笔记]", "meeting": "[会议]", "calendar": "[日程]"}
# session_status_change.change_type -> WeCom's session state afterwards
STATE_AFTER_CHANGE = {1: 3, 2: 3, 3: 4, 4: 3}
FAIL_TYPES = {0: "未知原因", 1: "客服账号已删除", 2: "应用已关闭", 4: "会话已过期（超过48小时）",
              5: "会话已关闭", 6: "超过5条回复的限制", 8: "主体未验证", 10: "客户拒收",
              11: "企业未有成员登录企业微信App", 12: "消息类型不支持"}


@dataclass(frozen=True)
class Pulled:
    """A recorded message that wants something done (a turn, a welcome, a notice …)."""

    kind: str                  # turn | welcome | unsupported | send_fail | status
    open_kfid: str
    external_userid: str
    msgid: str
    text: str = ""
    line: Optional[int] = None             # the customer line's (welcome: bot line's) id
    welcome_code: Optional[str] = None
    state: Optional[int] = None            # session_status_change: the new state

    @property
    def conversation_id(self) -> str:
        return conversation_of(self.external_userid)


def conversation_of(external_userid: str) -> str:
    """One conversation per customer (``external_userid``) across the company's accounts."""
    return f"{CHANNEL}:{external_userid}"


@dataclass
class Interpreted:
    kind: Optional[str]
    open_kfid: str
    external_userid: str
    msgid: str
    lines: List[Line]
    text: str = ""
    welcome_code: Optional[str] = None
    customer_at: Optional[dt.datetime] = None
    state: Optional[int] = None
    servicer: Optional[str] = None


def _content(msg: Dict[str, Any]) -> Tuple[str, bool]:
    """(text, is_text): a text message's content, or the label of another kind."""
    kind = str(msg.get("msgtype", ""))
    if kind == "text":
        return str((msg.get("text") or {}).get("content", "")), True
    return NON_TEXT.get(kind, f"[{kind or '消息'}]"), False


def interpret(msg: Dict[str, Any], open_kfid: str) -> Interpreted:
    """One ``msg_list`` item as the lines to record and what it asks for."""
    event = msg.get("event") if isinstance(msg.get("event"), dict) else {}
    open_kfid = str(msg.get("open_kfid") or event.get("open_kfid") or open_kfid)
    user = str(msg.get("external_userid") or event.get("external_userid") or "")
    msgid = str(msg.get("msgid", ""))
    origin = msg.get("origin")
    sent = msg.get("send_time")
    at = dt.datetime.fromtimestamp(int(sent), dt.timezone.utc) if isinstance(sent, (int, float)) \
        and not isinstance(sent, bool) else dt.datetime.now(dt.timezone.utc)
    item = Interpreted(None, open_kfid, user, msgid, [])
    if not user:
        return item                                        # account-level event: nothing to say
    if origin == 3:                                        # the customer
        text, is_text = _content(msg)
        item.customer_at = at
        if is_text:
            item.kind, item.text = "turn", text
            item.lines = [("customer", text, None, "processing")]
        else:
            item.kind = "unsupported"
            item.lines = [("customer", text, {"kf_msgtype": str(msg.get("msgtype", ""))}, None)]
    elif origin == 5:                                      # WeCom's reception staff
        text, _ = _content(msg)
        servicer = str(msg.get("servicer_userid") or "")
        item.lines = [("agent", text, {"agent": "企业微信接待", "wecom_servicer": servicer}, None)]
        item.state, item.servicer = 3, servicer or None
    elif origin == 4 and msg.get("msgtype") == "event":    # WeCom's system events
        kind = str(event.get("event_type", ""))
        if kind == "enter_session" and event.get("welcome_code"):
            greeting = welcome()
            item.kind, item.text = "welcome", numbered_text(greeting)
            item.welcome_code = str(event["welcome_code"])
            item.lines = [("bot", greeting.text, {
                "buttons": [{"title": b.title, "payload": b.payload} for b in greeting.buttons],
                "kf_event": "enter_session", "scene": event.get("scene")}, None)]
        elif kind == "msg_send_fail":
            fail_type = event.get("fail_type")
            why = FAIL_TYPES.get(fail_type, f"原因码 {fail_type}")
            item.kind = "send_fail"
            item.lines = [("system", f"【未送达】一条回复未能送达微信客户：{why}。请人工跟进。",
                           {"kf_send_fail": {"fail_msgid": event.get("fail_msgid"),
                                             "fail_type": fail_type}}, None)]
        elif kind == "session_status_change":
            change = event.get("change_type")
            if change in STATE_AFTER_CHANGE:
                servicer = str(event.get("new_servicer_userid") or "") or None
                item.kind, item.state, item.servicer = "status", STATE_AFTER_CHANGE[change], servicer
                text = ("企业微信会话已结束" if change == 3 else
                        f"企业微信接待人员{'「' + servicer + '」' if servicer else ''}已接待该客户")
                item.lines = [("system", text, {"kf_session_change": change}, None)]
    return item


Handler = Callable[[Pulled], Awaitable[None]]


class KfPuller:
    def __init__(self, store: KfStore, api: KfApi, owner: str, handle: Handler) -> None:
        self.store, self.api, self.owner, self.handle = store, api, owner, handle
        self._locks: Dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._queued: set[str] = set()

    async def on_callback(self, open_kfid: Optional[str], token: Optional[str]) -> None:
        key = open_kfid or ALL_ACCOUNTS
        await asyncio.to_thread(self.store.request, key, token)
        await self.pull(key)

    async def pull(self, open_kfid: str) -> None:
        """Run a pass unless one is already waiting to start here (it covers this request)."""
        if open_kfid in self._queued:
            return
        self._queued.add(open_kfid)
        async with self._locks[open_kfid]:
            self._queued.discard(open_kfid)
            await self._passes(open_kfid)

    async def sweep(self) -> None:
        """Pull for accounts whose callbacks no pass served (a crashed or failed puller)."""
        for open_kfid in await asyncio.to_thread(self.store.unserved):
            await self.pull(open_kfid)

    async def _passes(self, open_kfid: str) -> None:
        while True:
            lease = await asyncio.to_thread(self.store.acquire, open_kfid, self.owner,
                                            LEASE_SECONDS)
            if lease is None:
                return           # another replica pulls; it sees this request before it stops
            try:
                complete = await self._pass(open_kfid, lease.cursor, lease.token)
            except Exception as exc:
                await asyncio.to_thread(self.store.release, open_kfid, self.owner)
                if isinstance(exc, KfApiError):
                    logger.warning("wecom-kf sync_msg failed (errcode %s); retried later",
                                   exc.errcode)
                    return
                raise
            if not complete:
                continue
            if await asyncio.to_thread(self.store.finish, open_kfid, self.owner,
                                       lease.requested):
                return

    async def _pass(self, open_kfid: str, cursor: Optional[str], token: Optional[str]) -> bool:
        """Pages until ``has_more`` is 0 (True), or MAX_PAGES / a lost lease (False)."""
        account = "" if open_kfid == ALL_ACCOUNTS else open_kfid
        for _ in range(MAX_PAGES):
            page = await self.api.sync_msg(account, cursor, token)
            pulled = [p for p in [await self._record(m, account)
                                  for m in page.get("msg_list") or [] if isinstance(m, dict)]
                      if p is not None]
            next_cursor = str(page.get("next_cursor") or cursor or "")
            if next_cursor and next_cursor != cursor:
                if not await asyncio.to_thread(self.store.advance, open_kfid, self.owner,
                                               next_cursor, LEASE_SECONDS):
                    logger.warning("wecom-kf pull lease lost mid-pass; the new holder goes on")
                    for item in pulled:
                        await self.handle(item)
                    return True
                cursor = next_cursor
            for item in pulled:            # recorded and behind the cursor: now answer them
                await self.handle(item)
            if not page.get("has_more"):
                return True
        return False

    async def _record(self, msg: Dict[str, Any], account: str) -> Optional[Pulled]:
        item = interpret(msg, account)
        if not item.msgid:
            return None
        ids = await asyncio.to_thread(
            self.store.record, f"{item.open_kfid}:{item.msgid}",
            conversation_of(item.external_userid) if item.external_userid else "",
            item.lines, open_kfid=item.open_kfid, external_userid=item.external_userid,
            customer_at=item.customer_at, state=item.state, servicer=item.servicer)
        if ids is None or item.kind is None:          # seen before, or nothing to do
            return None
        return Pulled(item.kind, item.open_kfid, item.external_userid, item.msgid, item.text,
                      ids[0] if ids else None, item.welcome_code, item.state)
