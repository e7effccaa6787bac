"""encrypt, decrypt, rewrap, datakey, hmac/verify, random, hash, export: round trips, batches, refusals."""

from __future__ import annotations

import base64

import pytest

from strongroom.errors import InvalidRequest, MethodNotAllowed
from tests.unit.engines.transit.transit_support import b64, call, ok

HI = b64(b"hi")


def test_encrypt_creates_missing_key_and_round_trips(transit):
    out = ok(transit, "update", "encrypt/k", {"plaintext": HI})
    assert out["key_version"] == 1 and out["ciphertext"].startswith("vault:v1:")
    assert ok(transit, "update", "decrypt/k", {"ciphertext": out["ciphertext"]}) == {"plaintext": HI}
    assert ok(transit, "read", "keys/k")["derived"] is False


def test_encrypt_with_context_creates_derived_key(transit):
    ctx = b64(b"ctx")
    out = ok(transit, "update", "encrypt/d", {"plaintext": HI, "context": ctx})
    assert ok(transit, "read", "keys/d")["derived"] is True
    assert ok(transit, "update", "decrypt/d", {"ciphertext": out["ciphertext"], "context": ctx}) == {"plaintext": HI}
    with pytest.raises(InvalidRequest, match="missing 'context' for key derivation"):
        call(transit, "update", "decrypt/d", {"ciphertext": out["ciphertext"]})
    with pytest.raises(InvalidRequest, match="cipher: message authentication failed"):
        call(transit, "update", "decrypt/d", {"ciphertext": out["ciphertext"], "context": b64(b"other")})


def test_encrypt_and_decrypt_of_existing_key_never_write(transit, backend):
    ok(transit, "update", "keys/k", {})
    writes = len(backend.txns)
    ciphertext = ok(transit, "update", "encrypt/k", {"plaintext": HI})["ciphertext"]
    ok(transit, "update", "decrypt/k", {"ciphertext": ciphertext})
    ok(transit, "update", "rewrap/k", {"ciphertext": ciphertext})
    ok(transit, "update", "hmac/k", {"input": HI})
    assert len(backend.txns) == writes


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("encrypt/k", {}, "missing plaintext to encrypt"),
        ("encrypt/k", {"plaintext": "aGk"}, "illegal base64 data"),
        ("encrypt/k", {"plaintext": HI, "key_version": 7}, "higher than the latest key version"),
        ("encrypt/k", {"batch_input": []}, "missing batch input to process"),
        ("decrypt/k", {}, "missing ciphertext to decrypt"),
        ("decrypt/none", {"ciphertext": "vault:v1:aa"}, "encryption key not found"),
        ("decrypt/k", {"ciphertext": "x"}, "invalid ciphertext: no prefix"),
        ("decrypt/k", {"ciphertext": "vault:v1"}, "invalid ciphertext: wrong number of fields"),
        ("decrypt/k", {"ciphertext": "vault:vx:aaaa"}, "version number could not be decoded"),
        ("decrypt/k", {"ciphertext": "vault:v9:aaaa"}, "invalid ciphertext: version is too new"),
        ("decrypt/k", {"ciphertext": "vault:v1:!!"}, "invalid ciphertext: could not decode base64"),
        ("decrypt/k", {"ciphertext": "vault:v1:aaaa"}, "invalid ciphertext length"),
    ],
)
def test_refusals(transit, path, body, message):
    ok(transit, "update", "keys/k", {})
    with pytest.raises(InvalidRequest, match=message):
        call(transit, "update", path, body)


def test_batch_with_item_errors_is_a_400_with_results(transit):
    ok(transit, "update", "keys/k", {})
    response = call(
        transit, "update", "encrypt/k", {"batch_input": [{"plaintext": HI, "reference": "a"}, {"plaintext": "!!"}]}
    )
    assert response is not None and response.status == 400
    first, second = response.data["batch_results"]
    assert first["reference"] == "a" and first["key_version"] == 1
    assert second == {"error": "illegal base64 data at input byte 0", "reference": ""}
    response = call(
        transit,
        "update",
        "decrypt/k",
        {
            "batch_input": [{"ciphertext": first["ciphertext"]}, {"ciphertext": "x"}],
            "partial_failure_response_code": 207,
        },
    )
    assert response is not None and response.status == 207
    assert response.data["batch_results"] == [
        {"plaintext": HI, "reference": ""},
        {"plaintext": "", "error": "invalid ciphertext: no prefix", "reference": ""},
    ]


def test_min_decryption_version_and_rewrap(transit):
    old = ok(transit, "update", "encrypt/k", {"plaintext": HI})["ciphertext"]
    ok(transit, "update", "keys/k/rotate")
    new = ok(transit, "update", "rewrap/k", {"ciphertext": old})
    assert new["key_version"] == 2 and new["ciphertext"].startswith("vault:v2:")
    ok(transit, "update", "keys/k/config", {"min_decryption_version": 2})
    with pytest.raises(InvalidRequest, match=r"disallowed by policy \(too old\)"):
        call(transit, "update", "decrypt/k", {"ciphertext": old})
    assert ok(transit, "update", "decrypt/k", {"ciphertext": new["ciphertext"]}) == {"plaintext": HI}
    pinned = ok(transit, "update", "encrypt/k", {"plaintext": HI, "key_version": 2})
    assert pinned["key_version"] == 2


