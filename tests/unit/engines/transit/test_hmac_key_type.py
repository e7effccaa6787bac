"""``hmac`` keys (``type: hmac`` with ``key_size`` 32..512 bytes), as OpenBao 2.7.2 answers:
the read shows ``key_size`` and no versions, the key's one secret is both its ``key`` and
its ``hmac_key``, it computes HMACs and nothing else, and a backup (type 10) restores.
Known answer: OpenBao's HMAC of "hello" with the 48-byte key below."""

from __future__ import annotations

import base64
import json

import pytest

from strongroom.errors import InvalidRequest
from tests.unit.engines.transit.transit_support import call, ok

OPENBAO_KEY = "g9C7n7RAAc7g25Y6Wbdf20wrZJBMm7K8ptydP2gI2UQHZS24/eRAtzIAIqSatTNR"
OPENBAO_HMAC = "vault:v1:E80HB74UhGSTeX6f4itBhoxk0EO6rvysFmpKKIcwN7E="
HELLO = base64.b64encode(b"hello").decode()


def openbao_backup() -> str:
    """The parts of OpenBao's backup of that key that a restore reads."""
    entry = {"key": OPENBAO_KEY, "hmac_key": OPENBAO_KEY, "time": "2026-12-06T08:39:44.675916844Z"}
    policy = {
        "name": "h",
        "type": 10,
        "key_size": 48,
        "keys": {"1": entry},
        "latest_version": 1,
        "min_decryption_version": 1,
        "exportable": True,
        "allow_plaintext_backup": True,
    }
    return base64.b64encode(json.dumps({"policy": policy}).encode()).decode()


def test_a_restored_openbao_hmac_key_gives_openbao_s_hmac(transit):
    ok(transit, "update", "restore/h", {"backup": openbao_backup()})
    assert ok(transit, "update", "hmac/h", {"input": HELLO})["hmac"] == OPENBAO_HMAC
    assert ok(transit, "update", "verify/h", {"input": HELLO, "hmac": OPENBAO_HMAC}) == {"valid": True}
    assert ok(transit, "read", "export/hmac-key/h")["keys"] == {"1": OPENBAO_KEY}
    read = ok(transit, "read", "keys/h")
    assert read["type"] == "hmac" and read["key_size"] == 48 and "keys" not in read
    again = json.loads(base64.b64decode(ok(transit, "read", "backup/h")["backup"]))["policy"]
    assert again["type"] == 10 and again["key_size"] == 48
    assert again["keys"]["1"]["key"] == again["keys"]["1"]["hmac_key"] == OPENBAO_KEY


def test_created_hmac_keys_have_key_size_bytes_and_rotate(transit):
    created = ok(transit, "update", "keys/h", {"type": "hmac", "key_size": 64, "exportable": True})
    assert created["key_size"] == 64 and created["latest_version"] == 1
    for field in ("supports_encryption", "supports_decryption", "supports_derivation", "supports_signing"):
        assert created[field] is False
    first = ok(transit, "update", "hmac/h/sha2-512", {"input": HELLO})["hmac"]
    ok(transit, "update", "keys/h/rotate")
    exported = ok(transit, "read", "export/hmac-key/h")["keys"]
    assert [len(base64.b64decode(k)) for k in exported.values()] == [64, 64] and len(set(exported.values())) == 2
    second = ok(transit, "update", "hmac/h/sha2-512", {"input": HELLO})["hmac"]
    assert first.startswith("vault:v1:") and second.startswith("vault:v2:")
    for mac in (first, second):
        assert ok(transit, "update", "verify/h/sha2-512", {"input": HELLO, "hmac": mac}) == {"valid": True}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "hmac"}, "invalid key size for HMAC key, must be between 32 and 512 bytes"),
        ({"type": "hmac", "key_size": 8}, "invalid key_size 8"),
        ({"type": "hmac", "key_size": 513}, "invalid key_size 513"),
        ({"type": "aes256-gcm96", "key_size": 48}, "key_size is not valid for algorithm aes256-gcm96"),
    ],
)
def test_bad_sizes_are_refused(transit, body, message):
    with pytest.raises(InvalidRequest) as refused:
        call(transit, "update", "keys/x", body)
    assert str(refused.value) == message
    assert call(transit, "read", "keys/x") is None


def test_an_hmac_key_only_computes_hmacs(transit):
    ok(transit, "update", "keys/h", {"type": "hmac", "key_size": 32, "exportable": True})
    with pytest.raises(InvalidRequest, match="message encryption not supported for key type hmac"):
        call(transit, "update", "encrypt/h", {"plaintext": HELLO})
    with pytest.raises(InvalidRequest, match="message decryption not supported for key type hmac"):
        call(transit, "update", "decrypt/h", {"ciphertext": "vault:v1:AAAA"})
    with pytest.raises(InvalidRequest, match="does not support signing"):
        call(transit, "update", "sign/h", {"input": HELLO})
    for export_type in ("encryption-key", "signing-key", "public-key"):
        with pytest.raises(InvalidRequest):
            call(transit, "read", f"export/{export_type}/h")
