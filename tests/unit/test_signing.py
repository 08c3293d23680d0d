"""The status-message URL signer: one AES block per run, a page signed in one call."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.signing import HEX_LENGTH, UrlSigner

SECRET = b"unit-test-secret"
NOW = 1_700_000_000
uint64 = st.integers(min_value=0, max_value=2**64 - 1)


def one_block(secret: bytes, expires: int, run_id: int) -> str:
    """The documented MAC, written out block by block: AES-256 under
    SHA-256(label + secret) of EXPIRES || RUN_ID, both 64-bit little-endian."""
    key = hashlib.sha256(b"conveyor-status-messages-aes256\x00" + secret).digest()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    block = expires.to_bytes(8, "little") + run_id.to_bytes(8, "little")
    return (encryptor.update(block) + encryptor.finalize()).hex()


@given(expires=uint64, run_ids=st.lists(uint64, max_size=40))
def test_a_page_signed_at_once_is_each_run_signed_alone(expires: int, run_ids: list[int]) -> None:
    signer = UrlSigner(SECRET)
    joined = signer.signatures(expires, run_ids)
    assert len(joined) == HEX_LENGTH * len(run_ids)
    for k, run_id in enumerate(run_ids):
        expected = one_block(SECRET, expires, run_id)
        assert joined[HEX_LENGTH * k : HEX_LENGTH * (k + 1)] == expected
        assert signer.sign(run_id, expires) == expected


def test_a_signature_is_bound_to_its_run_expiry_and_secret() -> None:
    signer = UrlSigner(SECRET)
    expires = NOW + 3600
    good = signer.sign(42, expires)
    assert signer.verify(42, expires, good, NOW)
    assert not signer.verify(43, expires, good, NOW)
    assert not signer.verify(42, expires + 60, good, NOW)
    assert not signer.verify(42, expires, good, expires + 1)  # expired
    assert not signer.verify(42, expires, UrlSigner(b"another").sign(42, expires), NOW)
    assert not signer.verify(42, expires, good.upper(), NOW)


def test_numbers_beyond_64_bits_are_refused_not_raised() -> None:
    signer = UrlSigner(SECRET)
    expires = NOW + 3600
    assert not signer.verify(-1, expires, "0" * HEX_LENGTH, NOW)
    assert not signer.verify(2**64, expires, "0" * HEX_LENGTH, NOW)
    assert not signer.verify(42, 2**64, "0" * HEX_LENGTH, NOW)
