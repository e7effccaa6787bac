"""The barrier's ciphertext format: AES-256-GCM with a term header.

Layout of every encrypted value (Vault's ``AESGCMVersion2``)::

    term (4 bytes, big-endian) | version (1 byte, 0x02) | nonce (12 bytes) | ciphertext + tag (16)

The associated data is supplied by the caller: the barrier passes the storage
path, so a value copied to another path fails authentication.  The header is
not authenticated on its own; changing the term selects another key and
changing the version is rejected, so either way the value fails to decrypt.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.errors import IntegrityError, InvalidRequest

VERSION = 0x02
TERM_SIZE = 4
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = TERM_SIZE + 1 + NONCE_SIZE
KEY_SIZE = 32


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
        raise InvalidRequest(f"encryption key must be {KEY_SIZE} bytes (AES-256)")


def cipher(key: bytes) -> AESGCM:
    """The AES-256-GCM cipher of ``key``, for ``seal`` and ``open_sealed``: building
    it is most of the cost of one small value's encryption (bench/README.md), so
    the barrier keeps one per keyring key (``Key.cipher``)."""
    _check_key(key)
    return AESGCM(bytes(key))


def encrypt(
    key: bytes, term: int, plaintext: bytes, aad: bytes, randbytes: Callable[[int], bytes] = os.urandom
) -> bytes:
    """Seal ``plaintext`` under ``key``, labelled with ``term``, bound to ``aad``.

    A fresh random 96-bit nonce per call: safe for far more writes than one
    keyring term will ever see (rotate long before 2^32 encryptions).
    """
    return seal(cipher(key), term, plaintext, aad, randbytes)


def seal(aes: AESGCM, term: int, plaintext: bytes, aad: bytes, randbytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """``encrypt`` with the key's cipher already built."""
    if isinstance(term, bool) or not isinstance(term, int) or not 0 <= term < 2**32:
        raise InvalidRequest("term must be an integer in [0, 2^32)")
    nonce = randbytes(NONCE_SIZE)
    header = term.to_bytes(TERM_SIZE, "big") + bytes([VERSION]) + nonce
    return header + aes.encrypt(nonce, bytes(plaintext), bytes(aad))


def term_of(blob: bytes) -> int:
    """The keyring term a blob claims to be encrypted under (not yet authenticated)."""
    if len(blob) < TERM_SIZE:
        raise IntegrityError("encrypted value is too short")
    return int.from_bytes(blob[:TERM_SIZE], "big")


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Open a blob made by ``encrypt``; raises ``IntegrityError`` unless ``key``
    and ``aad`` are the ones it was sealed with and no byte was changed."""
    return open_sealed(cipher(key), blob, aad)


def open_sealed(aes: AESGCM, blob: bytes, aad: bytes) -> bytes:
    """``decrypt`` with the key's cipher already built."""
    if len(blob) < HEADER_SIZE + TAG_SIZE:
        raise IntegrityError("encrypted value is too short")
    if blob[TERM_SIZE] != VERSION:
        raise IntegrityError(f"unsupported encryption version {blob[TERM_SIZE]}")
    nonce = bytes(blob[TERM_SIZE + 1 : HEADER_SIZE])
    try:
        return aes.decrypt(nonce, bytes(blob[HEADER_SIZE:]), bytes(aad))
    except InvalidTag:
        raise IntegrityError("cipher: message authentication failed") from None
