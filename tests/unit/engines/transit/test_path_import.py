"""Bring your own key (``wrapping_key``, ``keys/<name>/import``, ``import_version``) in
Vault's format, as OpenBao 2.7.2 answers it: the client's key arrives RSA-OAEP + AES-KWP
wrapped, becomes version 1 (or the next version) of a key that reads ``imported_key``,
and works with ``cryptography`` on the client's side: Strongroom's ciphertexts open with
the client's own AES key, its signatures verify with the client's public key."""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from strongroom.engines import create_engine
from strongroom.engines.transit.autorotate import due
from strongroom.errors import InvalidRequest, ReadOnly
from strongroom.storage import ReadOnlyView
from strongroom.storage.inmem import InmemBackend
from tests.unit.engines.kv_support import FakeClock
from tests.unit.engines.transit.transit_support import call, ok

HI = base64.b64encode(b"hello import").decode()


@pytest.fixture(scope="module")
def mount():
    """One mount for the module: its RSA-4096 wrapping key is made once."""
    backend, clock = InmemBackend(), FakeClock()
    engine = create_engine("transit", {}, backend, clock)
    public = serialization.load_pem_public_key(ok(engine, "read", "wrapping_key")["public_key"].encode())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 4096
    return engine, backend, clock, public


def wrap(public: rsa.RSAPublicKey, material: bytes, algorithm: hashes.HashAlgorithm | None = None) -> str:
    """What a client sends: RSA-OAEP(ephemeral AES-256 key) || AES-KWP(ephemeral, material)."""
    algorithm = algorithm or hashes.SHA256()
    ephemeral = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)
    return base64.b64encode(public.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)).decode()


