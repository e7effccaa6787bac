"""The security barrier and its prefixed views.

``Barrier`` is the one place where Strongroom's data crosses into untrusted
storage (Vault's ``SecurityBarrier``, ``vault/barrier_aes_gcm.go``): every value
is encrypted on the way down and authenticated on the way up, and nothing
passes while the node is sealed.  ``BarrierView`` confines a caller (a secrets
engine, an auth method, a core store) to one prefix (Vault's ``BarrierView``,
``vault/barrier_view.go``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from strongroom import metrics
from strongroom.barrier import aead
from strongroom.barrier.keyring import Keyring
from strongroom.errors import IntegrityError, InvalidRequest, Sealed
from strongroom.storage import Backend, TxnOp


class Barrier:
    """Encrypts every value between the core and a storage ``Backend``.

    Invariants:

    * a value is stored as ``aead.encrypt(active key, active term, value, aad=path)``
      with the backend key (utf-8) as associated data, so a value copied to
      another key, altered, or written under an unknown term raises
      ``IntegrityError`` instead of being returned;
    * values are read with the key of the term recorded in their header, so
      after a rotation old values stay readable and new writes use the new term;
    * every operation raises ``Sealed`` while no keyring is set;
    * keys and listings pass through unchanged (they are not secret in Vault's
      model either), and writes return the backend's index;
    * ``get_prefix`` authenticates every value with its own key as associated
      data, exactly as ``get`` would; values are decrypted when first looked
      up (``DecryptedEntries``), so reading a folder costs the decryption of
      the entries used, not of all of them;
    * modify indexes and the checks of a transaction (``check-index``,
      ``check-not-exists``) pass through unchanged: they concern the stored
      ciphertext's key, which is the plaintext's key, and carry no value.
      A failed check surfaces as the backend's ``WriteConflict``.

    No plaintext is kept between reads (as in Vault, whose caches hold
    ciphertext): every read decrypts and authenticates what storage (or the
    node's read cache, which holds ciphertext) returned.  A decryption costs
    ~2 µs with the key's cipher built once (``Key.cipher``); a memo of the last
    plaintext read at each path saved that and held about 1 KiB of a worker's
    memory per secret served (bench/README.md).

    Thread-safe: each operation reads the keyring reference once, and
    ``set_keyring`` is a single reference assignment of an immutable keyring.
    """

    def __init__(self, backend: Backend):
        self._backend = backend
        self._keyring: Keyring | None = None

    def set_keyring(self, keyring: Keyring | None) -> None:
        """Install the keyring (unseal, rotation) or forget it (None: seal)."""
        self._keyring = keyring

    @property
    def keyring(self) -> Keyring | None:
        """The keyring in use, None while sealed."""
        return self._keyring

    @property
    def sealed(self) -> bool:
        """True while no keyring is set."""
        return self._keyring is None

    def _unsealed(self) -> Keyring:
        keyring = self._keyring
        if keyring is None:
            raise Sealed()
        return keyring

    @staticmethod
    def _encrypt(keyring: Keyring, path: str, value: bytes) -> bytes:
        key = keyring.active_key()
        return aead.seal(key.cipher, key.term, value, path.encode("utf-8"))

    @staticmethod
    def _decrypt(keyring: Keyring, path: str, blob: bytes) -> bytes:
        term = aead.term_of(blob)
        key = keyring.key(term)
        if key is None:
            raise IntegrityError(f"a stored value is encrypted under unknown keyring term {term}")
        return aead.open_sealed(key.cipher, blob, path.encode("utf-8"))

    def get(self, path: str) -> bytes | None:
        """The decrypted value at ``path``, or None if nothing is stored there."""
        keyring = self._unsealed()
        with metrics.timed(metrics.barrier_seconds, "get"):
            blob = self._backend.get(path)
            if blob is None:
                return None
            return self._decrypt(keyring, path, blob)

    def get_with_index(self, path: str) -> tuple[bytes | None, int]:
        """The decrypted value at ``path`` (None if absent) and its modify index (0 if absent)."""
        keyring = self._unsealed()
        with metrics.timed(metrics.barrier_seconds, "get"):
            blob, index = self._backend.get_with_index(path)
            if blob is None:
                return None, index
            return self._decrypt(keyring, path, blob), index

    def get_prefix(self, prefix: str) -> DecryptedEntries:
        """Every key starting with ``prefix`` (full keys) with its value and modify
        index, from one backend read; each value is decrypted on first access."""
        keyring = self._unsealed()
        with metrics.timed(metrics.barrier_seconds, "get_prefix"):
            blobs = self._backend.get_prefix(prefix)
        return DecryptedEntries(blobs, lambda path, blob: Barrier._decrypt(keyring, path, blob))

    def put(self, path: str, value: bytes) -> int:
        """Encrypt ``value`` for ``path`` under the active term and store it."""
        keyring = self._unsealed()
        with metrics.timed(metrics.barrier_seconds, "put"):
            return self._backend.put(path, self._encrypt(keyring, path, value))

    def delete(self, path: str) -> int:
        """Remove ``path`` (no error if absent)."""
        self._unsealed()
        with metrics.timed(metrics.barrier_seconds, "delete"):
            return self._backend.delete(path)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under ``prefix``."""
        self._unsealed()
        with metrics.timed(metrics.barrier_seconds, "delete_prefix"):
            return self._backend.delete_prefix(prefix)

    def list(self, prefix: str) -> list[str]:
        """Immediate children of ``prefix`` (Vault-style, folders end with ``/``)."""
        self._unsealed()
        with metrics.timed(metrics.barrier_seconds, "list"):
            return self._backend.list(prefix)

    def txn(self, ops: Sequence[TxnOp]) -> int:
        """Apply ``ops`` atomically, encrypting the value of every ``set``; checks
        and deletes pass through as they are."""
        keyring = self._unsealed()
        with metrics.timed(metrics.barrier_seconds, "txn"):
            encrypted_ops = [
                TxnOp(op.verb, op.key, self._encrypt(keyring, op.key, op.value or b""), op.index)
                if op.verb == "set"
                else op
                for op in ops
            ]
            return self._backend.txn(encrypted_ops)

    def index(self) -> int:
        """The backend's most recent index (for read-your-writes)."""
        self._unsealed()
        return self._backend.index()


class BarrierView:
    """The barrier (or any object with its interface) seen through ``prefix``.

    Keys are relative to ``prefix``; a view can neither read nor list anything
    outside it.  Keys containing ``..`` are refused as in Vault, so no caller can
    even appear to climb out.  A view of a view nests its prefixes.  Engines
    receive only a view of their mount.
    """

    def __init__(self, parent: Barrier | BarrierView, prefix: str):
        if not isinstance(prefix, str) or not prefix.endswith("/") or prefix.startswith("/"):
            raise InvalidRequest(f"barrier view prefix {prefix!r} must be relative and end with '/'")
        _check_key(prefix)
        if isinstance(parent, BarrierView):
            # Flatten nested views: one hop to the parent, same visible keys.
            prefix = parent.prefix + prefix
            parent = parent._parent
        self._parent: Barrier = parent
        self._prefix = prefix

    @property
    def prefix(self) -> str:
        """The full prefix of this view in the parent's key space."""
        return self._prefix

    def _full(self, key: str) -> str:
        _check_key(key)
        return self._prefix + key

    def get(self, key: str) -> bytes | None:
        """The value at ``prefix + key``, or None."""
        return self._parent.get(self._full(key))

    def get_with_index(self, key: str) -> tuple[bytes | None, int]:
        """The value at ``prefix + key`` (or None) and its modify index (0 if absent)."""
        return self._parent.get_with_index(self._full(key))

    def get_prefix(self, prefix: str) -> Mapping[str, tuple[bytes, int]]:
        """Every key starting with ``self.prefix + prefix``, relative to the view,
        with its value and modify index (see ``Barrier.get_prefix``)."""
        return _Relative(self._parent.get_prefix(self._full(prefix)), self._prefix)

    def put(self, key: str, value: bytes) -> int:
        """Store ``value`` at ``prefix + key``."""
        return self._parent.put(self._full(key), value)

    def delete(self, key: str) -> int:
        """Remove ``prefix + key`` (no error if absent)."""
        return self._parent.delete(self._full(key))

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under ``self.prefix + prefix`` (all of the view for "")."""
        return self._parent.delete_prefix(self._full(prefix))

    def list(self, prefix: str = "") -> list[str]:
        """Immediate children of ``self.prefix + prefix``, relative to it."""
        return self._parent.list(self._full(prefix))

    def txn(self, ops: Sequence[TxnOp]) -> int:
        """Apply ``ops`` atomically with every key taken relative to the view
        (checks included; their index and the values are passed on unchanged)."""
        # A new TxnOp rather than dataclasses.replace: several times cheaper, for every operation of every write.
        return self._parent.txn([TxnOp(op.verb, self._full(op.key), op.value, op.index) for op in ops])

    def index(self) -> int:
        """The parent's most recent index."""
        return self._parent.index()


class DecryptedEntries(Mapping):
    """What ``Barrier.get_prefix`` returns: ``{key: (value, modify index)}``.

    Keys and modify indexes are known at once; a value is decrypted and
    authenticated (its key as associated data, its term's key) when it is
    first looked up, then kept.  A value that fails raises ``IntegrityError``
    at that lookup, so a tampered entry is never returned, while entries
    nobody looks at cost nothing.  Membership, iteration and ``modify_index``
    decrypt nothing.  The keyring is the one in use when the read was made.
    """

    def __init__(self, blobs: Mapping[str, tuple[bytes, int]], decrypt: Callable[[str, bytes], bytes]):
        self._blobs = blobs
        self._decrypt = decrypt
        self._opened: dict[str, tuple[bytes, int]] = {}

    def __getitem__(self, key: str) -> tuple[bytes, int]:
        opened = self._opened.get(key)
        if opened is None:
            blob, index = self._blobs[key]
            opened = self._opened[key] = (self._decrypt(key, blob), index)
        return opened

    def __contains__(self, key: object) -> bool:
        return key in self._blobs

    def __iter__(self) -> Iterator[str]:
        return iter(self._blobs)

    def __len__(self) -> int:
        return len(self._blobs)

    def modify_index(self, key: str) -> int:
        """The modify index of ``key`` without decrypting its value (KeyError if absent)."""
        return self._blobs[key][1]


class _Relative(Mapping):
    """A ``get_prefix`` answer of the parent seen with the view's ``prefix`` removed
    from every key; values are looked up (and so decrypted) only on access."""

    def __init__(self, entries: Mapping[str, tuple[bytes, int]], prefix: str):
        self._entries = entries
        self._prefix = prefix

    def __getitem__(self, key: str) -> tuple[bytes, int]:
        return self._entries[self._prefix + key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._prefix + key in self._entries

    def __iter__(self) -> Iterator[str]:
        strip = len(self._prefix)
        return (key[strip:] for key in self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _check_key(key: str) -> None:
    if not isinstance(key, str):
        raise InvalidRequest("storage key must be a string")
    if ".." in key:
        raise InvalidRequest("relative paths not supported")
