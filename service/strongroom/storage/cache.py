"""A read cache in front of storage, kept coherent across one node's processes.

Why it is safe: only the active node caches.  While it holds the leader lock
no other node can write (every write is fenced by the lock session), so the
only writers to watch are the node's own processes, and they share a
``CoherenceTable``: a small shared-memory file in the node's private socket
directory.  A performance standby caches too, but learns of writes from the
active node's change log instead (storage/changes.py): its node core bumps
the same table for every change record, entries are checked the same way,
and a request carrying an ``X-Vault-Index`` the log has not reached yet reads
storage.  Sealed nodes and plain standbys read storage directly.

The table (storage/coherence.py) holds a clock, the *active epoch* and, per
slot (a CRC of a key or of a folder prefix), the clock of the last write that
touched it and the number of writes in flight on it.  A cached entry records
the epoch and the clock read *before* its storage read; it may be served only
while

* the epoch is still the same and non-zero (the node has not stepped down or
  lost the lock since; a new active period starts with an empty cache),
* no write is in flight on its slot (a write that is not acknowledged yet may
  already be visible to a reader that went to storage),
* no write to its slot began after the entry's clock (every write bumps its
  slots once before and once after it reaches storage), and
* the node's *lease* has not run out: the node core renews it while its
  heartbeats reach Consul (a TTL after the last one sent: Consul cannot have
  invalidated the lock session before that) and Consul's servers keep
  confirming the lock (within 2.5 s).  A hung node core or a node cut off
  from Consul's servers stops serving from cache by itself.

A write to ``a/b/c`` touches the slots of ``a/b/c``, ``a/b/``, ``a/`` and the
root, so a cached ``get_prefix("a/b/")`` goes stale with it; ``delete_prefix``
and ``delete-tree`` touch everything.  Slot collisions only cost misses.

Write-through: a process that wrote keys while no other write touched those
keys' own slots (checked under the table lock when its write ends; writes to
other keys of the same folders do not count) knows what storage holds for
them, and updates the entries it had cached for them with the values it wrote
and the commit index.  The next read-modify-write of the same key in that
process (a KV v2 metadata update) then costs no storage read.  It also leaves
them in the table file's shared area (storage/written.py), where another
process that misses its own cache finds them, checked against the table like
one of its own entries: the next change of the same secret through another
worker costs no storage read either.

A read that a check-and-set will rely on (``get_with_index``) first lets a
write in flight on its key end, for up to ``WRITE_WAIT``: read at once, the
old value would make its commit conflict once that write lands (a failed
transaction, a pause and a re-read); read after, it is what that write left.
Plain reads never wait.

Failure modes: a write whose outcome is unknown (a timeout: Consul may still
commit it) and a process killed between the two bumps of a write leave their
slots marked in flight, so those keys are never served from cache again until
the node restarts (correct, slower).

The table is storage/coherence.py; it works on x86-64 only
(``caching_supported()``), elsewhere the node runs without the cache.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from strongroom import metrics
from strongroom.errors import InvalidRequest, LockLost, ReadOnly, RequestTooLarge, WriteConflict
from strongroom.storage import Backend, TxnOp
from strongroom.storage.changes import UNCACHED
from strongroom.storage.coherence import ALL, CoherenceTable, slot, write_slots
from strongroom.storage.consistency import note_write, required_index

#: Failures that guarantee nothing was written (refused before sending, or rolled back).
_NOT_WRITTEN = (WriteConflict, LockLost, ReadOnly, RequestTooLarge, InvalidRequest)

DEFAULT_CACHE_SIZE = 16384
MAX_CACHED_VALUE = 64 * 1024
#: Bytes of memory one process's cached entries hold in all, whatever ``size``
#: allows: keys and values with the objects that hold them (``_cost``).
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024
#: Bytes an entry holds besides its key's characters and its value's bytes, on
#: CPython 3.11: the key string (49 by ``sys.getsizeof``), the ("k", key) tuple
#: (56), the entry tuple (72), the (value, index) tuple (56), the bytes object
#: (33), four ints (epoch, clock, cost, index: 28 each) and the OrderedDict's
#: slot and node.  Measured with tracemalloc, caching 500 to 40,000 fresh
#: entries as Consul's answers come: 457 to 502 a key (more just after the
#: OrderedDict grows), 471 an empty folder.
ENTRY_OVERHEAD = 500
#: Bytes each item of a cached folder holds besides its name's characters and
#: its value's bytes: the name string (49), the (value, index) tuple (56), the
#: bytes object (33), the index (28) and the dict's slot.  Measured the same
#: way: 172 to 208 an item, in folders of 1 to 1,000.
FOLDER_ITEM_OVERHEAD = 200
#: How long a read for a check-and-set waits for a write in flight on its key, and how often it looks (seconds).
WRITE_WAIT = 0.05
WRITE_POLL = 0.0005
#: Slots a process remembers as not worth waiting on (then it forgets them all).
BUSY_SLOTS = 1024


class CachedBackend:
    """A ``Backend`` that serves ``get``, ``get_with_index`` and folder
    ``get_prefix`` from a per-process LRU while the ``CoherenceTable`` says
    nothing changed; every write bumps the table around the real write.

    ``size`` 0 caches nothing but still announces writes (the node core's own
    writes: root token, keyring).  Besides ``size`` entries, the memory the
    entries hold (``_cost``: keys, values and their objects) stays under
    ``max_bytes`` (least recently used go first)."""

    def __init__(
        self,
        backend: Backend,
        table: CoherenceTable,
        size: int = DEFAULT_CACHE_SIZE,
        max_bytes: int = DEFAULT_CACHE_BYTES,
        *,
        write_wait: float = WRITE_WAIT,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._backend = backend
        self._write_wait = write_wait
        self._sleep = sleep or time.sleep  # looked up now: gevent patches it before workers build this
        self._table = table
        self._size = size
        self._max_bytes = max_bytes
        #: key -> (value, epoch, clock, cost), least recently used first.
        self._entries: OrderedDict = OrderedDict()
        self._bytes = 0
        #: Slots a write stayed in flight on for a whole ``WRITE_WAIT``: not waited on again.
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self._hits = metrics.cache_total.labels("storage", "hit")
        self._misses = metrics.cache_total.labels("storage", "miss")

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._backend, attr)

    # -- reads --------------------------------------------------------------

    def _cached(self, key: tuple, s: int, load: Callable[[], Any]) -> Any:
        if self._size:
            applied = self._table.applied()
            if applied:  # a performance standby following the change log (storage/changes.py)
                if not key[1] or key[1].startswith(UNCACHED):
                    return load()  # the node core watches these itself: never from the cache
                if required_index() > applied:
                    # The request carries an X-Vault-Index the follower has not
                    # applied yet: storage answers it (and the answer is cached).
                    return self._load(key, load)
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    if self._table.valid(s, entry[1], entry[2]):
                        self._entries.move_to_end(key)
                        metrics.inc(self._hits)
                        return entry[0]
                    self._drop(key)
            if key[0] == "k":
                found = self._table.recent(key[1], s)
                if found is not None:  # another process's write, still the latest
                    value, index, epoch, clock = found
                    with self._lock:
                        self._store(key, (value, index), epoch, clock)
                    metrics.inc(self._hits)
                    return value, index
        return self._load(key, load)

    def _load(self, key: tuple, load: Callable[[], Any]) -> Any:
        """Read storage, and cache the answer if the table allows."""
        epoch, clock = self._table.stamp()
        value = load()
        if epoch and self._size:
            metrics.inc(self._misses)
            if _size_of(value) <= MAX_CACHED_VALUE:
                with self._lock:
                    self._store(key, value, epoch, clock)
        return value

    def get(self, key: str) -> bytes | None:
        # A plain read (no check-and-set follows) does not wait for writes in flight.
        return self._cached(("k", key), slot(key), lambda: self._backend.get_with_index(key))[0]

    def get_with_index(self, key: str) -> tuple[bytes | None, int]:
        s = slot(key)
        self._await_write(s)
        return self._cached(("k", key), s, lambda: self._backend.get_with_index(key))

    # -- values derived from what was read ------------------------------------

    def stamp(self) -> tuple[int, int] | None:
        """To take before reading keys that a value derived from them will be
        kept for (a client token's liveness: auth/token_cache.py); pass it to
        ``unchanged`` before each use.  None when this process caches nothing
        (no cache, or no active epoch): keep nothing then."""
        if not self._size:
            return None
        epoch, clock = self._table.stamp()
        return (epoch, clock) if epoch else None

    def unchanged(self, keys: Sequence[str], stamp: tuple[int, int]) -> bool:
        """Whether a value derived from ``keys``, all read after ``stamp`` was
        taken, may still be used: each key passes what an entry of this cache
        read at ``stamp`` would have to pass to be served (same epoch and lease,
        no write to its slot began since or is in flight; on a performance
        standby, also its change-log rules)."""
        applied = self._table.applied()
        if applied and (required_index() > applied or any(not k or k.startswith(UNCACHED) for k in keys)):
            return False
        epoch, clock = stamp
        valid = self._table.valid
        return all(valid(slot(key), epoch, clock) for key in keys)

    def _await_write(self, s: int) -> None:
        """Let a write in flight on slot ``s`` end (at most ``WRITE_WAIT``) before
        a read that a check-and-set will rely on: read now, the old value would
        make the commit conflict once that write lands, costing a failed
        transaction, a pause and a storage read; read after, it is the value
        that write left (shared by its process).  A slot that stays busy for
        the whole wait (a write whose outcome is unknown stays in flight for
        good) is not waited on again by this process."""
        if not self._size or s in self._busy or not self._table.writing(s):
            return
        deadline = time.monotonic() + self._write_wait
        while self._table.writing(s):
            if time.monotonic() >= deadline:
                if len(self._busy) >= BUSY_SLOTS:
                    self._busy.clear()
                self._busy.add(s)
                return
            self._sleep(WRITE_POLL)

    def get_prefix(self, prefix: str) -> Mapping[str, tuple[bytes, int]]:
        if prefix and not prefix.endswith("/"):
            return self._backend.get_prefix(prefix)  # a partial name: no slot covers it
        # Callers get a copy: a cached answer must not change under them.
        return dict(self._cached(("p", prefix), slot(prefix), lambda: dict(self._backend.get_prefix(prefix))))

    def list(self, prefix: str) -> list[str]:
        return self._backend.list(prefix)

    def index(self) -> int:
        return self._backend.index()

    # -- writes -------------------------------------------------------------

    def _write(self, ops: Sequence[TxnOp], call: Callable[[], int]) -> int:
        """Run ``call`` (the inner write doing ``ops``) between the table's two bumps."""
        slots: set[int] = set()
        keys: set[int] = set()
        for op in ops:
            if op.verb == "delete-tree":
                slots.add(ALL)
            elif op.verb in ("set", "delete"):
                slots |= write_slots(op.key)
                keys.add(slot(op.key))
        if not slots:  # checks only: nothing is written
            return call()
        began, epoch = self._table.begin_write(slots)
        try:
            index = call()
        except _NOT_WRITTEN:
            self._table.end_write(slots, began, epoch, keys)
            raise
        # Any other failure (a timeout, Consul gone) leaves the write's outcome
        # unknown: it may still commit, so its slots stay marked in flight.
        note_write(index)
        wrote = self._read_before(ops)
        stamp = self._table.end_write(slots, began, epoch, keys, wrote, index)
        if stamp is not None:
            self._remember(wrote, index, epoch, stamp)
        return index

    def _read_before(self, ops: Sequence[TxnOp]) -> Sequence[tuple[str, bytes | None]]:
        """(key, value or None) of what ``ops`` leave at keys this process had
        cached: the keys read-modify-writes come back to.  Keys it never read
        (each new KV version) would fill caches with values nobody reads back."""
        if not self._size:
            return []
        wrote: list[tuple[str, bytes | None]] = []
        for op in ops:
            if ("k", op.key) in self._entries:
                if op.verb == "set" and len(op.value or b"") <= MAX_CACHED_VALUE:
                    wrote.append((op.key, bytes(op.value or b"")))
                elif op.verb == "delete":
                    wrote.append((op.key, None))
        return wrote

    def _remember(self, wrote: Sequence[tuple[str, bytes | None]], index: int, epoch: int, stamp: int) -> None:
        """Write-through: what this process just wrote, alone, at keys it had
        cached is cached as written (every ``set`` of a transaction carries its
        commit index); ``end_write`` showed it to the node's other processes."""
        with self._lock:
            for key, value in wrote:
                self._store(("k", key), (value, index if value is not None else 0), epoch, stamp)

    def _store(self, key: tuple, value: Any, epoch: int, clock: int) -> None:
        self._drop(key)
        cost = _cost(key, value)
        self._entries[key] = (value, epoch, clock, cost)
        self._bytes += cost
        while len(self._entries) > self._size or self._bytes > self._max_bytes:
            self._bytes -= self._entries.popitem(last=False)[1][3]

    def _drop(self, key: tuple) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[3]

    def put(self, key: str, value: bytes) -> int:
        return self._write([TxnOp("set", key, value)], lambda: self._backend.put(key, value))

    def delete(self, key: str) -> int:
        return self._write([TxnOp("delete", key)], lambda: self._backend.delete(key))

    def delete_prefix(self, prefix: str) -> int:
        return self._write([TxnOp("delete-tree", prefix)], lambda: self._backend.delete_prefix(prefix))

    def txn(self, ops: Sequence[TxnOp]) -> int:
        return self._write(ops, lambda: self._backend.txn(ops))


def _size_of(value: Any) -> int:
    """Bytes of a value (with a folder's names), as ``MAX_CACHED_VALUE`` counts them."""
    if isinstance(value, dict):
        return sum(len(k) + len(v[0]) for k, v in value.items())
    raw = value[0]
    return len(raw) if raw else 0


def _cost(key: tuple, value: Any) -> int:
    """Bytes of memory the entry ``key`` -> ``value`` holds in this process, as
    ``max_bytes`` counts them: counting only the values' bytes let a budget of
    small values under long keys hold many times that.  A constant per entry and
    per folder item, not a walk of the objects: this runs on every store."""
    items = len(value) if isinstance(value, dict) else 0
    return ENTRY_OVERHEAD + len(key[1]) + items * FOLDER_ITEM_OVERHEAD + _size_of(value)
