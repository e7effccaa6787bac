"""A transit key: its versions, its settings and the symmetric crypto on them (Vault's ``sdk/helper/keysutil``).

https://github.com/openbao/openbao/blob/main/sdk/helper/keysutil/policy.go

Byte compatibility with Vault (checked by known-answer tests against OpenBao):

* ciphertext ``vault:v<N>:<base64(nonce || ciphertext || tag)>``, 12-byte nonce,
  AES-GCM or ChaCha20-Poly1305, ``associated_data`` as the AEAD's AD;
* a derived key's encryption key is HKDF-SHA256 (no salt, the ``context`` as
  info) of the version's key, 16 or 32 bytes; with convergent encryption
  (version 3, the only one new keys get) 32 more bytes are derived and are the
  HMAC-SHA256 key whose output over the plaintext gives the nonce (its first 12
  bytes), so the same plaintext and context give the same ciphertext;
* HMACs use the version's separate 32-byte ``hmac_key``.

A ``Policy`` is plain data: the methods that change it (``rotate``,
``set_config``...) only change the object; the store decides whether and how it
is written.  Encrypt and decrypt never change it, so a performance standby
serves them over read-only storage, and one parsed ``Policy`` serves many
requests (``store.KeyStore.get``): it keeps the AEAD object of each underived
version it used, so a request on a known key builds no cipher.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.engines.transit import asymmetric
from strongroom.engines.transit.asymmetric import SignOptions
from strongroom.errors import InvalidRequest
from strongroom.timefmt import rfc3339, rfc3339_ns, to_ns

#: Symmetric key types and their key size in bytes.
SYMMETRIC_TYPES = {"aes128-gcm96": 16, "aes256-gcm96": 32, "chacha20-poly1305": 32}
DEFAULT_TYPE = "aes256-gcm96"
#: A key that only computes HMACs with ``key_size`` random bytes (its ``key`` is its ``hmac_key``).
HMAC_TYPE = "hmac"
HMAC_KEY_SIZES = range(32, 513)
KEY_TYPES = frozenset(SYMMETRIC_TYPES) | asymmetric.ASYMMETRIC_TYPES | {HMAC_TYPE}
NONCE_SIZE = 12
HMAC_KEY_SIZE = 32
KDF_HKDF_SHA256 = "hkdf_sha256"
#: The convergent version Vault gives new keys (the nonce from an HMAC keyed by derived bytes).
CONVERGENT_VERSION = 3
PREFIX = "vault:v"

MISSING_CONTEXT = (
    "missing 'context' for key derivation; the key was created using a derived key, which means additional, "
    "per-request information must be included in order to perform operations with the key"
)
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"

#: HMAC and hash algorithms by Vault's names.
HASHES: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha2-224": hashlib.sha224,
    "sha2-256": hashlib.sha256,
    "sha2-384": hashlib.sha384,
    "sha2-512": hashlib.sha512,
    "sha3-224": hashlib.sha3_224,
    "sha3-256": hashlib.sha3_256,
    "sha3-384": hashlib.sha3_384,
    "sha3-512": hashlib.sha3_512,
}

RandomBytes = Callable[[int], bytes]
Aead = AESGCM | ChaCha20Poly1305


def b64(raw: bytes) -> str:
    """Standard base64 with padding, as Go's ``base64.StdEncoding``."""
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def b64decode(text: str) -> bytes:
    """Standard base64 as Go's ``base64.StdEncoding`` decodes it (CR and LF skipped); ValueError
    with Go's message, ``illegal base64 data at input byte N``, when it is not.

    Canonical input (whole quanta, padding only at the end, no line breaks:
    every ciphertext and plaintext a client sends) is decoded in C at once;
    anything else is walked as Go walks it, for Go's error offset."""
    decoded = _canonical(text)
    if decoded is not None:
        return decoded
    offset = _go_base64_error(text)
    if offset is not None:
        raise ValueError(f"illegal base64 data at input byte {offset}")
    return base64.b64decode(text.replace("\r", "").replace("\n", ""))


def _canonical(text: str) -> bytes | None:
    """The bytes of canonical base64 ``text`` (what ``(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?``
    matches), None for anything else.  ``strict_mode`` alone also takes padding after a whole
    quantum (``AAAA=``, ``AAAA====``): the length and the place of the first ``=`` rule those out.
    Several times cheaper than that regular expression, which cost more than the decode."""
    n = len(text)
    if n % 4 or text.find("=", 0, n - 2) != -1:
        return None
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (ValueError, binascii.Error):
        return None


