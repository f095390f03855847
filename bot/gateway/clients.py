"""Who the client is, and how much one client address may send.

* **Client address.** Behind a reverse proxy every request's socket peer is the proxy. The
  address is taken from ``X-Forwarded-For`` only when the peer is one of
  ``KEFU_TRUSTED_PROXIES`` (IPs or networks): the right-most entry that is not itself a
  trusted proxy (entries further left are whatever the client claimed). Otherwise the
  header is ignored, so a client cannot pick its own address. The middleware hands the
  rest of the app a request whose ``remote`` is that address (sign-in throttling, the
  per-address limit below, logs).
* **Per-address limit.** The web chat's sender id is whatever the browser says, so a new
  id per message would get a fresh per-conversation budget each time: ``POST /api/chat``
  also takes a token from the client address's bucket (``KEFU_RATE_ADDRESS_BURST``, then
  ``KEFU_RATE_PER_ADDRESS_MINUTE``; 0 turns it off) and gets 429 when it is empty, before
  anything is stored or sent to Rasa.
"""
from __future__ import annotations

import ipaddress
import math
from typing import Iterable, Optional, Sequence

from aiohttp import web

LIMITED_PATHS = ("/api/chat",)


def _ip(value: str):
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address, trusted: Sequence) -> bool:
    return address is not None and any(address in network for network in trusted)


def client_address(peer: Optional[str], forwarded_for: Iterable[str], trusted: Sequence) -> Optional[str]:
    """The client's address: the socket peer, or from X-Forwarded-For when the peer is trusted."""
    if not trusted or not _trusted(_ip(peer or ""), trusted):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:            # not an address: nothing left of it can be believed
            break
        client = str(address)
        if not _trusted(address, trusted):
            break
    return client


def client_address_middleware(trusted: Sequence):
    @web.middleware
    async def resolve_client(request: web.Request, handler):
        if trusted:
            address = client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                                     trusted)
            if address != request.remote:
                request = request.clone(remote=address)
        return await handler(request)
    return resolve_client


def address_limit_middleware(limiter, paths: Sequence[str] = LIMITED_PATHS):
    """429 for a client address over its budget on the customer routes that reach Rasa."""
    @web.middleware
    async def limit_address(request: web.Request, handler):
        if request.method == "POST" and request.path in paths \
                and not limiter.allow(f"addr:{request.remote}"):
            wait = max(1, math.ceil(1 / limiter.rate)) if limiter.rate else 60
            return web.json_response({"error": "too many messages from this address; "
                                               f"try again in {wait} s"},
                                     status=429, headers={"Retry-After": str(wait)})
        return await handler(request)
    return limit_address
