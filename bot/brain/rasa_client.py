"""The gateway's one way into Rasa: its REST channel, over one reused HTTP session.

Several Rasa replicas (``KEFU_RASA_URL`` as a comma-separated list, the scaled-out
topology): each conversation goes to one replica chosen by rendezvous (consistent)
hashing of its sender id, so its turns are processed by one process in order; when that
replica refuses connections the next one in the conversation's ranking takes over.
"""
from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Dict, List

import aiohttp


class RasaUnavailable(RuntimeError):
    """Rasa did not answer (down, restarting or overloaded)."""


# What aiohttp raises when a call fails: a ClientError, or on a timeout asyncio.TimeoutError,
# which before Python 3.11 is *not* the built-in TimeoutError (and not a ClientError).
# A response body that is not JSON is a ValueError. Every call below catches all of them.
FAILED = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ValueError)


class RasaClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0,
                 action_url: str | None = None) -> None:
        self.replicas = [u.strip().rstrip("/") for u in base_url.split(",") if u.strip()]
        self.base_url = self.replicas[0]
        self.action_url = action_url
        self.token = token
        self.timeout = timeout          # seconds one turn may take before it counts as failed
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        # cleared while a new model is loaded into Rasa (bot/training/admin_api.py): turns wait for the
        # swap instead of timing out against a Rasa busy loading (zero failed messages)
        self._swap_done: asyncio.Event | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _params(self) -> Dict[str, str]:
        return {"token": self.token} if self.token else {}

    def ranked(self, sender: str) -> List[str]:
        """Replicas in this conversation's order of preference (rendezvous hashing)."""
        if len(self.replicas) == 1:
            return self.replicas
        return sorted(self.replicas, key=lambda url: hashlib.blake2b(
            f"{url}|{sender}".encode(), digest_size=8).digest(), reverse=True)

    async def send(self, sender: str, text: str) -> List[Dict[str, Any]]:
        """One customer turn; returns Rasa's bot messages (text, buttons, custom)."""
        if self._swap_done is not None:
            await self._swap_done.wait()
        replicas = self.ranked(sender)
        for position, base in enumerate(replicas):
            try:
                async with self.session.post(f"{base}/webhooks/rest/webhook",
                                             json={"sender": sender, "message": text}) as resp:
                    if resp.status != 200:
                        raise RasaUnavailable(f"rasa answered {resp.status}")
                    return await resp.json()
            except aiohttp.ClientConnectorError as exc:
                # Refused: this replica never saw the message, the next one may take it.
                if position + 1 < len(replicas):
                    continue
                raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
            except FAILED as exc:
                raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
        raise RasaUnavailable("no rasa replica")

    async def load_model(self, model_file: str, timeout: float = 600) -> None:
        """Load a model into every replica (Rasa's ``PUT /model``), holding new turns meanwhile.

        Rasa loads a model inside its event loop, so requests sent during a load would wait
        there against this client's timeout; held here instead, they go out when it is done.
        """
        done = asyncio.Event()
        self._swap_done = done
        try:
            for base in self.replicas:
                async with self.session.put(f"{base}/model", params=self._params(),
                                            json={"model_file": model_file},
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    if resp.status not in (200, 204):
                        raise RasaUnavailable(f"rasa answered {resp.status}: {(await resp.text())[:300]}")
        except FAILED as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
        finally:
            done.set()
            if self._swap_done is done:
                self._swap_done = None

    async def model_loaded(self) -> bool:
        """True once a Rasa replica reports a loaded model (needs Rasa's HTTP API)."""
        for base in self.replicas:
            if await self._model_loaded(base):
                return True
        return False

    async def _model_loaded(self, base: str) -> bool:
        try:
            async with self.session.get(f"{base}/status", params=self._params(),
                                        timeout=aiohttp.ClientTimeout(total=3)) as resp:
                if resp.status != 200:
                    return False
                status = await resp.json()
                return bool(status.get("model_id") or status.get("model_file"))
        except FAILED:
            return False

    async def actions_ready(self) -> bool:
        if not self.action_url:
            return True
        try:
            async with self.session.get(f"{self.action_url}/health",
                                        timeout=aiohttp.ClientTimeout(total=3)) as resp:
                return resp.status == 200
        except FAILED:
            return False

    async def live_model(self, timeout: float = 10) -> str | None:
        """The model file the first replica reports loaded (Rasa's ``GET /status``; None if none).

        Raises RasaUnavailable when Rasa does not answer or answers with an error.
        """
        try:
            async with self.session.get(f"{self.base_url}/status", params=self._params(),
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"rasa answered {resp.status}")
                return (await resp.json()).get("model_file")
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ValueError) as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc

    async def tracker_events(self, sender: str, timeout: float = 10) -> List[Dict[str, Any]]:
        """All events of one conversation's tracker, from the replica that serves it.

        Raises RasaUnavailable when Rasa does not answer or answers with an error.
        """
        base = self.ranked(sender)[0]
        try:
            async with self.session.get(f"{base}/conversations/{sender}/tracker",
                                        params={**self._params(), "include_events": "ALL"},
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"rasa answered {resp.status}")
                return (await resp.json()).get("events", [])
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ValueError) as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc

    async def reset_dialogue(self, sender: str, timeout: float = 10) -> None:
        """End any active form and forget its slots (Rasa's tracker events API): a person has
        taken the conversation over, so nothing the customer writes later answers the form.

        Raises RasaUnavailable when Rasa does not answer or answers with an error.
        """
        base = self.ranked(sender)[0]
        body = [{"event": "active_loop", "name": None}, {"event": "reset_slots"}]
        try:
            async with self.session.post(f"{base}/conversations/{sender}/tracker/events",
                                         params={**self._params(), "include_events": "NONE"},
                                         json=body, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"rasa answered {resp.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ValueError) as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
