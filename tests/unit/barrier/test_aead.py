"""The barrier ciphertext format: layout, authentication and failures."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.barrier import aead
from strongroom.errors import IntegrityError, InvalidRequest

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_layout_term_version_nonce_ciphertext():
    nonce = b"\x07" * 12
    blob = aead.encrypt(KEY, 0x01020304, b"plaintext", b"path/a", randbytes=lambda n: nonce[:n])
    assert blob[:4] == b"\x01\x02\x03\x04"
    assert blob[4] == 0x02
    assert blob[5:17] == nonce
    assert len(blob) == 4 + 1 + 12 + len(b"plaintext") + 16
    # The body is exactly AES-256-GCM with the caller's associated data.
    assert AESGCM(KEY).decrypt(nonce, blob[17:], b"path/a") == b"plaintext"


@settings(max_examples=50)
@given(st.binary(max_size=2048), st.binary(max_size=64), st.integers(0, 2**32 - 1))
def test_round_trip(plaintext, aad, term):
    blob = aead.encrypt(KEY, term, plaintext, aad)
    assert aead.term_of(blob) == term
    assert aead.decrypt(KEY, blob, aad) == plaintext


def test_nonces_are_fresh():
    blobs = {aead.encrypt(KEY, 1, b"same", b"aad")[5:17] for _ in range(100)}
    assert len(blobs) == 100


def test_wrong_key_fails():
    blob = aead.encrypt(KEY, 1, b"secret", b"aad")
    with pytest.raises(IntegrityError):
        aead.decrypt(OTHER_KEY, blob, b"aad")


def test_wrong_aad_fails():
    blob = aead.encrypt(KEY, 1, b"secret", b"path/a")
    with pytest.raises(IntegrityError):
        aead.decrypt(KEY, blob, b"path/b")


def test_every_tampered_byte_after_the_term_fails():
    blob = aead.encrypt(KEY, 1, b"secret value", b"aad")
    for position in range(4, len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(IntegrityError):
            aead.decrypt(KEY, bytes(tampered), b"aad")


def test_truncated_or_extended_blob_fails():
    blob = aead.encrypt(KEY, 1, b"secret value", b"aad")
    for broken in (blob[:-1], blob + b"\x00", blob[:20]):
        with pytest.raises(IntegrityError):
            aead.decrypt(KEY, broken, b"aad")


@pytest.mark.parametrize("length", [0, 3, 4, 17, 32])
def test_short_blob_fails(length):
    with pytest.raises(IntegrityError):
        aead.decrypt(KEY, b"\x00\x00\x00\x01\x02" + bytes(max(0, length - 5)), b"aad")


def test_term_of_short_blob_fails():
    with pytest.raises(IntegrityError):
        aead.term_of(b"\x00\x01")


@pytest.mark.parametrize("version", [0x00, 0x01, 0x03, 0xFF])
def test_wrong_version_fails(version):
    blob = bytearray(aead.encrypt(KEY, 1, b"secret", b"aad"))
    blob[4] = version
    with pytest.raises(IntegrityError, match="version"):
        aead.decrypt(KEY, bytes(blob), b"aad")


@pytest.mark.parametrize("term", [-1, 2**32, "1", 1.0, True])
def test_term_out_of_range(term):
    with pytest.raises(InvalidRequest):
        aead.encrypt(KEY, term, b"x", b"aad")


@pytest.mark.parametrize("key", [b"", b"k" * 16, b"k" * 24, b"k" * 33])
def test_key_must_be_aes_256(key):
    with pytest.raises(InvalidRequest):
        aead.encrypt(key, 1, b"x", b"aad")
    with pytest.raises(InvalidRequest):
        aead.decrypt(key, aead.encrypt(KEY, 1, b"x", b"aad"), b"aad")


def test_ciphertext_does_not_contain_plaintext():
    plaintext = b"the-plaintext-" * 8
    assert plaintext[:14] not in aead.encrypt(os.urandom(32), 1, plaintext, b"aad")
