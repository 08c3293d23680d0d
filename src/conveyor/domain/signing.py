"""Expiring signatures for status-message URLs, like an S3 presigned URL.

A signature covers the run id and the expiry time, so it cannot be moved to
another run, extended, or forged without the server secret.

The MAC is keyed BLAKE2s (RFC 7693 keyed mode, a PRF; 128-bit tags, 32 hex
characters) over `EXPIRES:RUN_ID`. A list signs one URL per run, so the cost
per signature matters: the key and the page's expiry are absorbed once into a
hash state, and each run costs one state copy, one short update and one
digest (about half of the HMAC-SHA256 used before; links signed with that
older MAC no longer verify: fetch the run again for a fresh URL).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

_KEY_LABEL = b"conveyor-status-messages-blake2s\x00"


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        key = hashlib.sha256(_KEY_LABEL + secret).digest()
        self._keyed = hashlib.blake2s(key=key, digest_size=16)

    def signer_for(self, expires: int) -> Callable[[int], str]:
        """`sign(run_id)` for URLs expiring at `expires`: what a page of runs uses."""
        state = self._keyed.copy()
        state.update(b"%d:" % expires)
        copy = state.copy

        def sign(run_id: int) -> str:
            mac = copy()
            mac.update(b"%d" % run_id)
            return mac.hexdigest()

        return sign

    def sign(self, run_id: int, expires: int) -> str:
        return self.signer_for(expires)(run_id)

    def verify(self, run_id: int, expires: int, signature: str, now_s: int) -> bool:
        """True when the signature is this server's for this run and has not expired."""
        if expires < now_s:
            return False
        # As bytes: compare_digest refuses str with non-ASCII characters (a 500 before).
        return hmac.compare_digest(
            self.sign(run_id, expires).encode(), signature.encode("utf-8", "replace")
        )

    @staticmethod
    def expiry(now_s: int, ttl: int) -> int:
        """An expiry at least `ttl` seconds away, rounded up to the minute, so the
        URLs of one minute are identical (cacheable, comparable)."""
        return (now_s + ttl) // 60 * 60 + 60
