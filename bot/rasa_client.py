"""The gateway's one way into Rasa: its REST channel, over one reused HTTP session."""
from __future__ import annotations

from typing import Any, Dict, List

import aiohttp


class RasaUnavailable(RuntimeError):
    """Rasa did not answer (down, restarting or overloaded)."""


class RasaClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0,
                 action_url: str | None = None) -> None:
        self.base_url = base_url
        self.action_url = action_url
        self.token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

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

    async def send(self, sender: str, text: str) -> List[Dict[str, Any]]:
        """One customer turn; returns Rasa's bot messages (text, buttons, custom)."""
        try:
            async with self.session.post(f"{self.base_url}/webhooks/rest/webhook",
                                         json={"sender": sender, "message": text}) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"rasa answered {resp.status}")
                return await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc

    async def model_loaded(self) -> bool:
        """True once Rasa reports a loaded model (needs Rasa's HTTP API enabled)."""
        try:
            async with self.session.get(f"{self.base_url}/status", params=self._params(),
                                        timeout=aiohttp.ClientTimeout(total=3)) as resp:
                if resp.status != 200:
                    return False
                status = await resp.json()
                return bool(status.get("model_id") or status.get("model_file"))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    async def actions_ready(self) -> bool:
        if not self.action_url:
            return True
        try:
            async with self.session.get(f"{self.action_url}/health",
                                        timeout=aiohttp.ClientTimeout(total=3)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