_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _go_base64_error(text: str) -> int | None:
    """Where Go's decoder reports a ``CorruptInputError`` in ``text``, or None when it decodes."""
    n, si = len(text), 0
    while True:
        j = 0
        while j < 4:
            if si == n:
                return None if j == 0 else si - j
            ch = text[si]
            si += 1
            if ch in "\r\n":
                continue
            if ch in _BASE64_ALPHABET:
                j += 1
                continue
            if ch != "=" or j in (0, 1):
                return si - 1
            if j == 2:
                while si < n and text[si] in "\r\n":
                    si += 1
                if si == n:
                    return n
                if text[si] != "=":
                    return si - 1
                si += 1
            while si < n and text[si] in "\r\n":
                si += 1
            return si if si < n else None


@dataclass
class KeyVersion:
    """One version of a key: the secret ``key``, the ``hmac_key`` and when it was made."""

    key: bytes
    hmac_key: bytes
    created: datetime

    def to_json(self) -> dict[str, Any]:
        return {"key": b64(self.key), "hmac_key": b64(self.hmac_key), "time": rfc3339(self.created)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> KeyVersion:
        return cls(
            key=base64.b64decode(raw["key"]),
            hmac_key=base64.b64decode(raw["hmac_key"]),
            created=datetime.fromisoformat(raw["time"].replace("Z", "+00:00")),
        )


@dataclass
class Policy:
    """A named transit key with all its versions (Vault's ``keysutil.Policy``)."""

    name: str
    type: str = DEFAULT_TYPE
    derived: bool = False
    convergent_encryption: bool = False
    exportable: bool = False
    allow_plaintext_backup: bool = False
    deletion_allowed: bool = False
    auto_rotate_period: int = 0
    min_decryption_version: int = 1
    min_encryption_version: int = 0
    min_available_version: int = 0
    latest_version: int = 0
    versions: dict[int, KeyVersion] = field(default_factory=dict)
    #: Bytes of an ``hmac`` key (0 for every other type).
    key_size: int = 0
    #: The newest versions came from ``import``/``import_version`` (a rotation here clears it, as in
    #: Vault), and whether this key may be rotated here at all.
    imported: bool = False
    allow_imported_key_rotation: bool = False
    #: version -> (the key bytes it was built from, its AEAD): underived symmetric versions used so far.
    _ciphers: dict[int, tuple[bytes, Aead]] = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- lifecycle -------------------------------------------------------------------

    def rotate(self, now: datetime, random_bytes: RandomBytes = os.urandom) -> None:
        """Add a new latest version with fresh key material (refused for an imported key
        that does not allow rotation; afterwards the key no longer counts as imported)."""
        if self.imported and not self.allow_imported_key_rotation:
            raise InvalidRequest(f"imported key {self.name} does not allow rotation within Vault")
        self.imported = False
        if self.type == HMAC_TYPE:
            if self.key_size not in HMAC_KEY_SIZES:
                raise InvalidRequest("invalid key size for HMAC key, must be between 32 and 512 bytes")
            key = random_bytes(self.key_size)
            self.latest_version += 1
            self.versions[self.latest_version] = KeyVersion(key=key, hmac_key=key, created=now)
            return
        self.latest_version += 1
        key = asymmetric.generate(self.type) if self.asymmetric else random_bytes(SYMMETRIC_TYPES[self.type])
        self.versions[self.latest_version] = KeyVersion(key=key, hmac_key=random_bytes(HMAC_KEY_SIZE), created=now)

    @property
    def asymmetric(self) -> bool:
        """Whether the key signs (ed25519, ECDSA, RSA) rather than seals."""
        return self.type in asymmetric.ASYMMETRIC_TYPES

    @property
    def rsa(self) -> bool:
        return self.type in asymmetric.RSA_BITS

    def trim(self, min_available_version: int) -> None:
        """Delete the versions below ``min_available_version`` (Vault's rules and messages)."""
        if min_available_version < self.min_available_version:
            raise InvalidRequest("minimum available version cannot be decremented")
        if self.min_encryption_version == 0:
            raise InvalidRequest("minimum available version cannot be set when minimum encryption version is not set")
        if min_available_version > self.min_encryption_version:
            raise InvalidRequest("minimum available version cannot be greater than minimum encryption version")
        if min_available_version > self.min_decryption_version:
            raise InvalidRequest("minimum available version cannot be greater than minimum decryption version")
        if min_available_version < 0:
            raise InvalidRequest("minimum available version cannot be negative")
        for version in [v for v in self.versions if v < min_available_version]:
            del self.versions[version]
        self.min_available_version = min_available_version

    # -- versions --------------------------------------------------------------------

    def encryption_version(self, requested: int = 0) -> int:
        """The version an encryption uses: ``requested`` (0: the latest), within the policy's bounds."""
        if requested and requested < self.min_encryption_version:
            raise InvalidRequest("requested version for encryption is less than the minimum encryption key version")
        if requested > self.latest_version:
            raise InvalidRequest("requested version for encryption is higher than the latest key version")
        if requested < 0:
            raise InvalidRequest("invalid key version")
        return requested or self.latest_version

    def version(self, number: int) -> KeyVersion:
        entry = self.versions.get(number)
        if entry is None:
            raise InvalidRequest("invalid key version")
        return entry

    def key_bytes(self, version: int, context: bytes, size: int) -> bytes:
        """The key material of ``version``: the stored key, or ``size`` bytes derived from it with ``context``."""
        entry = self.version(version)
        if not self.derived:
            return entry.key
        if not context:
            raise InvalidRequest(MISSING_CONTEXT)
        return HKDF(algorithm=hashes.SHA256(), length=size, salt=None, info=context).derive(entry.key)

    # -- encrypt / decrypt -----------------------------------------------------------

    def _aead(self, key: bytes) -> Aead:
        return ChaCha20Poly1305(key) if self.type == "chacha20-poly1305" else AESGCM(key)

    def _version_cipher(self, version: int) -> Aead:
        """The AEAD of an underived symmetric ``version``, built at its first use by this object.
        Checked against the version's key bytes, so a version replaced in this object is never
        served with the old key's cipher."""
        entry = self.version(version)
        cached = self._ciphers.get(version)
        if cached is not None and cached[0] is entry.key:
            return cached[1]
        aead = self._aead(entry.key[: SYMMETRIC_TYPES[self.type]])
        self._ciphers[version] = (entry.key, aead)
        return aead

    def encrypt(
        self,
        plaintext: bytes,
        *,
        context: bytes = b"",
        version: int = 0,
        associated_data: bytes | None = None,
        random_bytes: RandomBytes = os.urandom,
    ) -> tuple[str, int]:
        """``plaintext`` sealed under ``version`` (0: the latest) in Vault's format, and the version used."""
        if self.type == HMAC_TYPE:
            raise InvalidRequest(f"message encryption not supported for key type {self.type}")
        version = self.encryption_version(version)
        if self.asymmetric:
            if not self.rsa:
                raise InvalidRequest(f"message encryption not supported for key type {self.type}")
            return f"{PREFIX}{version}:{b64(asymmetric.rsa_encrypt(self.version(version).key, plaintext))}", version
        convergent = self.convergent_encryption
        if not self.derived and not convergent:
            nonce = random_bytes(NONCE_SIZE)
            sealed = self._version_cipher(version).encrypt(nonce, plaintext, associated_data or None)
            return f"{PREFIX}{version}:{b64(nonce + sealed)}", version
        enc_size = SYMMETRIC_TYPES[self.type]
        material = self.key_bytes(version, context, enc_size + (HMAC_KEY_SIZE if convergent else 0))
        key = material[:enc_size]
        if convergent:
            nonce = hmac.new(material[enc_size:], plaintext, hashlib.sha256).digest()[:NONCE_SIZE]
        else:
            nonce = random_bytes(NONCE_SIZE)
        sealed = self._aead(key).encrypt(nonce, plaintext, associated_data or None)
        return f"{PREFIX}{version}:{b64(nonce + sealed)}", version

    def parse_versioned(self, value: str) -> tuple[int, str]:
        """The version and payload of a ``vault:vN:...`` value, checked against the policy's versions."""
        if not value.startswith(PREFIX):
            raise InvalidRequest("invalid ciphertext: no prefix")
        parts = value[len(PREFIX) :].split(":", 1)
        if len(parts) != 2:
            raise InvalidRequest("invalid ciphertext: wrong number of fields")
        try:
            version = int(parts[0])
        except ValueError:
            raise InvalidRequest("invalid ciphertext: version number could not be decoded") from None
        version = version or 1
        if version < self.min_decryption_version:
            raise InvalidRequest(TOO_OLD)
        if version > self.latest_version:
            raise InvalidRequest("invalid ciphertext: version is too new")
        return version, parts[1]

    def decrypt(self, ciphertext: str, *, context: bytes = b"", associated_data: bytes | None = None) -> bytes:
        """The plaintext of a ``vault:vN:`` ciphertext made by this key."""
        if self.type == HMAC_TYPE:
            raise InvalidRequest(f"message decryption not supported for key type {self.type}")
        version, payload = self.parse_versioned(ciphertext)
        raw = _canonical(payload)
        if raw is None:  # the rest of what Go's decoder takes here, or an error
            try:
                raw = base64.b64decode(payload.encode("utf-8"), validate=True)
            except (ValueError, UnicodeEncodeError):
                raise InvalidRequest("invalid ciphertext: could not decode base64") from None
        if self.asymmetric:
            if not self.rsa:
                raise InvalidRequest(f"message decryption not supported for key type {self.type}")
            return asymmetric.rsa_decrypt(self.version(version).key, raw)
        convergent = self.convergent_encryption
        if not self.derived and not convergent:
            aead = self._version_cipher(version)
        else:
            enc_size = SYMMETRIC_TYPES[self.type]
            aead = self._aead(
                self.key_bytes(version, context, enc_size + (HMAC_KEY_SIZE if convergent else 0))[:enc_size]
            )
        if len(raw) < NONCE_SIZE + 16:
            raise InvalidRequest("invalid ciphertext length")
        try:
            return aead.decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], associated_data or None)
        except InvalidTag:
            raise InvalidRequest("cipher: message authentication failed") from None

    # -- hmac ------------------------------------------------------------------------

    def hmac(self, data: bytes, algorithm: str, version: int = 0) -> str:
        """``vault:vN:<base64 HMAC>`` of ``data`` with the HMAC key of ``version`` (0: the latest)."""
        version = version or self.latest_version
        if version < self.min_encryption_version:
            raise InvalidRequest("cannot use a key version lower than the minimum encryption version")
        entry = self.versions.get(version)
        if entry is None or version > self.latest_version:
            raise InvalidRequest("invalid key version")
        digest = hmac.new(entry.hmac_key, data, HASHES[algorithm]).digest()
        return f"{PREFIX}{version}:{b64(digest)}"

    def verify_hmac(self, data: bytes, algorithm: str, value: str) -> bool:
        """Whether ``value`` (``vault:vN:...``) is the HMAC of ``data`` under its version."""
        version, encoded = self.parse_versioned(value)
        try:
            given = base64.b64decode(encoded.encode("utf-8"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise InvalidRequest("unable to decode hmac: illegal base64 data") from None
        entry = self.versions.get(version)
        if entry is None:
            raise InvalidRequest("invalid key version")
        return hmac.compare_digest(given, hmac.new(entry.hmac_key, data, HASHES[algorithm]).digest())

    # -- sign / verify ---------------------------------------------------------------

    def signing_key(self, version: int, context: bytes) -> bytes:
        """The private key (PKCS#8 DER) that signs for ``version``: derived from ``context`` for a derived key."""
        der = self.version(version).key
        if not self.derived:
            return der
        if not context:
            raise InvalidRequest(MISSING_CONTEXT)
        return asymmetric.derive_ed25519(der, context)

    def sign(self, data: bytes, options: SignOptions, version: int = 0, context: bytes = b"") -> tuple[str, int]:
        """``vault:vN:<signature>`` of ``data`` with ``version`` (0: the latest), and the version used."""
        if not self.asymmetric:
            raise InvalidRequest(f"key type {self.type} does not support signing")
        version = version or self.latest_version
        if version < self.min_encryption_version:
            raise InvalidRequest("requested version for signing is less than the minimum encryption key version")
        if version > self.latest_version:
            raise InvalidRequest("requested version for signing is higher than the latest key version")
        signature = asymmetric.sign(self.signing_key(version, context), data, options)
        return f"{PREFIX}{version}:{signature}", version

    def verify_signature(self, data: bytes, signature: str, options: SignOptions, context: bytes = b"") -> bool:
        """Whether ``signature`` (``vault:vN:...``) signs ``data`` under its version."""
        if not self.asymmetric:
            raise InvalidRequest(f"key type {self.type} does not support verification")
        version, encoded = self.parse_versioned(signature)
        return asymmetric.verify(self.signing_key(version, context), data, encoded, options)

    def version_view(self, number: int, entry: KeyVersion, context: bytes = b"") -> Any:
        """One entry of the read's ``keys`` map: the creation time (symmetric) or the public key
        (of a derived key: the one derived for ``context``, "" without one)."""
        if not self.asymmetric:
            return int(entry.created.timestamp())
        if self.derived:
            public = asymmetric.public_key(self.signing_key(number, context)) if context else ""
        else:
            public = asymmetric.public_key(entry.key)
        return {
            "certificate_chain": "",
            "creation_time": rfc3339_ns(to_ns(entry.created)),
            "name": asymmetric.key_name(self.type),
            "public_key": public,
        }

    # -- views -----------------------------------------------------------------------

    def render(self, context: bytes = b"") -> dict[str, Any]:
        """Vault's read of ``keys/<name>``."""
        data: dict[str, Any] = {
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "auto_rotate_period": self.auto_rotate_period,
            "deletion_allowed": self.deletion_allowed,
            "derived": self.derived,
            "exportable": self.exportable,
            "imported_key": self.imported,
            "keys": {
                str(number): self.version_view(number, entry, context)
                for number, entry in sorted(self.versions.items())
                if number >= self.min_decryption_version
            },
            "latest_version": self.latest_version,
            "min_available_version": self.min_available_version,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "name": self.name,
            "soft_deleted": False,
            "supports_decryption": self.type in SYMMETRIC_TYPES or self.rsa,
            "supports_derivation": self.type in SYMMETRIC_TYPES or self.type == "ed25519",
            "supports_encryption": self.type in SYMMETRIC_TYPES or self.rsa,
            "supports_signing": self.asymmetric,
            "type": self.type,
        }
        if self.imported:
            data["imported_key_allow_rotation"] = self.allow_imported_key_rotation
        if self.type == HMAC_TYPE:
            # OpenBao shows an HMAC key's size and none of its versions.
            del data["keys"]
            data["key_size"] = self.key_size
        if self.derived:
            data["kdf"] = KDF_HKDF_SHA256
            data["convergent_encryption"] = self.convergent_encryption
            if self.convergent_encryption:
                # Vault reports -1: the version lives in each key entry.
                data["convergent_encryption_version"] = -1
        return data

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "derived": self.derived,
            "kdf": KDF_HKDF_SHA256,
            "convergent_encryption": self.convergent_encryption,
            "convergent_version": CONVERGENT_VERSION,
            "exportable": self.exportable,
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "deletion_allowed": self.deletion_allowed,
            "auto_rotate_period": self.auto_rotate_period,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "min_available_version": self.min_available_version,
            "latest_version": self.latest_version,
            "keys": {str(number): entry.to_json() for number, entry in self.versions.items()},
            "key_size": self.key_size,
            "imported": self.imported,
            "allow_imported_key_rotation": self.allow_imported_key_rotation,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Policy:
        return cls(
            name=raw["name"],
            type=raw["type"],
            derived=raw["derived"],
            convergent_encryption=raw["convergent_encryption"],
            exportable=raw["exportable"],
            allow_plaintext_backup=raw["allow_plaintext_backup"],
            deletion_allowed=raw["deletion_allowed"],
            auto_rotate_period=raw["auto_rotate_period"],
            min_decryption_version=raw["min_decryption_version"],
            min_encryption_version=raw["min_encryption_version"],
            min_available_version=raw["min_available_version"],
            latest_version=raw["latest_version"],
            versions={int(number): KeyVersion.from_json(entry) for number, entry in raw["keys"].items()},
            key_size=raw.get("key_size", 0),
            imported=raw.get("imported", False),
            allow_imported_key_rotation=raw.get("allow_imported_key_rotation", False),
        )
