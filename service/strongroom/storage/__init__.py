"""Storage: the narrow, untrusted layer under the barrier.

``Backend`` is the whole contract between Strongroom and whatever stores its
bytes.  Everything above it sees only opaque keys and encrypted values; nothing
above ``storage/`` talks to Consul.

Invariants every backend keeps:

* keys are ``/``-separated relative paths, never starting with ``/``;
* ``put``/``delete``/``delete_prefix``/``txn`` return the backend's index after
  the write (Consul's modify index; a counter for ``inmem``), which the API
  hands to clients as ``X-Vault-Index``;
* every key carries a *modify index*: the index of the write that last set it
  (Consul's ``ModifyIndex``), 0 while the key is absent.  ``get_with_index``
  returns it with the value; a value written again gets a larger one, and a key
  deleted and written again never gets an index it had before;
* ``get_prefix`` reads every key under a prefix, with values and modify
  indexes, in one request and from one consistent state: what several keys
  written by one ``txn`` hold is read together, never half before and half
  after another transaction;
* ``txn`` is atomic: all operations apply or none.  Operations apply in order,
  so a check placed after a ``set`` of the same key sees the new value;
* *optimistic concurrency*: a transaction may carry ``check-index`` and
  ``check-not-exists`` operations.  If any check fails nothing is written and
  ``txn`` raises ``WriteConflict``.  This is how read-modify-write cycles stay
  correct across worker processes and nodes, which share no lock: read with
  ``get_with_index``, compute, then commit with a check on the index read, and
  on ``WriteConflict`` start again from the read;
* a *fenced* backend (Consul with a lock session) turns every write into one
  transaction whose first operation is ``check-session`` on the lock key and
  raises ``LockLost`` when it fails, so a deposed node never writes.  A lost
  lock wins over a failed check: a transaction failing both raises ``LockLost``;
* third-party and OS errors are translated here into ``StorageUnavailable``,
  ``RequestTooLarge`` or ``LockLost``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from strongroom.errors import ReadOnly, RequestTooLarge, WriteConflict  # noqa: F401  (WriteConflict re-exported for storage users)

#: Verbs that change storage.
WRITE_VERBS = ("set", "delete", "delete-tree")
#: Verbs that only guard a transaction: they write nothing and fail it with ``WriteConflict``.
CHECK_VERBS = ("check-index", "check-not-exists")
VERBS = WRITE_VERBS + CHECK_VERBS


@dataclass(frozen=True)
class TxnOp:
    """One operation of an atomic transaction.

    * ``set`` (key, value), ``delete`` (key), ``delete-tree`` (key is a prefix);
    * ``check-index`` (key, index): the key's modify index must equal ``index``.
      ``index`` 0 means the key must be absent, matching what ``get_with_index``
      returns for a missing key, so a caller can always check what it read;
    * ``check-not-exists`` (key): the key must be absent.
    """

    verb: str
    key: str
    value: bytes | None = None
    index: int = 0


def check_op(key: str, index: int) -> TxnOp:
    """The check that ``key`` still has the modify ``index`` returned by ``get_with_index``."""
    return TxnOp("check-index", key, index=index) if index else TxnOp("check-not-exists", key)


class Backend(Protocol):
    """The storage contract (see the module docstring for the invariants)."""

    def get(self, key: str) -> bytes | None:
        """The value at ``key``, or None."""

    def get_with_index(self, key: str) -> tuple[bytes | None, int]:
        """The value at ``key`` (None if absent) and its modify index (0 if absent),
        read together: the index is the one of the write that stored that value."""

    def get_prefix(self, prefix: str) -> Mapping[str, tuple[bytes, int]]:
        """Every key starting with ``prefix`` mapped to its value and modify index,
        read in one request from one consistent state (empty when none matches).

        ``prefix`` is a plain string prefix, as for ``delete_prefix``: end it with
        ``/`` to read one folder.  Keys are full backend keys (those ``get`` takes),
        not relative to ``prefix``.  Meant for small folders whose keys are read
        together (one KV v2 secret); nothing bounds the size of the answer."""

    def put(self, key: str, value: bytes) -> int:
        """Store ``value`` at ``key``; returns the index after the write."""

    def delete(self, key: str) -> int:
        """Remove ``key`` (no error if absent); returns the index after the write."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under ``prefix``; returns the index after the write."""

    def list(self, prefix: str) -> list[str]:
        """Immediate children of ``prefix`` in Vault's style: sorted, sub-folders end with ``/``."""

    def txn(self, ops: Sequence[TxnOp]) -> int:
        """Apply ``ops`` atomically; returns the index after the write.

        Raises ``WriteConflict`` (nothing written) when a check fails.  A
        transaction of checks only writes nothing and returns ``index()``."""

    def index(self) -> int:
        """The most recent index this backend has seen (for read-your-writes)."""


# --- HA: what the node core's election needs from storage (Vault's physical.HABackend and Lock) --------


