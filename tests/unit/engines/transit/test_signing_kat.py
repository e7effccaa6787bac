"""Signing keys against OpenBao 2.7.2: keys exported from OpenBao (``export/signing-key``)
installed here verify OpenBao's signatures, sign byte-identically where the
scheme is deterministic (ed25519, RSA PKCS#1 v1.5), export the same strings,
and Strongroom's signatures verify with ``cryptography`` and OpenBao's public key.
Known answers in ``openbao_signing_kat.json``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from strongroom.engines.transit.policy import KeyVersion, Policy
from tests.unit.engines.kv_support import START
from tests.unit.engines.transit.transit_support import call, ok

KAT = json.loads((Path(__file__).parent / "openbao_signing_kat.json").read_text())
INPUT = "aGVsbG8gdHJhbnNpdA=="
MESSAGE = base64.b64decode(INPUT)


def private_der(key_type: str, exported: str) -> bytes:
    """An exported OpenBao signing key as the PKCS#8 DER Strongroom stores."""
    key: object
    if key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(exported)[:32])
    else:
        key = serialization.load_pem_private_key(exported.encode(), password=None)
    assert isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def install_signing(transit, key_type: str) -> None:
    der = private_der(key_type, KAT[key_type]["signing_key"])
    policy = Policy(
        name="s",
        type=key_type,
        exportable=True,
        latest_version=1,
        versions={1: KeyVersion(key=der, hmac_key=bytes(32), created=START)},
    )
    transit.store.update("s", lambda current: policy)


@pytest.mark.parametrize("key_type", sorted(KAT))
def test_openbao_signatures_verify(transit, key_type):
    install_signing(transit, key_type)
    for variant in KAT[key_type]["signatures"].values():
        body = {"input": INPUT, "signature": variant["signature"], **variant["options"]}
        assert ok(transit, "update", "verify/s", body) == {"valid": True}, variant
        tampered = {**body, "input": base64.b64encode(b"other").decode()}
        assert ok(transit, "update", "verify/s", tampered) == {"valid": False}, variant


@pytest.mark.parametrize("key_type", sorted(KAT))
def test_exports_and_read_match_openbao(transit, key_type):
    install_signing(transit, key_type)
    assert ok(transit, "read", "export/signing-key/s")["keys"] == {"1": KAT[key_type]["signing_key"]}
    assert ok(transit, "read", "export/public-key/s")["keys"] == {"1": KAT[key_type]["public_key"]}
    version = ok(transit, "read", "keys/s")["keys"]["1"]
    assert version["public_key"] == KAT[key_type]["read_public_key"]
    assert set(version) == {"certificate_chain", "creation_time", "name", "public_key"}


@pytest.mark.parametrize(("key_type", "variant"), [("ed25519", "default"), ("rsa-2048", "pkcs1v15-sha2-512")])
def test_deterministic_signatures_are_byte_identical(transit, key_type, variant):
    install_signing(transit, key_type)
    expected = KAT[key_type]["signatures"][variant]
    body = {"input": INPUT, **expected["options"]}
    assert ok(transit, "update", "sign/s", body) == {"signature": expected["signature"], "key_version": 1}