def test_datakey(transit):
    ok(transit, "update", "keys/k", {})
    plain = ok(transit, "update", "datakey/plaintext/k", {"bits": 128})
    assert len(base64.b64decode(plain["plaintext"])) == 16
    assert ok(transit, "update", "decrypt/k", {"ciphertext": plain["ciphertext"]}) == {"plaintext": plain["plaintext"]}
    wrapped = ok(transit, "update", "datakey/wrapped/k")
    assert set(wrapped) == {"ciphertext", "key_version"}
    with pytest.raises(InvalidRequest, match="Invalid path, must be 'plaintext' or 'wrapped'"):
        call(transit, "update", "datakey/foo/k")
    with pytest.raises(InvalidRequest, match="invalid bit length"):
        call(transit, "update", "datakey/wrapped/k", {"bits": 100})
    with pytest.raises(InvalidRequest, match="encryption key not found"):
        call(transit, "update", "datakey/wrapped/none")


def test_hmac_and_verify(transit):
    ok(transit, "update", "keys/k", {})
    mac = ok(transit, "update", "hmac/k/sha2-384", {"input": HI})["hmac"]
    assert ok(transit, "update", "verify/k", {"input": HI, "hmac": mac, "algorithm": "sha2-384"}) == {"valid": True}
    assert ok(transit, "update", "verify/k", {"input": b64(b"x"), "hmac": mac, "algorithm": "sha2-384"}) == {
        "valid": False
    }
    with pytest.raises(InvalidRequest, match="neither a 'signature' nor an 'hmac' were given to verify"):
        call(transit, "update", "verify/k", {"input": HI})
    with pytest.raises(InvalidRequest, match="missing input for HMAC"):
        call(transit, "update", "hmac/k", {})
    with pytest.raises(InvalidRequest, match="unsupported algorithm md5"):
        call(transit, "update", "hmac/k/md5", {"input": HI})
    batch = ok(transit, "update", "hmac/k", {"batch_input": [{"input": HI}, {"input": "!!"}, {}]})["batch_results"]
    assert batch[0]["hmac"].startswith("vault:v1:")
    assert batch[1] == {
        "error": "unable to decode input as base64: illegal base64 data at input byte 0",
        "reference": "",
    }
    assert batch[2] == {"error": "missing input for HMAC", "reference": ""}


def test_random(transit):
    assert len(base64.b64decode(ok(transit, "update", "random")["random_bytes"])) == 32
    assert len(ok(transit, "update", "random/8", {"format": "hex"})["random_bytes"]) == 16
    assert len(base64.b64decode(ok(transit, "update", "random/platform/4")["random_bytes"])) == 4
    with pytest.raises(InvalidRequest, match="'bytes' cannot be less than 1"):
        call(transit, "update", "random/0")
    with pytest.raises(InvalidRequest, match="'bytes' should be less than 131072"):
        call(transit, "update", "random/999999")
    with pytest.raises(InvalidRequest, match='unsupported encoding format "x"'):
        call(transit, "update", "random", {"format": "x"})


def test_hash(transit):
    expected = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"  # OpenBao, sha2-256("hi")
    assert ok(transit, "update", "hash", {"input": HI}) == {"sum": expected}
    assert ok(transit, "update", "hash/sha2-256", {"input": HI, "format": "base64"}) == {
        "sum": base64.b64encode(bytes.fromhex(expected)).decode()
    }
    with pytest.raises(InvalidRequest, match="input missing"):
        call(transit, "update", "hash")
    with pytest.raises(InvalidRequest, match="unsupported algorithm md5"):
        call(transit, "update", "hash/md5", {"input": HI})


def test_export(transit):
    ok(transit, "update", "keys/k", {"exportable": True})
    ok(transit, "update", "keys/k/rotate")
    exported = ok(transit, "read", "export/encryption-key/k")
    assert exported["name"] == "k" and exported["type"] == "aes256-gcm96" and set(exported["keys"]) == {"1", "2"}
    assert set(ok(transit, "read", "export/hmac-key/k/latest")["keys"]) == {"2"}
    assert set(ok(transit, "read", "export/hmac-key/k/1")["keys"]) == {"1"}
    with pytest.raises(InvalidRequest, match="version does not exist or cannot be found"):
        call(transit, "read", "export/hmac-key/k/9")
    with pytest.raises(InvalidRequest, match="invalid export type: foo"):
        call(transit, "read", "export/foo/k")
    assert call(transit, "read", "export/hmac-key/none") is None
    ok(transit, "update", "keys/secret", {})
    with pytest.raises(InvalidRequest, match="private key material is not exportable"):
        call(transit, "read", "export/encryption-key/secret")


def test_unknown_operation(transit):
    with pytest.raises(MethodNotAllowed):
        call(transit, "read", "encrypt/k")
