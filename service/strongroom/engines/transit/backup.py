"""Vault's plaintext key backup format (``keysutil.KeyData``), both ways.

https://openbao.org/api-docs/secret/transit/#backup-key

A backup is base64 of ``{"policy": <Policy>, "archived_keys": {"keys": [...]}}``
in the JSON Go writes for Vault's structs: key types as Vault's enum numbers,
symmetric and ed25519 keys as base64 bytes, ECDSA keys as big integers
(``ec_x``, ``ec_y``, ``ec_d``), RSA keys as Go's ``rsa.PrivateKey``.  A
backup taken from Vault or OpenBao restores here and the other way round.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.engines.transit import asymmetric
from strongroom.engines.transit.policy import CONVERGENT_VERSION, SYMMETRIC_TYPES, KeyVersion, Policy, b64
from strongroom.errors import InvalidRequest
from strongroom.timefmt import rfc3339_ns, to_ns

#: Vault's ``KeyType`` enum.
TYPE_NUMBERS = {
    "aes256-gcm96": 0,
    "ecdsa-p256": 1,
    "ed25519": 2,
    "rsa-2048": 3,
    "rsa-4096": 4,
    "chacha20-poly1305": 5,
    "ecdsa-p384": 6,
    "ecdsa-p521": 7,
    "aes128-gcm96": 8,
    "rsa-3072": 9,
    # OpenBao 2.7.2 (no managed keys) numbers HMAC keys 10; Vault 1.12+ says 11.
    "hmac": 10,
}
TYPE_NAMES = {number: name for name, number in TYPE_NUMBERS.items()}
KDF_HKDF = 1
_EMPTY_ENTRY: dict[str, Any] = {
    "key": None,
    "hmac_key": None,
    "time": "0001-01-01T00:00:00Z",
    "ec_x": None,
    "ec_y": None,
    "ec_d": None,
    "rsa_key": None,
    "rsa_public_key": None,
    "public_key": "",
    "convergent_version": 0,
    "creation_time": 0,
    "certificate_chain": None,
    "external_key_ref": "",
}
_FRACTION = re.compile(r"\.(\d+)")


def _entry(policy: Policy, entry: KeyVersion) -> dict[str, Any]:
    out = dict(_EMPTY_ENTRY)
    out.update(hmac_key=b64(entry.hmac_key), time=rfc3339_ns(to_ns(entry.created)))
    out["creation_time"] = int(entry.created.timestamp())
    if not policy.asymmetric:
        out["key"] = b64(entry.key)
        if policy.convergent_encryption:
            out["convergent_version"] = CONVERGENT_VERSION
        return out
    key = asymmetric.load(entry.key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        out["key"] = asymmetric.export(entry.key, "signing-key")
        out["public_key"] = asymmetric.public_key(entry.key)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.private_numbers()
        out.update(ec_x=numbers.public_numbers.x, ec_y=numbers.public_numbers.y, ec_d=numbers.private_value)
        out["public_key"] = asymmetric.public_key(entry.key)
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        n = key.private_numbers()
        pub = n.public_numbers
        precomputed = {"Dp": n.dmp1, "Dq": n.dmq1, "Qinv": n.iqmp, "CRTValues": []}
        out["rsa_key"] = {"N": pub.n, "E": pub.e, "D": n.d, "Primes": [n.p, n.q], "Precomputed": precomputed}
    return out


def backup(policy: Policy, now: datetime) -> str:
    """The base64 backup of ``policy`` (Vault's ``Policy.Backup``)."""
    if not policy.exportable:
        raise InvalidRequest("exporting is disallowed on the policy")
    if not policy.allow_plaintext_backup:
        raise InvalidRequest("plaintext backup is disallowed on the policy")
    entries = {str(number): _entry(policy, entry) for number, entry in sorted(policy.versions.items())}
    document = {
        "policy": {
            "name": policy.name,
            "keys": entries,
            "derived": policy.derived,
            "kdf": KDF_HKDF if policy.derived else 0,
            "convergent_encryption": policy.convergent_encryption,
            "exportable": policy.exportable,
            "min_decryption_version": policy.min_decryption_version,
            "min_encryption_version": policy.min_encryption_version,
            "latest_version": policy.latest_version,
            "archive_version": policy.latest_version,
            "archive_min_version": 0,
            "min_available_version": policy.min_available_version,
            "deletion_allowed": policy.deletion_allowed,
            "convergent_version": 0,
            "type": TYPE_NUMBERS[policy.type],
            "key_size": policy.key_size,
            "backup_info": {"time": rfc3339_ns(to_ns(now)), "version": policy.latest_version},
            "restore_info": None,
            "allow_plaintext_backup": policy.allow_plaintext_backup,
            "version_template": "",
            "storage_prefix": "",
            "auto_rotate_period": policy.auto_rotate_period * 1_000_000_000,
            "Imported": policy.imported,
            "AllowImportedKeyRotation": policy.allow_imported_key_rotation,
            "soft_deleted": False,
        },
        "archived_keys": {
            "keys": [dict(_EMPTY_ENTRY)]
            + [entries.get(str(n), dict(_EMPTY_ENTRY)) for n in range(1, policy.latest_version + 1)]
        },
    }
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


def _time(text: str) -> datetime:
    # Go writes nanoseconds; datetime keeps microseconds.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).astimezone(UTC)


def _private_der(key_type: str, raw: dict[str, Any]) -> bytes:
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw["key"])[:32])
    elif key_type in asymmetric.CURVES:
        key = ec.derive_private_key(int(raw["ec_d"]), asymmetric.CURVES[key_type])
    else:
        rk = raw["rsa_key"]
        p, q, d = int(rk["Primes"][0]), int(rk["Primes"][1]), int(rk["D"])
        public = rsa.RSAPublicNumbers(int(rk["E"]), int(rk["N"]))
        numbers = rsa.RSAPrivateNumbers(
            p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
        )
        key = numbers.private_key()
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def restore(encoded: str, name: str) -> Policy:
    """The key in a base64 backup, named ``name`` (the backup's own name when empty)."""
    try:
        document = json.loads(base64.b64decode(encoded, validate=True))
        raw = document["policy"]
        key_type = TYPE_NAMES[int(raw["type"])]
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest("failed to restore the policy: invalid backup") from None
    # Vault's older KDF (HMAC-SHA256 counter mode) is not implemented: such keys are refused.
    if raw.get("derived") and (raw.get("kdf") != KDF_HKDF or key_type not in (*SYMMETRIC_TYPES, "ed25519")):
        raise InvalidRequest("failed to restore the policy: unsupported key derivation")
    versions: dict[int, KeyVersion] = {}
    try:
        for number, entry in raw["keys"].items():
            if raw.get("convergent_encryption") and entry.get("convergent_version") not in (0, CONVERGENT_VERSION):
                raise InvalidRequest("failed to restore the policy: unsupported convergent encryption version")
            if key_type in asymmetric.ASYMMETRIC_TYPES:
                material = _private_der(key_type, entry)
            else:
                material = base64.b64decode(entry["key"])
            versions[int(number)] = KeyVersion(
                key=material, hmac_key=base64.b64decode(entry["hmac_key"] or ""), created=_time(entry["time"])
            )
        return Policy(
            name=name or raw["name"],
            type=key_type,
            derived=bool(raw.get("derived")),
            convergent_encryption=bool(raw.get("convergent_encryption")),
            exportable=bool(raw.get("exportable")),
            allow_plaintext_backup=bool(raw.get("allow_plaintext_backup")),
            deletion_allowed=bool(raw.get("deletion_allowed")),
            auto_rotate_period=int(raw.get("auto_rotate_period") or 0) // 1_000_000_000,
            min_decryption_version=int(raw.get("min_decryption_version") or 1),
            min_encryption_version=int(raw.get("min_encryption_version") or 0),
            min_available_version=int(raw.get("min_available_version") or 0),
            latest_version=int(raw["latest_version"]),
            versions=versions,
            key_size=int(raw.get("key_size") or 0) if key_type == "hmac" else 0,
            imported=bool(raw.get("Imported")),
            allow_imported_key_rotation=bool(raw.get("AllowImportedKeyRotation")),
        )
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest("failed to restore the policy: invalid backup") from None