def pkcs8(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_the_wrapping_key_is_stable(mount):
    engine, _, _, public = mount
    again = serialization.load_pem_public_key(ok(engine, "read", "wrapping_key")["public_key"].encode())
    assert again.public_numbers() == public.public_numbers()


def test_an_imported_aes_key_encrypts_what_the_client_decrypts(mount):
    engine, _, _, public = mount
    key = os.urandom(32)
    assert call(engine, "update", "keys/aes/import", {"ciphertext": wrap(public, key)}).status == 204
    read = ok(engine, "read", "keys/aes")
    assert read["imported_key"] is True and read["imported_key_allow_rotation"] is False
    assert read["latest_version"] == 1 and read["type"] == "aes256-gcm96"
    ciphertext = ok(engine, "update", "encrypt/aes", {"plaintext": HI})["ciphertext"]
    raw = base64.b64decode(ciphertext.split(":", 2)[2])
    assert AESGCM(key).decrypt(raw[:12], raw[12:], None) == base64.b64decode(HI)
    # and what the client seals under the same key, Strongroom opens
    nonce = os.urandom(12)
    theirs = "vault:v1:" + base64.b64encode(nonce + AESGCM(key).encrypt(nonce, b"from the client", None)).decode()
    assert base64.b64decode(ok(engine, "update", "decrypt/aes", {"ciphertext": theirs})["plaintext"]) == (
        b"from the client"
    )


def test_import_version_adds_versions_and_rotation_follows_allow_rotation(mount):
    engine, _, clock, public = mount
    first, second = os.urandom(16), os.urandom(16)
    body = {"ciphertext": wrap(public, first), "type": "aes128-gcm96"}
    assert call(engine, "update", "keys/v/import", body).status == 204
    with pytest.raises(InvalidRequest, match="import path cannot be used with an existing key"):
        call(engine, "update", "keys/v/import", body)
    with pytest.raises(InvalidRequest, match="imported key v does not allow rotation within Vault"):
        call(engine, "update", "keys/v/rotate")
    assert call(engine, "update", "keys/v/import_version", {"ciphertext": wrap(public, second)}).status == 204
    read = ok(engine, "read", "keys/v")
    assert read["latest_version"] == 2 and read["imported_key"] is True
    ciphertext = ok(engine, "update", "encrypt/v", {"plaintext": HI})["ciphertext"]
    assert ciphertext.startswith("vault:v2:")
    raw = base64.b64decode(ciphertext.split(":", 2)[2])
    assert AESGCM(second).decrypt(raw[:12], raw[12:], None) == base64.b64decode(HI)
    # auto rotation leaves it alone too
    ok(engine, "update", "keys/v/config", {"auto_rotate_period": "1h"})
    clock.advance(hours=2)
    assert not due(engine.store.get("v"), clock())

    rotating = {"ciphertext": wrap(public, first, hashes.SHA512()), "hash_function": "SHA512", "allow_rotation": True}
    rotating["type"] = "aes128-gcm96"
    assert call(engine, "update", "keys/r/import", rotating).status == 204
    assert ok(engine, "read", "keys/r")["imported_key_allow_rotation"] is True
    rotated = ok(engine, "update", "keys/r/rotate")
    # as OpenBao: a version made here means the key no longer reads as imported
    assert rotated["latest_version"] == 2 and rotated["imported_key"] is False
    assert "imported_key_allow_rotation" not in rotated


@pytest.mark.parametrize(
    ("key_type", "private"),
    [
        ("ed25519", ed25519.Ed25519PrivateKey.generate()),
        ("ecdsa-p256", ec.generate_private_key(ec.SECP256R1())),
        ("ecdsa-p384", ec.generate_private_key(ec.SECP384R1())),
        ("rsa-2048", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ],
)
def test_imported_signing_keys_sign_for_the_client_s_public_key(mount, key_type, private):
    engine, _, _, public = mount
    name = f"sig-{key_type}"
    body = {"ciphertext": wrap(public, pkcs8(private)), "type": key_type}
    assert call(engine, "update", f"keys/{name}/import", body).status == 204
    signature = ok(engine, "update", f"sign/{name}", {"input": HI})["signature"]
    raw = base64.b64decode(signature.split(":", 2)[2])
    message = base64.b64decode(HI)
    client = private.public_key()
    if key_type == "ed25519":
        client.verify(raw, message)
    elif key_type.startswith("ecdsa"):
        client.verify(raw, message, ec.ECDSA(hashes.SHA256()))
    else:
        client.verify(
            raw, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO), hashes.SHA256()
        )


def test_an_imported_hmac_key_takes_its_size(mount):
    engine, _, _, public = mount
    key = os.urandom(40)
    assert call(engine, "update", "keys/h/import", {"ciphertext": wrap(public, key), "type": "hmac"}).status == 204
    read = ok(engine, "read", "keys/h")
    assert read["key_size"] == 40 and read["imported_key"] is True
    import hashlib
    import hmac as std_hmac

    expected = "vault:v1:" + base64.b64encode(std_hmac.new(key, b"hello import", hashlib.sha256).digest()).decode()
    assert ok(engine, "update", "hmac/h", {"input": HI})["hmac"] == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "aes256-gcm96", "material": bytes(20)}, "invalid key size 20 bytes for key type aes256-gcm96"),
        ({"ciphertext": "AAAA"}, "provided ciphertext is too short"),
        ({}, "provided type does not support public_key import"),
        ({"hash_function": "MD5", "material": bytes(32)}, "unknown hash function: MD5"),
        ({"hash_function": "SHA512", "material": bytes(32)}, "crypto/rsa: decryption error"),  # wrapped with SHA256
        ({"ciphertext": "not base64!"}, "illegal base64"),
        ({"type": "ecdsa-p256", "material": bytes(32)}, "not a PKCS#8 private key"),
        ({"type": "ecdsa-p384", "pkcs8_p256": True}, "not a ecdsa-p384 private key"),
        ({"convergent_encryption": True, "derived": True, "material": bytes(32)}, "convergent encryption"),
    ],
)
def test_refusals_name_the_problem_and_store_nothing(mount, body, message):
    engine, _, _, public = mount
    body = dict(body)
    if "material" in body:
        body["ciphertext"] = wrap(public, body.pop("material"))
    if body.pop("pkcs8_p256", False):
        body["ciphertext"] = wrap(public, pkcs8(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(InvalidRequest, match=message):
        call(engine, "update", "keys/refused/import", body)
    assert call(engine, "read", "keys/refused") is None


def test_import_version_refusals(mount):
    engine, _, _, public = mount
    with pytest.raises(InvalidRequest, match="no key found with name nokey; to import a new key"):
        call(engine, "update", "keys/nokey/import_version", {"ciphertext": wrap(public, bytes(32))})
    ok(engine, "update", "keys/native")
    with pytest.raises(InvalidRequest, match="import_version endpoint can only be used with an imported key"):
        call(engine, "update", "keys/native/import_version", {"ciphertext": wrap(public, bytes(32))})


def test_on_a_standby_the_wrapping_key_is_read_and_imports_are_forwarded(mount):
    engine, backend, clock, public = mount
    standby = create_engine("transit", {}, ReadOnlyView(backend), clock)
    assert ok(standby, "read", "wrapping_key")["public_key"] == ok(engine, "read", "wrapping_key")["public_key"]
    with pytest.raises(ReadOnly):
        call(standby, "update", "keys/fwd/import", {"ciphertext": wrap(public, bytes(32))})
    fresh = create_engine("transit", {}, ReadOnlyView(InmemBackend()), clock)
    with pytest.raises(ReadOnly):  # no wrapping key yet: making it is a write
        call(fresh, "read", "wrapping_key")


def test_a_backup_of_an_imported_key_keeps_the_flags(mount):
    engine, _, _, public = mount
    body = {"ciphertext": wrap(public, os.urandom(32)), "exportable": True, "allow_plaintext_backup": True}
    call(engine, "update", "keys/b/import", body)
    backup = ok(engine, "read", "backup/b")["backup"]
    policy = json.loads(base64.b64decode(backup))["policy"]
    assert policy["Imported"] is True and policy["AllowImportedKeyRotation"] is False
    ok(engine, "update", "restore/b2", {"backup": backup})
    restored = ok(engine, "read", "keys/b2")
    assert restored["imported_key"] is True
    with pytest.raises(InvalidRequest, match="does not allow rotation"):
        call(engine, "update", "keys/b2/rotate")
