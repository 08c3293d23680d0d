"""Expiring signatures for status-message URLs, like an S3 presigned URL.

A signature covers the run id and the expiry time, so it cannot be moved to
another run, extended, or forged without the server secret.
"""

from __future__ import annotations

import hashlib
import hmac


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        key = hashlib.sha256(b"conveyor-status-messages\x00" + secret).digest()
        # HMAC-SHA256 (RFC 2104) with the key's inner and outer hash states made
        # once: a list signs one URL per run, and two hash copies cost two thirds
        # of copying an `hmac` object. The signatures are HMAC's, byte for byte.
        block = key.ljust(hashlib.sha256().block_size, b"\x00")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in block))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in block))

    def sign(self, run_id: int, expires: int) -> str:
        inner = self._inner.copy()
        inner.update(b"%d:%d" % (run_id, expires))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:32]

    def verify(self, run_id: int, expires: int, signature: str, now_s: int) -> bool:
        """True when the signature is this server's for this run and has not expired."""
        if expires < now_s:
            return False
        return hmac.compare_digest(self.sign(run_id, expires), signature)

    @staticmethod
    def expiry(now_s: int, ttl: int) -> int:
        """An expiry at least `ttl` seconds away, rounded up to the minute, so the
        URLs of one minute are identical (cacheable, comparable)."""
        return (now_s + ttl) // 60 * 60 + 60
