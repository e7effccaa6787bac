"""The parsed-key cache of ``KeyStore.get`` and the per-version ciphers of a ``Policy``.

Two engines over one storage stand for two workers of a node: one keeps the
key it parsed, the other changes it, and the first one's very next request
must answer as the changed key does (rotation, ``min_decryption_version``,
trim, delete, restore of other material)."""

from __future__ import annotations

import pytest

from strongroom.engines import create_engine
from strongroom.engines.transit import asymmetric
from strongroom.engines.transit.store import KeyStore
from strongroom.errors import InvalidRequest
from tests.unit.engines.transit.transit_support import b64, call, ok

HI = b64(b"hi")


@pytest.fixture
def other(backend, clock):
    """A second worker's engine over the same storage."""
    return create_engine("transit", {}, backend, clock)


def encrypt(engine, name: str = "k") -> dict:
    return ok(engine, "update", f"encrypt/{name}", {"plaintext": HI})


def decrypt_error(engine, ciphertext: str, name: str = "k") -> str:
    with pytest.raises(InvalidRequest) as raised:
        call(engine, "update", f"decrypt/{name}", {"ciphertext": ciphertext})
    return str(raised.value)


def test_an_unchanged_key_is_parsed_once_and_its_cipher_built_once(transit):
    ok(transit, "update", "keys/k")
    first = transit.store.get("k")
    assert transit.store.get("k") is first
    encrypt(transit)
    cipher = first._ciphers[1][1]
    encrypt(transit)
    assert first._ciphers[1][1] is cipher


def test_a_rotation_by_another_worker_is_used_by_the_next_request(transit, other):
    ok(transit, "update", "keys/k")
    before = encrypt(transit)
    assert before["key_version"] == 1
    for version in (2, 3):
        ok(other, "update", "keys/k/rotate")
        assert encrypt(transit)["key_version"] == version
        assert ok(transit, "update", "decrypt/k", {"ciphertext": before["ciphertext"]}) == {"plaintext": HI}


def test_min_decryption_version_set_by_another_worker_refuses_the_next_decrypt(transit, other):
    ok(transit, "update", "keys/k")
    old = encrypt(transit)["ciphertext"]
    ok(other, "update", "keys/k/rotate")
    assert ok(transit, "update", "decrypt/k", {"ciphertext": old}) == {"plaintext": HI}  # cached again, v2 known
    ok(other, "update", "keys/k/config", {"min_decryption_version": 2})
    assert decrypt_error(transit, old) == "ciphertext or signature version is disallowed by policy (too old)"
    batch = call(transit, "update", "decrypt/k", {"batch_input": [{"ciphertext": old}]})
    assert batch is not None and batch.status == 400
    assert (
        batch.data["batch_results"][0]["error"] == "ciphertext or signature version is disallowed by policy (too old)"
    )
    ok(other, "update", "keys/k/config", {"min_decryption_version": 1})
    assert ok(transit, "update", "decrypt/k", {"ciphertext": old}) == {"plaintext": HI}


def test_a_trim_by_another_worker_drops_the_version_at_once(transit, other):
    ok(transit, "update", "keys/k")
    old = encrypt(transit)["ciphertext"]
    ok(other, "update", "keys/k/rotate")
    assert ok(transit, "update", "decrypt/k", {"ciphertext": old}) == {"plaintext": HI}
    ok(other, "update", "keys/k/config", {"min_decryption_version": 2, "min_encryption_version": 2})
    ok(other, "update", "keys/k/trim", {"min_available_version": 2})
    assert decrypt_error(transit, old) == "ciphertext or signature version is disallowed by policy (too old)"
    with pytest.raises(InvalidRequest, match="less than the minimum encryption key version"):
        call(transit, "update", "encrypt/k", {"plaintext": HI, "key_version": 1})


def test_a_delete_by_another_worker_is_seen_by_the_next_request(transit, other):
    ok(transit, "update", "keys/k")
    ciphertext = encrypt(transit)["ciphertext"]
    ok(other, "update", "keys/k/config", {"deletion_allowed": True})
    call(other, "delete", "keys/k")
    assert decrypt_error(transit, ciphertext) == "encryption key not found"
    # Encrypting again creates a new key (Vault's upsert): its material is not the old one's.
    assert encrypt(transit)["key_version"] == 1
    assert decrypt_error(transit, ciphertext) == "cipher: message authentication failed"


def test_a_key_replaced_with_other_material_is_never_served_with_the_old_cipher(transit, other):
    ok(transit, "update", "keys/k")
    old = encrypt(transit)["ciphertext"]
    ok(other, "update", "keys/k/config", {"deletion_allowed": True})
    call(other, "delete", "keys/k")
    ok(other, "update", "keys/k")  # same name, same version 1, new material
    assert decrypt_error(transit, old) == "cipher: message authentication failed"


def test_a_full_parsed_cache_starts_again(backend, transit):
    store = KeyStore(transit.store.view, parsed_max=2)
    for name in ("a", "b", "c"):
        ok(transit, "update", f"keys/{name}")
        assert store.get(name) is store.get(name)
    assert len(store._parsed) <= 2
    assert store.get("a").name == "a"
    assert store.get("missing") is None


def test_a_private_key_is_loaded_once_per_content(transit, other):
    ok(transit, "update", "keys/r", {"type": "ecdsa-p256"})
    der = transit.store.get("r").versions[1].key
    assert asymmetric.load(der) is asymmetric.load(bytes(bytearray(der)))  # by content, not by object
    signature = ok(transit, "update", "sign/r", {"input": HI})["signature"]
    ok(other, "update", "keys/r/rotate")
    rotated = ok(transit, "update", "sign/r", {"input": HI})
    assert rotated["key_version"] == 2 and rotated["signature"].startswith("vault:v2:")
    new = transit.store.get("r").versions[2].key
    assert asymmetric.load(new) is not asymmetric.load(der)
    assert ok(transit, "update", "verify/r", {"input": HI, "signature": signature}) == {"valid": True}
    assert ok(transit, "update", "verify/r", {"input": HI, "signature": rotated["signature"]}) == {"valid": True}
