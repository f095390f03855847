"""A body the gateway never reads must not stall the client's next request on the same
kept-alive connection (found by ``make fuzz-api``: after a 131 KB body to a route that refuses
without reading it, the next request on that connection got no answer for 60 s).
``bot.web.close_after_unread_body`` answers such a request with ``Connection: close``."""
from __future__ import annotations

import http.client
import socket
import time

from tests.test_workspace_api import gateway  # noqa: F401  (the in-process gateway fixture)

BIG = ("<xml>" + "\x8d" * 70_000 + "</xml>").encode()        # 140 KB of UTF-8


def test_the_request_after_an_unread_body_is_answered(gateway):  # noqa: F811
    host, port = gateway.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)   # one connection, reused
    answers = []
    try:
        for path, body in (("/webhooks/wechat", BIG), ("/webhooks/wechat", BIG),
                           ("/api/chat", BIG), ("/nope", BIG), ("/healthz", None)):
            started = time.monotonic()
            conn.request("POST" if body else "GET", path, body=body,
                         headers={"Content-Type": "text/xml"})
            resp = conn.getresponse()
            resp.read()
            answers.append((path, resp.status, resp.getheader("Connection"),
                            round(time.monotonic() - started, 1)))
    except (socket.timeout, TimeoutError) as exc:
        raise AssertionError(f"no answer on the kept-alive connection after {answers}") from exc
    finally:
        conn.close()
    assert [a[1] for a in answers] == [404, 404, 413, 404, 503], answers
    assert all(a[2] == "close" for a in answers[:4]), answers      # unread: not reused
