"""WeChat's message crypto, shared by the official account and 微信客服 (WeCom kf).

Signatures are SHA-1 over the sorted token, timestamp, nonce (and the encrypted body in
safe mode); bodies are AES-256-CBC with the 43-character EncodingAESKey, PKCS#7 padded to
32 bytes, framed as random(16) + length(4, big-endian) + message + receive id.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from typing import Optional

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class WeChatError(Exception):
    """A request that is not from WeChat or cannot be read (the status says which)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def signature(*parts: str) -> str:
    """WeChat's SHA1 over the sorted parts (token, timestamp, nonce[, encrypt])."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8", "surrogatepass")).hexdigest()


def signature_ok(expected_parts, given: Optional[str]) -> bool:
    return bool(given) and hmac.compare_digest(signature(*expected_parts).encode(),
                                               given.encode("utf-8", "surrogatepass"))


class WeChatCrypto:
    """The WXBizMsgCrypt scheme: AES-256-CBC, IV = key[:16], PKCS#7 to 32-byte blocks.

    Plaintext = 16 random bytes + 4-byte big-endian length + message + appid.
    """

    BLOCK = 32

    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        self.key = base64.b64decode(encoding_aes_key + "=")
        if len(self.key) != 32:
            raise ValueError("EncodingAESKey does not decode to 32 bytes")
        self.token, self.appid = token, appid

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, text: str, random16: bytes | None = None) -> str:
        body = text.encode("utf-8")
        plain = (random16 or secrets.token_bytes(16)) + struct.pack(">I", len(body)) + body \
            + self.appid.encode("utf-8")
        pad = self.BLOCK - len(plain) % self.BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (ValueError, TypeError):
            raise WeChatError(400, "Encrypt is not base64")
        if not raw or len(raw) % 16:
            raise WeChatError(400, "Encrypt has a wrong length")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= self.BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise WeChatError(403, "bad padding (wrong key?)")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise WeChatError(403, "decrypted message too short")
        (length,) = struct.unpack(">I", plain[16:20])
        body, appid = plain[20:20 + length], plain[20 + length:]
        if len(body) != length or not hmac.compare_digest(appid, self.appid.encode("utf-8")):
            raise WeChatError(403, "appid does not match")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise WeChatError(400, "decrypted message is not UTF-8")

    def encrypted_reply(self, reply_xml: str, nonce: str, timestamp: str | None = None) -> str:
        timestamp = timestamp or str(int(time.time()))
        encrypted = self.encrypt(reply_xml)
        sig = signature(self.token, timestamp, nonce, encrypted)
        return (f"<xml><Encrypt>{cdata(encrypted)}</Encrypt><MsgSignature>{cdata(sig)}"
                f"</MsgSignature><TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}"
                f"</Nonce></xml>")


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
