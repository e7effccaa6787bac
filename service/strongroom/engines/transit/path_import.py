"""Bring your own key: ``wrapping_key``, ``keys/<name>/import`` and ``keys/<name>/import_version``.

https://openbao.org/api-docs/secret/transit/#get-wrapping-key
https://openbao.org/api-docs/secret/transit/#import-key
https://openbao.org/docs/secrets/transit/key-management/bring-your-own-key

Vault's format: the client makes an ephemeral AES-256 key, encrypts it with
the mount's RSA-4096 wrapping key (RSA-OAEP, ``hash_function`` for both OAEP
hashes, SHA256 by default) and wraps the key to import with it (AES key wrap
with padding, RFC 5649); ``ciphertext`` is base64 of the two concatenated.
The key itself is raw bytes for symmetric and ``hmac`` keys, PKCS#8 DER for
asymmetric ones.  The wrapping key is made on first use (a write: a
performance standby forwards that first request) and kept in the mount's
storage like the keys.  Vault answers most refusals here with 500; Strongroom
with 400 and the same message.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from strongroom.engines.transit import asymmetric
from strongroom.engines.transit.base import NAME, PathGroup
from strongroom.engines.transit.path_keys import new_policy
from strongroom.engines.transit.policy import (
    HMAC_KEY_SIZE,
    HMAC_KEY_SIZES,
    HMAC_TYPE,
    SYMMETRIC_TYPES,
    KeyVersion,
    Policy,
)
from strongroom.errors import InvalidRequest
from strongroom.fields import to_bool, to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response
from strongroom.storage import TxnOp, WriteConflict, check_op

WRAPPING_KEY = "import/wrapping-key"
WRAPPING_BITS = 4096
WRAPPED_EPHEMERAL_SIZE = WRAPPING_BITS // 8
HASH_FUNCTIONS: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


class ImportPath(PathGroup):
    """The wrapping key's public half, and keys (or new versions) imported under it."""

    def paths(self) -> list[Path]:
        return [
            Path(
                "wrapping_key",
                {logical.READ: self.wrapping_key},
                synopsis="Returns the public key to use for wrapping imported keys",
                description="This path is used to retrieve the RSA-4096 wrapping key for wrapping keys that "
                "are being imported into transit.",
            ),
            Path(
                f"keys/{NAME}/import",
                {logical.UPDATE: self.import_key},
                synopsis="Imports an externally-generated key into a new transit key",
                description="This path is used to import an externally-generated key into Vault. The import "
                "operation creates a new key and cannot be used to replace an existing key.",
            ),
            Path(
                f"keys/{NAME}/import_version",
                {logical.UPDATE: self.import_version},
                synopsis="Imports an externally-generated key into an existing imported key",
                description="This path is used to import a new version of an externally-generated key into an "
                "existing import key. The import_version endpoint only supports importing key material into "
                "existing imported keys.",
            ),
        ]

    # -- the wrapping key -------------------------------------------------------------

    def _wrapping_private(self) -> rsa.RSAPrivateKey:
        """The mount's RSA-4096 wrapping key, made and stored on first use (check-and-set: one wins)."""
        view = self.store.view
        raw, index = view.get_with_index(WRAPPING_KEY)
        if raw is None:
            der = asymmetric.generate("rsa-4096")
            try:
                view.txn(
                    [check_op(WRAPPING_KEY, index), TxnOp("set", WRAPPING_KEY, json.dumps({"key": b64(der)}).encode())]
                )
            except WriteConflict:
                pass  # another request made it first: use that one
            raw = view.get(WRAPPING_KEY)
            assert raw is not None
        key = serialization.load_der_private_key(base64.b64decode(json.loads(raw)["key"]), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    def wrapping_key(self, req: Request) -> Response:
        """``GET wrapping_key``: the public half as PKIX PEM."""
        public = self._wrapping_private().public_key()
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return Response(data={"public_key": pem.decode()})

    def _unwrap(self, data: dict[str, Any]) -> bytes:
        """The key material ``ciphertext`` carries (after ``hash_function`` is checked)."""
        hash_name = to_string("hash_function", data.get("hash_function")) or "SHA256"
        if hash_name not in HASH_FUNCTIONS:
            raise InvalidRequest(f"unknown hash function: {hash_name}")
        text = to_string("ciphertext", data.get("ciphertext"))
        if not text:
            raise InvalidRequest("provided type does not support public_key import")
        try:
            blob = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("error decoding ciphertext: illegal base64 data") from None
        if len(blob) <= WRAPPED_EPHEMERAL_SIZE:
            raise InvalidRequest("provided ciphertext is too short")
        algorithm = HASH_FUNCTIONS[hash_name]()
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)
        try:
            ephemeral = self._wrapping_private().decrypt(blob[:WRAPPED_EPHEMERAL_SIZE], oaep)
        except ValueError:
            raise InvalidRequest("crypto/rsa: decryption error") from None
        try:
            return aes_key_unwrap_with_padding(ephemeral, blob[WRAPPED_EPHEMERAL_SIZE:])
        except (InvalidUnwrap, ValueError):
            raise InvalidRequest("failed to unwrap the key: integrity check failed") from None

    # -- importing ------------------------------------------------------------------------

    def import_key(self, req: Request, name: str, **_: str) -> Response:
        """``POST keys/<name>/import``: a new key whose version 1 is the imported material."""
        data = req.data
        if to_bool("convergent_encryption", data.get("convergent_encryption")):
            raise InvalidRequest("convergent encryption is not supported for imported keys")
        if self.store.get(name) is not None:
            raise InvalidRequest(
                "the import path cannot be used with an existing key; use import-version to rotate an existing "
                "imported key"
            )
        material = self._unwrap(data)
        fresh = new_policy(name, {**data, "key_size": 0})
        entry = imported_version(fresh, material, self.clock(), self.random_bytes)
        fresh.imported = True
        fresh.allow_imported_key_rotation = to_bool("allow_rotation", data.get("allow_rotation"))

        def create(current: Policy | None) -> Policy | None:
            if current is not None:
                raise InvalidRequest(
                    "the import path cannot be used with an existing key; use import-version to rotate an "
                    "existing imported key"
                )
            fresh.latest_version = 1
            fresh.versions = {1: entry}
            return fresh

        index = self.store.update(name, create)[1]
        return Response(status=204, index=index)

    def import_version(self, req: Request, name: str, **_: str) -> Response:
        """``POST keys/<name>/import_version``: the imported material as the key's next version."""
        data = req.data
        current = self.store.get(name)
        if current is None:
            raise InvalidRequest(f"no key found with name {name}; to import a new key, use the import/ endpoint")
        if not current.imported:
            raise InvalidRequest("the import_version endpoint can only be used with an imported key")
        material = self._unwrap(data)
        now = self.clock()

        def add(policy: Policy | None) -> Policy:
            if policy is None:
                raise InvalidRequest(f"no key found with name {name}; to import a new key, use the import/ endpoint")
            if not policy.imported:
                raise InvalidRequest("the import_version endpoint can only be used with an imported key")
            entry = imported_version(policy, material, now, self.random_bytes)
            policy.latest_version += 1
            policy.versions[policy.latest_version] = entry
            return policy

        index = self.store.update(name, add)[1]
        return Response(status=204, index=index)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def imported_version(policy: Policy, material: bytes, now: Any, random_bytes: Any) -> KeyVersion:
    """A version of ``policy`` holding imported ``material``, checked against the key's type."""
    key_type = policy.type
    if key_type in SYMMETRIC_TYPES:
        if len(material) != SYMMETRIC_TYPES[key_type]:
            raise InvalidRequest(f"error importing key: invalid key size {len(material)} bytes for key type {key_type}")
        return KeyVersion(key=material, hmac_key=random_bytes(HMAC_KEY_SIZE), created=now)
    if key_type == HMAC_TYPE:
        if len(material) not in HMAC_KEY_SIZES:
            raise InvalidRequest(f"error importing key: invalid key size {len(material)} bytes for key type hmac")
        if policy.key_size and policy.key_size != len(material):
            raise InvalidRequest("error importing key: the new key version must have the key's key_size")
        policy.key_size = len(material)
        return KeyVersion(key=material, hmac_key=material, created=now)
    try:
        private = serialization.load_der_private_key(material, password=None)
    except (ValueError, TypeError):
        raise InvalidRequest("error parsing asymmetric key: not a PKCS#8 private key") from None
    if not matches(private, key_type):
        raise InvalidRequest(f"error importing key: the key is not a {key_type} private key")
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyVersion(key=der, hmac_key=random_bytes(HMAC_KEY_SIZE), created=now)


def matches(private: object, key_type: str) -> bool:
    """Whether a parsed private key is of the transit ``key_type``."""
    if key_type == "ed25519":
        return isinstance(private, ed25519.Ed25519PrivateKey)
    if key_type in asymmetric.CURVES:
        return (
            isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == asymmetric.CURVES[key_type].name
        )
    if key_type in asymmetric.RSA_BITS:
        return isinstance(private, rsa.RSAPrivateKey) and private.key_size == asymmetric.RSA_BITS[key_type]
    return False
