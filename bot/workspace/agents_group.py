"""The agents' Telegram group (python-telegram-bot): the same queue as the console.

A new handoff posts a card with a Claim button in the group (``KEFU_TELEGRAM_AGENT_GROUP``).
Every later line of that conversation — the customer's messages, console replies, claim
and close — is posted as a reply to the card, so the group reads as one thread per
conversation. The agent who claimed it replies to any message of the thread and the text
reaches the customer on the customer's own channel; ``/close`` (as a reply) ends it.

Everything posted to the group goes through the SQL outbox, in order: while Telegram (or
the network) is down the lines wait and are delivered when it returns, also across a
gateway restart; a message Telegram refuses for good is dead-lettered for the console
instead of holding up the rest. Updates are read by long polling (``getUpdates``), so no
public URL is needed for the agents' side; with several gateway replicas one of them polls,
the holder of a lease in SQL (:class:`bot.store.leases.NamedLease`), which keeps the offset.

Only agents act: a Claim, a reply or ``/close`` counts only from a Telegram user linked to
an active agent account (``telegram_user_id``, set by an admin), and a Claim button only
from a message in the agents' group itself.

Environment: ``KEFU_TELEGRAM_AGENT_TOKEN`` (the agents' bot, not the customers' one),
``KEFU_TELEGRAM_AGENT_GROUP`` (chat id), ``KEFU_TELEGRAM_AGENT_API_BASE`` (default
``https://api.telegram.org``), ``KEFU_TELEGRAM_AGENT_POLL_TIMEOUT`` (seconds, default 25).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.profile import privacy
from bot.store.handoffs import HandoffError
from bot.store.leases import NamedLease
from bot.support import events
from bot.support.events import EventBus
from bot.support.handoffs import HandoffService
from bot.support.outbox import Rejected, Unreachable
from bot.settings import setting

logger = logging.getLogger(__name__)

MAX_TEXT = 3500
POLL_LEASE = "telegram-agents-poll"
NOT_AN_AGENT = "您的 Telegram 账号未关联在职客服账号，请联系管理员关联后再操作。"


class AgentsGroup:
    def __init__(self, service: HandoffService, *, token: str, group: str, api_base: str,
                 poll_timeout: int = 25) -> None:
        self.service = service
        self.store = service.store
        self.group = str(group)
        self.poll_timeout = poll_timeout
        base = api_base.rstrip("/")
        self.bot = Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")
        self._initialized = False
        self._offset: int | None = None
        # one getUpdates poller across every gateway replica (bot/store/leases.py)
        self.lease = NamedLease(POLL_LEASE, ttl=poll_timeout + 30, engine=self.store.engine)
        self.standby_seconds = min(5.0, poll_timeout + 1.0)

    def attach(self, bus: EventBus) -> None:
        """Follow every handoff event and SLA breach; deliver the outbox target ``telegram``."""
        bus.subscribe_many(events.HANDOFF_EVENTS + (events.SLA_CLOCK_MISSED,), self.hook)
        self.service.deliverers["telegram"] = self.deliver

    # --- what the group is told (through the outbox) ---------------------------------

    async def hook(self, event: Dict[str, Any]) -> None:
        kind, handoff_id = event["type"], event.get("handoff_id")
        h = event.get("handoff") or {}
        who = (event.get("agent") or {}).get("display_name", "")
        if kind == events.HANDOFF_NEW:
            text = (f"🔔 转人工 #{h['id']}（{h['channel']}，优先级 {h['priority']}）\n"
                    f"工单 {h['ticket_number'] or '-'} · 原因 {h['reason']}\n"
                    f"在此消息下回复即可与客户对话，/close 结束。")
            await self.service.enqueue("telegram", {"op": "card", "text": text,
                                                    "claimed_by": who or None}, handoff_id)
            return
        # everyone in the group reads the thread, not only the assignee: phones, addresses
        # and order numbers are masked in what the customer and the agent wrote
        if kind == events.CUSTOMER_MESSAGE:
            text = f"👤 客户：{privacy.mask_customer_text(event['text'])}"
        elif kind == events.AGENT_REPLY and event.get("via") != "telegram":
            text = f"💬 {who}（工作台）：{privacy.mask_customer_text(event['text'])}"
        elif kind == events.CLAIMED:
            text = f"✅ {who} 已认领"
        elif kind == events.TRANSFERRED:
            text = f"↪️ 已转接给 {h.get('agent_name')}"
        elif kind == events.CLOSED:
            text = f"🏁 会话已结束（{who}）"
        elif kind == events.SLA_CLOCK_MISSED:        # an SLA breach, once (bot/support/sla_clocks.py)
            clock = {"first_response": "首次响应", "resolution": "解决"}.get(event["clock"], event["clock"])
            text = f"⏰ 工单 {event['ticket']}（{event['kind']}，{event['priority']}）{clock}时限已过"
            if event.get("escalated"):
                text += "，已升级，请组长处理"
            await self.service.enqueue("telegram", {"op": "group", "text": text}, handoff_id)
            return
        else:
            return
        op = "claimed" if kind == events.CLAIMED else "thread"
        await self.service.enqueue("telegram", {"op": op, "text": text[:MAX_TEXT]}, handoff_id)

    async def _ensure_initialized(self) -> None:
        if not self._initialized:
            await self.bot.initialize()
            self._initialized = True

    async def deliver(self, row: Dict[str, Any]) -> bool:
        """One outbox row to the group; False (retry later) while Telegram is unreachable."""
        payload, handoff_id = row["payload"], row["handoff_id"]
        try:
            await self._ensure_initialized()
            op = payload["op"]
            if op == "group":
                await self.bot.send_message(self.group, payload["text"])
                return True
            handoff = await asyncio.to_thread(self.store.get, handoff_id) if handoff_id else None
            if handoff is None:
                return True
            if op == "card":
                markup = None if payload.get("claimed_by") or handoff.status != "queued" else \
                    InlineKeyboardMarkup([[InlineKeyboardButton("认领 Claim",
                                                                callback_data=f"claim:{handoff.id}")]])
                sent = await self.bot.send_message(self.group, payload["text"], reply_markup=markup)
                await asyncio.to_thread(self.store.set_telegram_card, handoff.id, str(sent.message_id))
                await asyncio.to_thread(self.store.link, self.group, str(sent.message_id), handoff.id)
                return True
            card = handoff.telegram_card_id
            if op == "claimed" and card:
                try:
                    await self.bot.edit_message_reply_markup(self.group, int(card), reply_markup=None)
                except BadRequest:
                    pass                          # already edited, or the card was deleted
            sent = await self.bot.send_message(self.group, payload["text"],
                                               reply_to_message_id=int(card) if card else None,
                                               allow_sending_without_reply=True)
            await asyncio.to_thread(self.store.link, self.group, str(sent.message_id), handoff.id)
            return True
        except (BadRequest, Forbidden) as exc:      # this message will never go: dead letter
            raise Rejected(f"Telegram refused: {exc}") from exc
        except TelegramError as exc:                # network, timeout, flood control: later
            raise Unreachable(type(exc).__name__) from exc

    # --- what agents do in the group -----------------------------------------------------

    async def poll_loop(self) -> None:
        """Long-poll ``getUpdates`` while this replica holds the poller's lease.

        One poller across all replicas (Telegram allows one ``getUpdates`` at a time per
        bot): the lease is a SQL row renewed before every poll; the others stand by and
        take over when it expires. The offset is kept with the lease, so a new holder goes
        on after the last update handled (at least once, never from the start).
        """
        holding = False
        while True:
            try:
                if not await asyncio.to_thread(self.lease.acquire):
                    holding = False
                    await asyncio.sleep(self.standby_seconds)
                    continue
                if not holding:                  # (re)gained: go on where the last holder was
                    stored = await asyncio.to_thread(self.lease.cursor)
                    self._offset = int(stored) if stored else None
                    holding = True
                await self._ensure_initialized()
                updates = await self.bot.get_updates(
                    offset=self._offset, timeout=self.poll_timeout,
                    allowed_updates=["message", "callback_query"],
                    read_timeout=self.poll_timeout + 10)
                for update in updates:
                    try:
                        await self.handle(update)
                    except Exception:
                        logger.exception("handling a Telegram agents' update failed")
                    self._offset = update.update_id + 1
                    if not await asyncio.to_thread(self.lease.save_cursor, self._offset):
                        holding = False          # lost the lease meanwhile: the holder goes on
                        break
            except asyncio.CancelledError:
                raise
            except TelegramError as exc:
                logger.info("Telegram agents' polling failed, retrying: %s", type(exc).__name__)
                await asyncio.sleep(1.0)
            except Exception:
                logger.exception("Telegram agents' polling crashed, retrying")
                await asyncio.sleep(1.0)

    async def handle(self, update: Update) -> None:
        if update.callback_query is not None:
            await self._on_button(update)
        elif update.message is not None and update.message.text:
            await self._on_message(update)

    async def _on_button(self, update: Update) -> None:
        query = update.callback_query
        data = query.data or ""
        if not data.startswith("claim:") or not data[6:].isdigit():
            await query.answer()
            return
        if query.message is None or str(query.message.chat.id) != self.group:
            # a button forwarded to, or forged in, another chat claims nothing
            await self.bot.answer_callback_query(query.id, text="无法认领：不是客服组的消息",
                                                 show_alert=True)
            return
        agent = await asyncio.to_thread(self.service.agents.for_telegram_user, str(query.from_user.id))
        if agent is None:
            await self.bot.answer_callback_query(query.id, text=NOT_AN_AGENT, show_alert=True)
            return
        try:
            handoff = await self.service.claim(int(data[6:]), agent)
            await self.bot.answer_callback_query(query.id, text=f"已认领 #{handoff.id}")
        except HandoffError as exc:
            await self.bot.answer_callback_query(query.id, text=f"无法认领：{exc}", show_alert=True)

    async def _on_message(self, update: Update) -> None:
        message = update.message
        if str(message.chat.id) != self.group or message.reply_to_message is None:
            return
        handoff = await asyncio.to_thread(self.store.handoff_for_message, self.group,
                                          str(message.reply_to_message.message_id))
        if handoff is None or message.from_user is None:
            return
        agent = await asyncio.to_thread(self.service.agents.for_telegram_user,
                                        str(message.from_user.id))
        if agent is None:           # only agents speak to customers, whoever is in the group
            await self.bot.send_message(self.group, f"⚠️ {NOT_AN_AGENT}",
                                        reply_to_message_id=message.message_id,
                                        allow_sending_without_reply=True)
            return
        text = message.text.strip()
        try:
            if text.split("@", 1)[0] == "/close":
                await self.service.close(handoff.id, agent, via="telegram")
            else:
                await self.service.reply(handoff.id, agent, text, via="telegram")
                await asyncio.to_thread(self.store.link, self.group, str(message.message_id),
                                        handoff.id)
        except HandoffError as exc:
            await self.bot.send_message(self.group, f"⚠️ {exc}",
                                        reply_to_message_id=message.message_id,
                                        allow_sending_without_reply=True)

    async def shutdown(self) -> None:
        try:                          # another replica may poll at once, not after the lease expires
            await asyncio.to_thread(self.lease.release)
        except Exception:
            pass
        if self._initialized:
            try:
                await self.bot.shutdown()
            except Exception:
                pass


def from_settings(service: HandoffService) -> Optional[AgentsGroup]:
    """The agents' group when its bot token and chat id are configured, else None."""
    token = setting("KEFU_TELEGRAM_AGENT_TOKEN")
    group = setting("KEFU_TELEGRAM_AGENT_GROUP")
    if not token or not group:
        return None
    return AgentsGroup(
        service, token=token, group=group,
        api_base=setting("KEFU_TELEGRAM_AGENT_API_BASE"),
        poll_timeout=setting("KEFU_TELEGRAM_AGENT_POLL_TIMEOUT"))