class LockSessions(Protocol):
    """Sessions and the leader lock, for ``core.ha.HAManager``.

    Who may call: only the node core process (one per node), from its election
    thread and on step-down, seal or shutdown; workers never hold a session.

    A *session* is bound to health checks (``serfHealth`` and the node's own TTL
    check, see ``ServiceRegistry``); when any of them fails, storage invalidates
    the session and releases every lock it holds, without the holder's help.

    What is atomic: ``acquire`` and ``release`` are each one compare-and-set on
    the lock key: ``acquire`` succeeds only when no other session holds it, and
    ``release`` only when ``session`` does.  Holding the lock is never assumed:
    ``wait_key`` reports the current holder, and a node that finds another
    holder (or none) is deposed.

    What is fenced: the lock is what fences writes.  A backend built with the
    holder's ``fence`` puts ``check-session`` on the lock key, with the session,
    first in every write transaction, so once the session is invalidated no
    write of that node lands (``LockLost``); see ``Backend``.
    """

    def create_session(self, name: str, checks: list[str], lock_delay: str = "0s", behavior: str = "release") -> str:
        """A new session bound to ``checks`` (used as given: name ``serfHealth``
        explicitly); returns its id.  ``lock_delay`` is a Go duration."""

    def destroy_session(self, session_id: str) -> None:
        """Destroy ``session_id``, releasing its locks; unknown sessions are no error."""

    def acquire(self, key: str, value: bytes, session: str) -> bool:
        """Take the lock ``key`` for ``session`` and write ``value`` (who holds it).

        True when ``session`` holds it now (also when it already did), False when
        another session does; ``LockLost`` when ``session`` was invalidated."""

    def release(self, key: str, session: str) -> bool:
        """Release ``key`` if ``session`` holds it, emptying its value; False otherwise."""

    def wait_key(self, key: str, index: int, wait: str = "5s") -> tuple[int, bytes | None, str | None]:
        """Block until ``key`` changes after ``index`` or ``wait`` passes; returns
        ``(index, value, holder session or None)`` as of the answer."""


class ServiceRegistry(Protocol):
    """The node's liveness check and its entry in the service catalog.

    Who may call: the node core only.  The TTL check is what binds a session to
    the node's life: the node core passes it several times a TTL, and a node
    that stops (killed, hung, partitioned) fails it within one TTL, which
    invalidates its session (``LockSessions``).  Registration is not fenced:
    every change of role re-registers with the new tags, so the catalog
    converges on the truth once the cluster settles.
    """

    def register_ttl_check(self, check_id: str, name: str, ttl: float) -> None:
        """A TTL check on this node that starts passing (a session cannot bind to a failing one)."""

    def pass_check(self, check_id: str) -> None:
        """Heartbeat: the check passes for one more TTL."""

    def deregister_check(self, check_id: str) -> None:
        """Remove the check (invalidates sessions bound to it)."""

    def register_service(
        self, service_id: str, name: str, address: str, port: int, tags: list[str], meta: dict[str, str]
    ) -> None:
        """Register (or re-register with new tags) this node's service instance."""

    def deregister_service(self, service_id: str) -> None:
        """Remove this node's service instance."""

    def service_instances(self, name: str) -> list[dict]:
        """Every registered instance of ``name``: ID, Address, Port, Tags, Meta, Node."""


class PrefixWatch(Protocol):
    """Blocking queries on stored keys, for ``core.invalidation.TableWatcher``.

    Who may call: the node core, one thread per watched prefix.  It reports the
    keys' modify indexes (not a shared "changed" marker), so two writers at once
    can never hide each other's change; it reads, never writes, and needs no fence.
    """

    def wait_prefix(self, prefix: str, index: int, wait: str = "10s") -> tuple[int, dict[str, int]]:
        """Block until a key under ``prefix`` changes after ``index`` or ``wait``
        passes; returns ``(index, {key: modify index})`` (keys as ``get`` takes them)."""


class ReadOnlyView:
    """A backend that refuses writes: what a performance standby executes against.

    The first write raises ``ReadOnly``, which aborts the local attempt so the
    request can be forwarded to the active node.  Any ``txn`` counts as a write,
    even one holding only checks: checks exist to guard a write.
    """

    def __init__(self, backend: Backend):
        self._backend = backend

    def get(self, key: str) -> bytes | None:
        return self._backend.get(key)

    def get_with_index(self, key: str) -> tuple[bytes | None, int]:
        return self._backend.get_with_index(key)

    def get_prefix(self, prefix: str) -> Mapping[str, tuple[bytes, int]]:
        return self._backend.get_prefix(prefix)

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


def value_too_large(size: int, limit: int) -> RequestTooLarge:
    """The 413 for a value over the storage limit.

    It says what the client can act on (the size and the limit) and never the
    storage key: that names the mount's UUID and, for KV v2, the SHA-256 of the
    secret's path, which are the storage layout's business, not the client's."""
    return RequestTooLarge(
        f"the value to store is {size} bytes once encoded and encrypted; storage accepts at most "
        f"{limit} bytes per value: store a smaller value"
    )


def children(keys: Iterable[str], prefix: str) -> list[str]:
    """Vault-style LIST result from full keys under ``prefix``: immediate children,
    folders with a trailing ``/``, sorted and de-duplicated."""
    out = set()
    for key in keys:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        if not rest:
            continue
        head, sep, _ = rest.partition("/")
        out.add(head + sep)
    return sorted(out)
