"""Helpers for the handoff tests: an agent's HTTP session and waiting on the transcript."""
from __future__ import annotations

import http.cookiejar
import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

from bot.store.agents import AgentStore


def make_agent(prefix: str, role: str = "agent") -> Tuple[str, str]:
    """A fresh account in the test database; returns (name, password)."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    AgentStore().create(name, password, role=role, display_name=name)
    return name, password


class AgentClient:
    """An agent's browser-less session with the console API (cookie jar, JSON)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.me: Dict[str, Any] = {}

    def call(self, method: str, path: str, body: Any = None) -> Tuple[int, Dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with self.opener.open(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw or b"{}")
            except ValueError:
                return err.code, {"raw": raw.decode(errors="replace")}

    def login(self, name: str, password: str) -> "AgentClient":
        status, body = self.call("POST", "/api/agent/login", {"name": name, "password": password})
        assert status == 200, body
        self.me = body["agent"]
        return self

    def handoff_for(self, conversation_id: str, wait: float = 60) -> Dict[str, Any]:
        def find():
            _, body = self.call("GET", "/api/agent/handoffs")
            return next((h for h in body.get("handoffs", [])
                         if h["conversation_id"] == conversation_id and h["status"] != "closed"),
                        None)
        return wait_until(find, wait, f"no open handoff for {conversation_id}")


def wait_until(probe: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``probe`` until it returns something truthy (no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def customer_updates(base_url: str, sender: str, after: int = 0) -> List[Dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/api/chat/updates?sender={sender}&after={after}",
                                timeout=30) as resp:
        return json.load(resp)["messages"]


def wait_for_update(base_url: str, sender: str, predicate: Callable[[Dict[str, Any]], bool],
                    timeout: float = 60) -> Dict[str, Any]:
    def probe() -> Optional[Dict[str, Any]]:
        return next((m for m in customer_updates(base_url, sender) if predicate(m)), None)
    return wait_until(probe, timeout, f"an update for {sender}")


def sign_in(page, url: str, name: str, password: str, header: str) -> None:
    """Sign in on a console page (Playwright) and wait for its header to show ``header``."""
    page.goto(url)
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("#login-submit")
    page.wait_for_selector(f"#app header >> text={header}")