def test_ecdsa_signature_verifies_with_cryptography(transit):
    install_signing(transit, "ecdsa-p256")
    public = serialization.load_pem_public_key(KAT["ecdsa-p256"]["public_key"].encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signature = ok(transit, "update", "sign/s/sha2-384", {"input": INPUT})["signature"]
    public.verify(base64.b64decode(signature.split(":", 2)[2]), MESSAGE, ec.ECDSA(hashes.SHA384()))


def test_rsa_pss_signature_verifies_with_cryptography(transit):
    install_signing(transit, "rsa-2048")
    public = serialization.load_pem_public_key(KAT["rsa-2048"]["public_key"].encode())
    assert isinstance(public, rsa.RSAPublicKey)
    signature = ok(transit, "update", "sign/s", {"input": INPUT})["signature"]
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    public.verify(base64.b64decode(signature.split(":", 2)[2]), MESSAGE, pss, hashes.SHA256())


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048"])
def test_created_keys_sign_verify_and_rotate(transit, key_type):
    created = ok(transit, "update", "keys/a", {"type": key_type})
    assert created["supports_signing"] is True and created["type"] == key_type
    first = ok(transit, "update", "sign/a", {"input": INPUT})
    assert first["key_version"] == 1
    ok(transit, "update", "keys/a/rotate")
    second = ok(transit, "update", "sign/a", {"input": INPUT, "marshaling_algorithm": "jws"})
    assert second["signature"].startswith("vault:v2:")
    assert ok(transit, "update", "verify/a", {"input": INPUT, "signature": first["signature"]}) == {"valid": True}
    body = {"input": INPUT, "signature": second["signature"], "marshaling_algorithm": "jws"}
    assert ok(transit, "update", "verify/a", body) == {"valid": True}


def test_signing_refusals(transit):
    from strongroom.errors import InvalidRequest

    ok(transit, "update", "keys/sym", {})
    with pytest.raises(InvalidRequest, match="key type aes256-gcm96 does not support signing"):
        call(transit, "update", "sign/sym", {"input": INPUT})
    with pytest.raises(InvalidRequest, match="signing key not found"):
        call(transit, "update", "sign/none", {"input": INPUT})
    ok(transit, "update", "keys/ed", {"type": "ed25519"})
    with pytest.raises(InvalidRequest, match="message encryption not supported for key type ed25519"):
        call(transit, "update", "encrypt/ed", {"plaintext": INPUT})
    with pytest.raises(InvalidRequest, match="not supported for keys of type ecdsa-p256"):
        call(transit, "update", "keys/bad", {"type": "ecdsa-p256", "derived": True})


def test_rsa_encrypts_with_oaep(transit):
    ok(transit, "update", "keys/r", {"type": "rsa-2048"})
    ciphertext = ok(transit, "update", "encrypt/r", {"plaintext": INPUT})["ciphertext"]
    assert ok(transit, "update", "decrypt/r", {"ciphertext": ciphertext}) == {"plaintext": INPUT}


# A derived ed25519 key exported from OpenBao, and what OpenBao signed with it for context "tenant-1".
DERIVED_ED25519 = "WARt6m5Fuu/sp0PuzqqZ7YY/YCNZW9gc0GbeVMIjBv92n3MUxJ2h5CuGn5G0+SXf2O345lXuEVXOXKs+eH7R0Q=="
DERIVED_PUBLIC = "hxVYfa2uZrxxDEDLRRuAF4o9P98EtQV8XzTRoxsZhB0="
DERIVED_SIGNATURE = "vault:v1:Zh4dY0HXQVYWMRBm0xw2y2UW4UzSHD5pGkxJgGXROtzLCru4EGI5QEZdV5A7y2Csnu2J6tNcm+H2wgfMUb/+Cg=="
CONTEXT = base64.b64encode(b"tenant-1").decode()


def test_derived_ed25519_matches_openbao(transit):
    from strongroom.errors import InvalidRequest

    policy = Policy(
        name="d",
        type="ed25519",
        derived=True,
        latest_version=1,
        versions={1: KeyVersion(key=private_der("ed25519", DERIVED_ED25519), hmac_key=bytes(32), created=START)},
    )
    transit.store.update("d", lambda current: policy)
    signed = ok(transit, "update", "sign/d", {"input": INPUT, "context": CONTEXT})
    assert signed == {"signature": DERIVED_SIGNATURE, "key_version": 1, "public_key": DERIVED_PUBLIC}
    body = {"input": INPUT, "signature": DERIVED_SIGNATURE, "context": CONTEXT}
    assert ok(transit, "update", "verify/d", body) == {"valid": True}
    assert ok(transit, "read", "keys/d", {"context": CONTEXT})["keys"]["1"]["public_key"] == DERIVED_PUBLIC
    assert ok(transit, "read", "keys/d")["keys"]["1"]["public_key"] == ""
    with pytest.raises(InvalidRequest, match="missing 'context' for key derivation"):
        call(transit, "update", "sign/d", {"input": INPUT})


def test_derived_key_rules(transit):
    from strongroom.errors import InvalidRequest

    assert ok(transit, "update", "keys/d", {"type": "ed25519", "derived": True})["kdf"] == "hkdf_sha256"
    with pytest.raises(InvalidRequest, match="convergent encryption not supported for keys of type ed25519"):
        call(transit, "update", "keys/c", {"type": "ed25519", "derived": True, "convergent_encryption": True})
