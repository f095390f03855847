"""微信客服 handoffs to WeCom's own reception staff (``KEFU_WECOM_KF_HANDOFF=wecom``).

Listens to the handoff lifecycle's ``handoff_new`` (subscribed by the composition root).
A handoff opened for a 微信客服 customer is passed to WeCom with ``kf/service_state/trans``
(state 2, the queue; with ``wecom:<userid>`` state 3 and that servicer) once the turn that
opened it has sent its replies (WeCom refuses ``send_msg`` after the transfer). kefu's
handoff row is claimed by the agent ``wecom-kf`` (no password: it cannot sign in), so it
leaves kefu's queue but stays in the reports; WeCom ending the session closes it. From
the transfer on the bot is silent (the handoff gate, and WeCom's state 2/3).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional, Set

from bot.store.agents import AgentError, AgentStore, AgentView
from bot.store.handoffs import HandoffError, HandoffStore
from bot.store.wecom_kf import CHANNEL
from bot.support import events
from connectors.wechat.kf_api import KfApiError

logger = logging.getLogger(__name__)

AGENT_NAME = "wecom-kf"
AGENT_DISPLAY = "企业微信接待"


class KfHandoff:
    def __init__(self, channel) -> None:
        self.channel = channel
        self.handoffs = HandoffStore()
        self.agents = AgentStore(self.handoffs.engine)
        self._in_turn: Set[str] = set()
        self._pending: Dict[str, Dict[str, Any]] = {}

    @property
    def enabled(self) -> bool:
        return self.channel.config.handoff == "wecom"

    def in_turn(self, conversation_id: str) -> "_Turn":
        """Around a bot turn and its replies: a handoff it opens is transferred afterwards."""
        return _Turn(self, conversation_id)

    async def on_handoff_new(self, event: Dict[str, Any]) -> None:
        handoff = event.get("handoff") or {}
        if not self.enabled or handoff.get("channel") != CHANNEL or event.get("agent"):
            return
        if handoff.get("conversation_id") in self._in_turn:
            self._pending[handoff["conversation_id"]] = handoff
            return
        await self.transfer(handoff)

    async def transfer(self, handoff: Dict[str, Any]) -> None:
        channel, conversation = self.channel, handoff["conversation_id"]
        user = handoff["user_id"]
        session = await asyncio.to_thread(channel.store.latest_session, user)
        if session is None:
            return
        servicer = channel.config.servicer
        target = 3 if servicer else 2
        try:
            state = await channel.current_state(session.open_kfid, user)
            if state not in (2, 3):
                await channel.api.trans(session.open_kfid, user, target, servicer)
                await asyncio.to_thread(channel.store.set_state, session.open_kfid, user,
                                        target, servicer)
        except KfApiError as exc:
            logger.warning("wecom-kf transfer to WeCom's reception staff failed (errcode %s)",
                           exc.errcode)
            await channel.router.record(
                conversation, CHANNEL, "system",
                f"未能转交企业微信接待人员（errcode {exc.errcode}），会话留在 kefu 的人工队列，请在控制台接待。",
                {"kf_transfer_failed": exc.errcode})
            return
        agent = await self._agent()
        try:
            view = await asyncio.to_thread(self.handoffs.claim, handoff["id"], agent.id)
        except HandoffError:           # a kefu agent took it in the meantime: theirs
            logger.info("wecom-kf handoff claimed in kefu before the transfer finished")
            return
        where = f"接待人员「{servicer}」" if servicer else "待接入池"
        await channel.router.record(
            conversation, CHANNEL, "system",
            f"已转交企业微信接待人员（{where}）；这次人工会话由「{AGENT_DISPLAY}」持有，企业微信结束会话时自动关闭。",
            {"kf_transferred": target})
        service = channel.app.get("handoff")
        if service is not None:
            await service.publish({"type": events.CLAIMED, "handoff_id": view.id,
                                   "handoff": view.as_json(), "agent": agent.as_json()})

    async def session_ended(self, conversation_id: str) -> None:
        """WeCom ended the session: close kefu's handoff if WeCom's staff held it."""
        view = await asyncio.to_thread(self.handoffs.active, conversation_id)
        if view is None or view.agent_id is None:
            return
        agent = await asyncio.to_thread(self.agents.by_name, AGENT_NAME)
        if agent is None or view.agent_id != agent.id:
            return
        try:
            closed = await asyncio.to_thread(self.handoffs.close, view.id)
        except HandoffError:
            return
        # WeCom asked no rating: a later "1"-"5" is an answer, not a score
        await asyncio.to_thread(self.handoffs.rated, conversation_id)
        service = self.channel.app.get("handoff")
        if service is not None:
            await service.publish({"type": events.CLOSED, "handoff_id": closed.id,
                                   "handoff": closed.as_json(), "agent": agent.as_json(),
                                   "via": "wecom"})

    async def _agent(self) -> AgentView:
        agent = await asyncio.to_thread(self.agents.by_name, AGENT_NAME)
        if agent is not None:
            return agent
        try:
            return await asyncio.to_thread(self.agents.create, AGENT_NAME, None,
                                           display_name=AGENT_DISPLAY)
        except AgentError:            # created by another replica just now
            found: Optional[AgentView] = await asyncio.to_thread(self.agents.by_name, AGENT_NAME)
            if found is None:
                raise
            return found


class _Turn:
    def __init__(self, owner: KfHandoff, conversation_id: str) -> None:
        self.owner, self.conversation_id = owner, conversation_id

    async def __aenter__(self) -> None:
        self.owner._in_turn.add(self.conversation_id)

    async def __aexit__(self, *exc) -> None:
        self.owner._in_turn.discard(self.conversation_id)
        pending = self.owner._pending.pop(self.conversation_id, None)
        if pending is not None:
            await self.owner.transfer(pending)
