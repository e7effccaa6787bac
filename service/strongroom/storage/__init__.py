"""Storage: the narrow, untrusted layer under the barrier.

``Backend`` is the whole contract between Strongroom and whatever stores its
bytes.  Everything above it sees only opaque keys and encrypted values; nothing
above ``storage/`` talks to Consul.

Invariants every backend keeps:

* keys are ``/``-separated relative paths, never starting with ``/``;
* ``put``/``delete``/``delete_prefix``/``txn`` return the backend's index after
  the write (Consul's modify index; a counter for ``inmem``), which the API
  hands to clients as ``X-Vault-Index``;
* ``txn`` is atomic: all operations apply or none;
* a *fenced* backend (Consul with a lock session) turns every write into one
  transaction whose first operation is ``check-session`` on the lock key and
  raises ``LockLost`` when it fails, so a deposed node never writes;
* third-party and OS errors are translated here into ``StorageUnavailable``,
  ``RequestTooLarge`` or ``LockLost``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from strongroom.errors import ReadOnly


@dataclass(frozen=True)
class TxnOp:
    """One operation of an atomic transaction: ``set`` (key, value), ``delete`` (key)
    or ``delete-tree`` (key is a prefix)."""

    verb: str
    key: str
    value: bytes | None = None


class Backend(Protocol):
    """The storage contract (see the module docstring for the invariants)."""

    def get(self, key: str) -> bytes | None:
        """The value at ``key``, or None."""

    def put(self, key: str, value: bytes) -> int:
        """Store ``value`` at ``key``; returns the index after the write."""

    def delete(self, key: str) -> int:
        """Remove ``key`` (no error if absent); returns the index after the write."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under ``prefix``; returns the index after the write."""

    def list(self, prefix: str) -> list[str]:
        """Immediate children of ``prefix`` in Vault's style: sorted, sub-folders end with ``/``."""

    def txn(self, ops: Sequence[TxnOp]) -> int:
        """Apply ``ops`` atomically; returns the index after the write."""

    def index(self) -> int:
        """The most recent index this backend has seen (for read-your-writes)."""


class ReadOnlyView:
    """A backend that refuses writes: what a performance standby executes against.

    The first write raises ``ReadOnly``, which aborts the local attempt so the
    request can be forwarded to the active node.
    """

    def __init__(self, backend: Backend):
        self._backend = backend

    def get(self, key: str) -> bytes | None:
        return self._backend.get(key)

    def list(self, prefix: str) -> list[str]:
        return self._backend.list(prefix)

    def index(self) -> int:
        return self._backend.index()

    def put(self, key: str, value: bytes) -> int:
        raise ReadOnly()

    def delete(self, key: str) -> int:
        raise ReadOnly()

    def delete_prefix(self, prefix: str) -> int:
        raise ReadOnly()

    def txn(self, ops: Sequence[TxnOp]) -> int:
        raise ReadOnly()


def children(keys, prefix: str) -> list[str]:
    """Vault-style LIST result from full keys under ``prefix``: immediate children,
    folders with a trailing ``/``, sorted and de-duplicated."""
    out = set()
    for key in keys:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if not rest:
            continue
        head, sep, _ = rest.partition("/")
        out.add(head + sep)
    return sorted(out)
