"""微信客服 (WeCom customer service, "kf"): customers from inside and outside WeChat.

``GET /webhooks/wecom-kf`` answers WeCom's URL check (``msg_signature`` over token,
timestamp, nonce and the encrypted ``echostr``; the answer is its decrypted plaintext).
``POST /webhooks/wecom-kf`` takes encrypted callbacks (the crypto is the official
account's, with the CorpID as receive id) and answers ``success`` at once: the messages are
read in the background (:mod:`connectors.wechat.kf_pull`) and answered by ``kf/send_msg``.

Conversations: one per customer, ``wecom_kf:<external_userid>`` (the same customer on
several of the company's 微信客服 accounts is one conversation; replies go to the account
they wrote to last). Replies respect WeCom's rules: only while the session is 0 (new) or 1
(assistant), only within 48 h of the customer's last message, at most 5 per customer
message, text cut to 2,048 bytes; a reply that cannot go out stays in the transcript with
a system line saying why, for the agents. Buttons become numbered options.

Handoffs: ``KEFU_WECOM_KF_HANDOFF=kefu`` (default) keeps them in kefu's console and
Telegram group, the session staying with the assistant (state 1) in WeCom. ``wecom`` hands
the session to WeCom's reception staff (``kf/service_state/trans`` to the queue, state 2;
``wecom:<userid>`` to that person, state 3); kefu's handoff row is held by the agent
``wecom-kf`` until WeCom ends the session, so reports count it and the bot stays silent.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Dict, List, Optional

from aiohttp import web

from bot.messages import InboundMessage, OutboundMessage
from bot.settings import setting
from bot.store.deliveries import joined_text, resolve_choice
from bot.store.wecom_kf import CHANNEL, KfStore
from connectors.wechat.crypto import WeChatCrypto, WeChatError, signature_ok
from connectors.wechat.kf_api import SESSION_STATE_INVALID, KfApi, KfApiError
from connectors.wechat.kf_handoff import KfHandoff
from connectors.wechat.kf_pull import KfPuller, Pulled, conversation_of
from connectors.wechat.wire import parse_xml, read_body, split_text

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_TEXT_BYTES = 2000               # WeCom's text limit is 2048 bytes
SEND_LEASE = 20.0                   # seconds a replica may take to send one reply
STATE_KEPT = dt.timedelta(hours=48)   # a tracked state older than a WeCom session is asked again
MAX_ATTEMPTS = 30                   # sends of one reply while WeCom cannot be reached
SWEEP_EVERY = 10.0                  # seconds between looks for work a crashed replica left
STATE_NAMES = {0: "未处理", 1: "智能助手接待中", 2: "待接入池排队中", 3: "人工接待中", 4: "已结束"}
UNSUPPORTED_TEXT = ("暂时只能看懂文字消息哦～我可以帮您查询退换货、运费、保修等政策，登记投诉、"
                    "报修和退换货，查询工单进度，或者为您转人工。请用文字告诉我您需要什么～")
REQUIRED = ("KEFU_WECOM_KF_CORPID", "KEFU_WECOM_KF_SECRET", "KEFU_WECOM_KF_TOKEN",
            "KEFU_WECOM_KF_AES_KEY")


@dataclass(frozen=True)
class KfConfig:
    corpid: str
    secret: str
    token: str
    aes_key: str
    api_base: str = "https://qyapi.weixin.qq.com"
    handoff: str = "kefu"                  # kefu | wecom
    servicer: Optional[str] = None         # wecom:<userid>: straight to this receptionist

    @classmethod
    def from_env(cls) -> Optional["KfConfig"]:
        values = [setting(name) for name in REQUIRED]
        if not all(values):
            return None
        mode, _, servicer = str(setting("KEFU_WECOM_KF_HANDOFF")).strip().partition(":")
        if mode.lower() not in ("kefu", "wecom"):
            raise ValueError("KEFU_WECOM_KF_HANDOFF must be kefu, wecom or wecom:<userid>")
        return cls(*values, api_base=setting("KEFU_WECOM_KF_API_BASE"), handoff=mode.lower(),
                   servicer=servicer.strip() or None)


class KfChannel:
    def __init__(self, app: web.Application, config: KfConfig) -> None:
        self.app, self.config = app, config
        self.crypto = WeChatCrypto(config.token, config.aes_key, config.corpid)
        self.store = KfStore()
        self.api = KfApi(config.api_base, config.corpid, config.secret)
        self.owner = f"{os.uname().nodename[:24]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.puller = KfPuller(self.store, self.api, self.owner, self.on_pulled)
        self.handoff = KfHandoff(self)
        self._background: set[asyncio.Task] = set()
        self._chains: Dict[str, asyncio.Future] = {}
        self._send_locks: Dict[str, asyncio.Lock] = {}

    @property
    def router(self):
        return self.app["router"]

    # --- inbound: WeCom's callbacks ----------------------------------------------------------

    def _checked(self, query, encrypted: str) -> str:
        parts = (self.config.token, query.get("timestamp", ""), query.get("nonce", ""), encrypted)
        if not signature_ok(parts, query.get("msg_signature")):
            raise WeChatError(403, "bad msg_signature")
        return self.crypto.decrypt(encrypted)       # 403 when the receive id is not our CorpID

    async def verify_url(self, request: web.Request) -> web.Response:
        # a '+' of the base64 echostr may arrive as a space when WeCom did not escape it
        echostr = request.query.get("echostr", "").replace(" ", "+")
        try:
            if not echostr:
                raise WeChatError(400, "echostr missing")
            plain = self._checked(request.query, echostr)
        except WeChatError as exc:
            logger.warning("wecom-kf URL check refused (%d): %s", exc.status, exc)
            return web.Response(status=exc.status, text=str(exc))
        return web.Response(text=plain)

    async def receive(self, request: web.Request) -> web.Response:
        try:
            outer = parse_xml(await read_body(request, MAX_BODY))
            encrypted = outer.get("Encrypt", "")
            if not encrypted:
                raise WeChatError(400, "no Encrypt element")
            fields = parse_xml(self._checked(request.query, encrypted))
        except WeChatError as exc:
            logger.warning("wecom-kf callback refused (%d): %s", exc.status, exc)
            return web.Response(status=exc.status, text=str(exc))
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="body too large")
        if fields.get("MsgType", "").lower() == "event" \
                and fields.get("Event", "") == "kf_msg_or_event":
            # answered now; the pull (and the bot) run after WeCom has its 200
            self._spawn(self.puller.on_callback(fields.get("OpenKfId") or None,
                                                fields.get("Token") or None))
        return web.Response(text="success")

    # --- what the pull found, in order per customer ----------------------------------------

    async def on_pulled(self, item: Pulled) -> None:
        conversation = item.conversation_id
        previous = self._chains.get(conversation)

        async def after_previous() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            await self._answer(item)

        task = self._spawn(after_previous())
        self._chains[conversation] = task
        task.add_done_callback(lambda t: self._chains.pop(conversation, None)
                               if self._chains.get(conversation) is t else None)

    async def _answer(self, item: Pulled) -> None:
        if item.kind == "unsupported":
            if await self._with_people(item):
                return                 # a person reads the line ([图片] …) in the transcript
            await self.router.record(item.conversation_id, CHANNEL, "system", UNSUPPORTED_TEXT)
            await self.deliver(item.open_kfid, item.external_userid,
                               [OutboundMessage(UNSUPPORTED_TEXT, author="system")])
        elif item.kind == "send_fail":
            logger.warning("wecom-kf: WeCom reports a reply not delivered (kept in the transcript)")
        elif item.kind == "status":
            if item.state == 4:
                await self.handoff.session_ended(item.conversation_id)
        elif item.kind == "welcome":
            await self.deliver(item.open_kfid, item.external_userid,
                               [OutboundMessage(item.text)], welcome_code=item.welcome_code)
        elif item.kind == "turn" and item.line is not None:
            await self._turn(item)

    async def _with_people(self, item: Pulled) -> bool:
        """Is a person answering this customer (kefu's handoff, or WeCom's staff)?"""
        if await asyncio.to_thread(self.handoff.handoffs.active, item.conversation_id):
            return True
        return await self.current_state(item.open_kfid, item.external_userid) in (2, 3)

    async def _turn(self, item: Pulled) -> None:
        transcripts = self.router.transcripts
        # still ours? (a line left too long is replayed by the router's Replayer instead)
        if not await asyncio.to_thread(transcripts.set_state, item.line, "processing",
                                       expect="processing"):
            return
        if await self.current_state(item.open_kfid, item.external_userid) in (2, 3):
            # WeCom's reception staff have the session: the bot stays silent
            await asyncio.to_thread(transcripts.set_state, item.line, "done")
            return
        # a typed option number is that button's payload (the buttons offered before the line)
        text = await asyncio.to_thread(resolve_choice, item.conversation_id, item.text, None,
                                       item.line)
        message = InboundMessage(channel=CHANNEL, user_id=item.external_userid, text=text,
                                 delivery_id=item.msgid, metadata={"open_kfid": item.open_kfid})
        async with self.handoff.in_turn(item.conversation_id):
            replies = await self.router.handle(message, line=item.line)
            await self.deliver(item.open_kfid, item.external_userid, replies)

    # --- outbound: kf/send_msg under WeCom's rules -------------------------------------------

    async def push(self, user_id: str, messages: List[OutboundMessage]) -> None:
        """The gateway's sender: late answers, agents' replies, notices."""
        session = await asyncio.to_thread(self.store.latest_session, user_id)
        if session is None:
            await self.undelivered(conversation_of(user_id), [joined_text(messages)],
                                   "该客户还没有通过微信客服发过消息")
            return
        await self.deliver(session.open_kfid, user_id, messages)

    async def deliver(self, open_kfid: str, external_userid: str,
                      messages: List[OutboundMessage], *, welcome_code: str | None = None) -> None:
        pieces = split_text(joined_text(messages), MAX_TEXT_BYTES)
        if not pieces:
            return
        conversation = conversation_of(external_userid)
        if welcome_code:        # one message on the event's code; the rest cannot go out
            ids = await asyncio.to_thread(self.store.enqueue, open_kfid, external_userid,
                                          conversation, pieces[:1], kind="welcome",
                                          code=welcome_code)
            if pieces[1:]:
                await self.undelivered(conversation, pieces[1:], "欢迎语只能发送一条")
        else:
            ids = await asyncio.to_thread(self.store.enqueue, open_kfid, external_userid,
                                          conversation, pieces)
        await self.send_queued(conversation, ids)

    async def send_queued(self, conversation: str, ids: List[int]) -> None:
        """Send stored replies in order; from the first that cannot go out, keep and say so."""
        lock = self._send_locks.setdefault(conversation, asyncio.Lock())
        async with lock:
            for position, row_id in enumerate(ids):
                row = await asyncio.to_thread(self.store.claim, row_id, SEND_LEASE)
                if row is None:
                    continue                       # sent (or being sent) by someone else
                why = await self._send(row)
                if why is not None:
                    rest = [row.content]
                    for later in ids[position + 1:]:
                        other = await asyncio.to_thread(self.store.claim, later, SEND_LEASE)
                        if other is not None:
                            rest.append(other.content)
                            await asyncio.to_thread(self.store.sent, later)
                    await asyncio.to_thread(self.store.sent, row.id)
                    await self.undelivered(conversation, rest, why)
                    return
                await asyncio.to_thread(self.store.sent, row.id)

    async def _send(self, row) -> Optional[str]:
        """Send one stored reply; None when WeCom took it, else why it cannot go out.

        The row's lease is renewed while the send lasts: a slow WeCom call must not let the
        sweep take the row and send the reply a second time.
        """
        keeper = asyncio.ensure_future(self._keep_lease(row))
        try:
            return await self._send_now(row)
        finally:
            keeper.cancel()

    async def _keep_lease(self, row) -> None:
        while True:
            await asyncio.sleep(SEND_LEASE / 3)
            try:
                if not await asyncio.to_thread(self.store.renew, row.id, row.attempts, SEND_LEASE):
                    return
            except Exception:          # the database is away: the lease may lapse, never crash
                logger.warning("wecom-kf lease of an outbox row not renewed", exc_info=True)

    async def _send_now(self, row) -> Optional[str]:
        try:
            if row.kind == "welcome":
                await self.api.send_on_event(row.code or "", row.content, row.msgid)
                return None
            state = await self.current_state(row.open_kfid, row.external_userid)
            if state not in (None, 0, 1):
                return f"会话{STATE_NAMES.get(state, state)}，微信客服只在未处理或智能助手接待时允许回复"
            why = await asyncio.to_thread(self.store.reserve, row.id)
            if why == "48h":
                return "距客户上一条消息已超过48小时"
            if why == "5":
                return "已达到每条客户消息最多5条回复的限制"
            if state == 0:          # the session stays with the assistant in WeCom's model
                await self._to_assistant(row.open_kfid, row.external_userid)
            await self.api.send_text(row.open_kfid, row.external_userid, row.content, row.msgid)
            return None
        except KfApiError as exc:
            if exc.errcode == -1 and row.attempts < MAX_ATTEMPTS:
                raise                  # WeCom unreachable: the row stays, the sweep retries it
            if exc.errcode == SESSION_STATE_INVALID:
                await asyncio.to_thread(self.store.set_state, row.open_kfid,
                                        row.external_userid, None)      # ask WeCom next time
            logger.warning("wecom-kf %s refused (errcode %s)", exc.path, exc.errcode)
            return f"企业微信拒绝发送（errcode {exc.errcode}）"

    async def _to_assistant(self, open_kfid: str, external_userid: str) -> None:
        try:
            await self.api.trans(open_kfid, external_userid, 1)
            await asyncio.to_thread(self.store.set_state, open_kfid, external_userid, 1)
        except KfApiError as exc:      # sending is allowed in state 0 as well
            logger.info("wecom-kf session not moved to the assistant (errcode %s)", exc.errcode)

    async def current_state(self, open_kfid: str, external_userid: str) -> Optional[int]:
        """WeCom's session state: as tracked from events and calls, else asked (None: unknown)."""
        session = await asyncio.to_thread(self.store.session, open_kfid, external_userid)
        if session is not None and session.service_state is not None and session.state_at \
                and dt.datetime.now(dt.timezone.utc) - session.state_at < STATE_KEPT:
            return session.service_state
        try:
            state, servicer = await self.api.service_state(open_kfid, external_userid)
        except KfApiError as exc:
            logger.warning("wecom-kf service_state/get failed (errcode %s)", exc.errcode)
            return None
        await asyncio.to_thread(self.store.set_state, open_kfid, external_userid, state,
                                servicer or None)
        return state

    async def undelivered(self, conversation: str, pieces: List[str], why: str) -> None:
        """Kept in the transcript and told to the agents: never dropped silently."""
        logger.warning("wecom-kf reply not sent (%s); kept in the transcript", why)
        await self.router.record(conversation, CHANNEL, "system",
                                 f"【未送达】以下回复未能通过微信客服发给客户：{why}。已保存在记录中，请人工跟进。",
                                 {"kf_undelivered": {"reason": why, "text": "\n".join(pieces)}})

    # --- background ----------------------------------------------------------------------

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(t: asyncio.Task) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("wecom-kf background task failed: %s", type(t.exception()).__name__,
                             exc_info=t.exception())
        task.add_done_callback(done)
        return task

    async def sweep(self) -> None:
        """What a crashed replica left: unserved callbacks, replies stored but never sent."""
        await self.puller.sweep()
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=SEND_LEASE)
        for row_id in await asyncio.to_thread(self.store.due, cutoff):
            row = await asyncio.to_thread(self.store.claim, row_id, SEND_LEASE)
            if row is None:
                continue
            why = await self._send(row)
            await asyncio.to_thread(self.store.sent, row.id)
            if why is not None:
                await self.undelivered(row.conversation_id, [row.content], why)

    async def start(self, app: web.Application) -> None:
        supervisor = app.get("supervisor")
        if supervisor is not None:
            supervisor.every("wecom-kf-sweep", SWEEP_EVERY, self.sweep)
        else:
            async def loop() -> None:
                while True:
                    try:
                        await self.sweep()
                    except Exception:
                        logger.exception("wecom-kf sweep failed")
                    await asyncio.sleep(SWEEP_EVERY)
            app["wecom_kf_sweep"] = asyncio.ensure_future(loop())

    async def close(self, app: web.Application) -> None:
        task = app.get("wecom_kf_sweep")
        if task is not None:
            task.cancel()
        if self._background:            # a little time to finish, then they are cut off
            _, pending = await asyncio.wait(list(self._background), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.api.close()


async def connector_off(request: web.Request) -> web.Response:
    return web.Response(status=404, text="wecom-kf connector is off")


def setup(app: web.Application) -> None:
    channel = None
    try:
        config = KfConfig.from_env()
        if config is None:
            logger.info("wecom-kf connector off (%s unset)", ", ".join(REQUIRED))
        else:
            channel = KfChannel(app, config)
    except ValueError as exc:       # a 43-character key, a known handoff mode
        logger.error("wecom-kf connector off: %s", exc)
    if channel is None:   # the routes exist (one documented surface) but refuse everything
        app.router.add_get("/webhooks/wecom-kf", connector_off)
        app.router.add_post("/webhooks/wecom-kf", connector_off)
        return
    app["wecom_kf"] = channel
    app.router.add_get("/webhooks/wecom-kf", channel.verify_url)
    app.router.add_post("/webhooks/wecom-kf", channel.receive)
    app["senders"][CHANNEL] = channel.push
    app.on_startup.append(channel.start)
    app.on_cleanup.append(channel.close)
    logger.info("wecom-kf connector on (handoffs to %s)", channel.config.handoff)
