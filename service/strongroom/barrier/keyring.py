"""The keyring: the root key and the barrier's encryption keys, one per term.

Mirrors Vault's keyring (``vault/keyring.go``): every rotation adds a key under
the next *term* and makes it active; older terms stay so values written under
them remain readable.  The keyring is stored encrypted under the root key
(``core/keyring``) and lives in process memory only once unsealed.

A ``Keyring`` is immutable: rotation returns a new object, so a reader holding a
reference never sees a half-updated keyring and swapping keyrings is a single
reference assignment.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.barrier import aead
from strongroom.barrier.aead import KEY_SIZE
from strongroom.errors import IntegrityError


@dataclass(frozen=True)
class Key:
    """One barrier key: AES-256 ``value`` used for writes while its ``term`` is active.

    ``value`` is left out of ``repr`` so keys never reach logs or tracebacks.
    """

    term: int
    value: bytes = field(repr=False)
    install_time: datetime

    @functools.cached_property
    def cipher(self) -> AESGCM:
        """This key's AES-256-GCM cipher, built at its first use (``aead.cipher``)."""
        return aead.cipher(self.value)


@dataclass(frozen=True)
class Keyring:
    """The root key plus every term's key; ``active_term`` names the key for writes.

    Invariants (checked on construction, so a deserialised keyring is sound):
    the root key and every key are 32 bytes, each key is filed under its own
    term, terms are positive, and the active term is present.  ``keys`` is a
    read-only mapping.
    """

    root_key: bytes = field(repr=False)
    keys: Mapping[int, Key]
    active_term: int

    def __post_init__(self) -> None:
        _check_bytes("root key", self.root_key)
        if not self.keys:
            raise IntegrityError("keyring holds no keys")
        for term, key in self.keys.items():
            if not isinstance(key, Key) or key.term != term or not _is_term(term):
                raise IntegrityError(f"keyring entry for term {term!r} is inconsistent")
            _check_bytes(f"key for term {term}", key.value)
            if not isinstance(key.install_time, datetime) or key.install_time.tzinfo is None:
                raise IntegrityError(f"key for term {term} has no timezone-aware install time")
        if self.active_term not in self.keys:
            raise IntegrityError(f"active term {self.active_term!r} is not in the keyring")
        # A private copy behind a read-only proxy: neither the caller's dict nor
        # anyone holding this keyring can change it afterwards.
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    @classmethod
    def generate(cls, clock: Callable[[], datetime], randbytes: Callable[[int], bytes] = os.urandom) -> Keyring:
        """A fresh keyring (at ``sys/init``): new root key, term 1 active."""
        first = Key(term=1, value=randbytes(KEY_SIZE), install_time=clock())
        return cls(root_key=randbytes(KEY_SIZE), keys={1: first}, active_term=1)

    def rotate(self, clock: Callable[[], datetime], randbytes: Callable[[int], bytes] = os.urandom) -> Keyring:
        """A new keyring with one more term (``sys/rotate``), active from now on.

        Older terms are kept: values already stored under them stay readable.
        """
        term = max(self.keys) + 1
        keys = dict(self.keys)
        keys[term] = Key(term=term, value=randbytes(KEY_SIZE), install_time=clock())
        return Keyring(root_key=self.root_key, keys=keys, active_term=term)

    def active_key(self) -> Key:
        """The key that encrypts every new write."""
        return self.keys[self.active_term]

    def key(self, term: int) -> Key | None:
        """The key of ``term``, or None if this keyring never had it."""
        return self.keys.get(term)

    def with_root_key(self, root_key: bytes) -> Keyring:
        """The same terms under a different root key (root key rotation)."""
        return replace(self, root_key=root_key)

    def serialize(self) -> bytes:
        """JSON with base64 key material and ISO 8601 times; secret, so it must
        only ever be stored encrypted (under the root key) or sent over the
        node's private socket."""
        document = {
            "root_key": _b64(self.root_key),
            "active_term": self.active_term,
            "keys": [
                {"term": key.term, "value": _b64(key.value), "install_time": key.install_time.isoformat()}
                for key in sorted(self.keys.values(), key=lambda k: k.term)
            ],
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def deserialize(cls, data: bytes) -> Keyring:
        """Parse ``serialize`` output; anything malformed raises ``IntegrityError``."""
        try:
            document = json.loads(data)
            keys = {}
            for entry in document["keys"]:
                term = entry["term"]
                if term in keys:
                    raise IntegrityError(f"keyring lists term {term} twice")
                keys[term] = Key(
                    term=term, value=_unb64(entry["value"]), install_time=datetime.fromisoformat(entry["install_time"])
                )
            return cls(root_key=_unb64(document["root_key"]), keys=keys, active_term=document["active_term"])
        except IntegrityError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, binascii.Error):
            raise IntegrityError("keyring is not a valid serialized keyring") from None


def _is_term(term: object) -> bool:
    return isinstance(term, int) and not isinstance(term, bool) and 0 < term < 2**32


def _check_bytes(what: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != KEY_SIZE:
        raise IntegrityError(f"{what} must be {KEY_SIZE} bytes")


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _unb64(value: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError("expected a base64 string")
    return base64.b64decode(value, validate=True)
