"""WeChat's XML wire format: bounded body reads, parsing (no DTDs, no entities), replies, long-text splitting."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Dict, List

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from xml.etree.ElementTree import ParseError

from connectors.wechat.crypto import WeChatError, cdata

if TYPE_CHECKING:
    from aiohttp import web


async def read_body(request: "web.Request", limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes: a longer one (announced or sent) is a 413."""
    if request.content_length is not None and request.content_length > limit:
        raise WeChatError(413, "body too large")
    body = bytearray()
    while True:
        chunk = await request.content.read(16 * 1024)
        if not chunk:
            return bytes(body)
        body.extend(chunk)
        if len(body) > limit:
            raise WeChatError(413, "body too large")


def split_text(text: str, limit: int = 2000) -> List[str]:
    """Pieces of at most ``limit`` UTF-8 bytes (WeChat's text limit is 2048), cut between
    messages or lines where possible, so a long answer arrives whole in several parts."""
    pieces: List[str] = []
    current = ""
    for part in text.split("\n"):
        candidate = f"{current}\n{part}" if current else part
        if len(candidate.encode("utf-8")) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = ""
        while len(part.encode("utf-8")) > limit:          # one overlong line: cut by characters
            cut = limit // 4
            while len(part[:cut + 1].encode("utf-8")) <= limit and cut < len(part):
                cut += 1
            pieces.append(part[:cut])
            part = part[cut:]
        current = part
    if current:
        pieces.append(current)
    return [p.strip("\n") for p in pieces if p.strip()]


def parse_xml(body: bytes | str) -> Dict[str, str]:
    """The flat ``<xml>`` of a WeChat message as a dict; entities and DTDs are refused."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException as exc:
        raise WeChatError(400, f"forbidden XML construct: {type(exc).__name__}")
    except (ParseError, ValueError, TypeError) as exc:
        raise WeChatError(400, f"malformed XML: {type(exc).__name__}")
    if root.tag != "xml":
        raise WeChatError(400, "root element is not <xml>")
    fields: Dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str):
            fields[child.tag] = (child.text or "").strip() if len(child) == 0 else ""
    return fields


def text_reply(to_user: str, from_user: str, content: str) -> str:
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType>"
            f"{cdata('text')}</MsgType><Content>{cdata(content)}</Content></xml>")
