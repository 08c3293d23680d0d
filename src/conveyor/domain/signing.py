"""Expiring signatures for status-message URLs, like an S3 presigned URL.

A signature covers the run id and the expiry time, so it cannot be moved to
another run, extended, or forged without the server secret.

The MAC is AES-256 of one 16-byte block, `EXPIRES || RUN_ID` (two unsigned
64-bit little-endian integers), under a key derived from the server secret;
the tag is the whole cipher block, 128 bits, 32 hex characters. Every message
is exactly one block long, and a block cipher on fixed one-block messages is a
pseudorandom function, hence a secure MAC (the ECB mode only means "each block
on its own": no block of one message is ever combined with another's). Equal
messages give equal tags by design, as with any deterministic MAC.

Why AES: a list signs one URL per run, up to 10,000 per page. With a hash MAC
each signature is a few Python calls; here a page's blocks are laid out in one
buffer and encrypted in one call, which costs a tenth as much per run
(docs/benchmarks.md, "status_messages_url signatures in one call"). Links
signed with the MACs used before (keyed BLAKE2s, HMAC-SHA256) no longer verify:
fetching the run gives a fresh URL.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from array import array
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_KEY_LABEL = b"conveyor-status-messages-aes256\x00"
_BLOCK = 16
HEX_LENGTH = 2 * _BLOCK  # characters of one signature
_UINT64_END = 1 << 64


def _blocks(expires: int, run_ids: Sequence[int]) -> bytearray:
    """The messages, one 16-byte block per run: EXPIRES then RUN_ID, little-endian.
    Built with two strided copies, not a Python loop over the runs."""
    ids = array("Q", run_ids)
    stamp = array("Q", [expires])
    if sys.byteorder != "little":
        ids.byteswap()
        stamp.byteswap()
    blocks = bytearray(_BLOCK * len(ids))
    words = memoryview(blocks).cast("Q")
    words[0::2] = stamp * len(ids)
    words[1::2] = ids
    words.release()
    return blocks


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        self._cipher = Cipher(
            algorithms.AES(hashlib.sha256(_KEY_LABEL + secret).digest()), modes.ECB()
        )

    def signatures(self, expires: int, run_ids: Sequence[int]) -> str:
        """The runs' signatures for URLs expiring at `expires`, concatenated in order:
        run k's is `[HEX_LENGTH * k : HEX_LENGTH * (k + 1)]`. Ids and the expiry must
        be in 0..2**64-1 (`verify` refuses anything else before signing)."""
        encryptor = self._cipher.encryptor()
        return (encryptor.update(_blocks(expires, run_ids)) + encryptor.finalize()).hex()

    def sign(self, run_id: int, expires: int) -> str:
        return self.signatures(expires, (run_id,))

    def verify(self, run_id: int, expires: int, signature: str, now_s: int) -> bool:
        """True when the signature is this server's for this run and has not expired."""
        if expires < now_s or not (0 <= run_id < _UINT64_END and expires < _UINT64_END):
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
