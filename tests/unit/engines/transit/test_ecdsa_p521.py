"""``ecdsa-p521`` keys (Vault's ``KeyType_ECDSA_P521``, 7 in backups): created, read as
OpenBao shows them (``name`` P-521, a PKIX public key), signatures in both marshalings
that verify with ``cryptography`` directly, exports, and a backup that restores."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from tests.unit.engines.transit.transit_support import ok

INPUT = base64.b64encode(b"hello p521").decode()
MESSAGE = base64.b64decode(INPUT)


def public(transit, name: str, version: int = 1) -> ec.EllipticCurvePublicKey:
    read = ok(transit, "read", f"keys/{name}")
    entry = read["keys"][str(version)]
    assert entry["name"] == "P-521"
    key = serialization.load_pem_public_key(entry["public_key"].encode())
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp521r1"
    return key


def test_p521_signs_and_cryptography_verifies(transit):
    created = ok(transit, "update", "keys/p", {"type": "ecdsa-p521", "exportable": True})
    assert created["type"] == "ecdsa-p521" and created["supports_signing"] is True
    key = public(transit, "p")
    for algorithm, hash_cls in (("sha2-256", hashes.SHA256), ("sha2-512", hashes.SHA512)):
        der = ok(transit, "update", f"sign/p/{algorithm}", {"input": INPUT})["signature"]
        key.verify(base64.b64decode(der.split(":", 2)[2]), MESSAGE, ec.ECDSA(hash_cls()))
        jws = ok(transit, "update", f"sign/p/{algorithm}", {"input": INPUT, "marshaling_algorithm": "jws"})
        raw = base64.urlsafe_b64decode(jws["signature"].split(":", 2)[2] + "==")
        assert len(raw) == 2 * 66  # r || s, 66 bytes each for P-521
        r, s = int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big")
        key.verify(utils.encode_dss_signature(r, s), MESSAGE, ec.ECDSA(hash_cls()))
        body = {"input": INPUT, "signature": jws["signature"], "marshaling_algorithm": "jws"}
        assert ok(transit, "update", f"verify/p/{algorithm}", body) == {"valid": True}
        assert ok(transit, "update", f"verify/p/{algorithm}", {"input": INPUT, "signature": der}) == {"valid": True}
    tampered = base64.b64encode(b"other").decode()
    assert ok(transit, "update", "verify/p", {"input": tampered, "signature": der}) == {"valid": False}


def test_p521_exports_and_backup_round_trip(transit):
    ok(transit, "update", "keys/p", {"type": "ecdsa-p521", "exportable": True, "allow_plaintext_backup": True})
    exported = ok(transit, "read", "export/signing-key/p")["keys"]["1"]
    private = serialization.load_pem_private_key(exported.encode(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey) and exported.startswith("-----BEGIN EC PRIVATE KEY-----")
    assert private.public_key().public_numbers() == public(transit, "p").public_numbers()
    backup = ok(transit, "read", "backup/p")["backup"]
    assert json.loads(base64.b64decode(backup))["policy"]["type"] == 7
    ok(transit, "update", "restore/q", {"backup": backup})
    signature = ok(transit, "update", "sign/q", {"input": INPUT})["signature"]
    assert ok(transit, "update", "verify/p", {"input": INPUT, "signature": signature}) == {"valid": True}
