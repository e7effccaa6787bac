"""A read cache in front of storage, kept coherent across one node's processes.

Why it is safe: only the active node caches.  While it holds the leader lock
no other node can write (every write is fenced by the lock session), so the
only writers to watch are the node's own processes, and they share a
``CoherenceTable``: a small shared-memory file in the node's private socket
directory.  Performance standbys and sealed nodes read storage directly.

The table holds a clock, the *active epoch* (non-zero only while the node is
active; a new value every time it becomes active) and, for each of 65,536
slots (a CRC of a key or of a folder prefix), the clock of the last write that
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

Failure modes: a write whose outcome is unknown (a timeout: Consul may still
commit it) and a process killed between the two bumps of a write leave their
slots marked in flight, so those keys are never served from cache again until
the node restarts (correct, slower).

Memory order: readers take no lock and rely on the writer's stores (the
slot's clock, then its in-flight count) becoming visible in program order, as
x86-64 guarantees; ``caching_supported()`` is False elsewhere, and the node
then runs without the cache.
"""

from __future__ import annotations

import fcntl
import functools
import mmap
import os
import platform
import threading
import time
import zlib
from collections import OrderedDict
from contextlib import contextmanager
from typing import Mapping, Sequence

from strongroom import metrics
from strongroom.errors import InvalidRequest, LockLost, ReadOnly, RequestTooLarge, WriteConflict
from strongroom.storage import TxnOp
from strongroom.storage import written

SLOTS = 1 << 16
_MAGIC = 0x5354524F4E47524D  # "STRONGRM"
# Word offsets in the table (unsigned 64-bit words).
_W_MAGIC, _W_CLOCK, _W_EPOCH, _W_FLUSH, _W_PENDING_ALL, _W_LEASE = 0, 1, 2, 3, 4, 5
_GEN = 8
_PENDING = _GEN + SLOTS
_WORDS = _PENDING + SLOTS
_ALL = -1  # pseudo-slot: the write touches every key

#: Failures that guarantee nothing was written (refused before sending, or rolled back).
_NOT_WRITTEN = (WriteConflict, LockLost, ReadOnly, RequestTooLarge, InvalidRequest)

DEFAULT_CACHE_SIZE = 16384
MAX_CACHED_VALUE = 64 * 1024
#: Bytes of values (and folder keys) one process caches in all, whatever ``size`` allows.
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024


def caching_supported() -> bool:
    """The lock-free reads above are sound on x86-64 (stores are seen in order)."""
    return platform.machine().lower() in ("x86_64", "amd64")


def slot(key: str) -> int:
    """The table slot of a key or folder prefix (stable across processes)."""
    return zlib.crc32(key.encode()) & (SLOTS - 1)


def write_slots(key: str) -> set[int]:
    """Slots a write to ``key`` makes stale: the key and every folder above it."""
    return {slot(key), *_folder_slots(key[: key.rfind("/") + 1])}


@functools.lru_cache(maxsize=4096)
def _folder_slots(folder: str) -> tuple[int, ...]:
    """The slots of ``folder`` (``""`` or ending in ``/``) and of every folder
    above it: the same few folders take most writes, so they are kept."""
    slots = [slot("")]
    end = folder.find("/")
    while end != -1:
        slots.append(slot(folder[: end + 1]))
        end = folder.find("/", end + 1)
    return tuple(slots)


class CoherenceTable:
    """The node's shared invalidation table (see the module docstring).

    Readers never lock; writers serialise their bumps with ``flock`` on the
    file (between processes) and a mutex (between threads), so every process
    opens the file itself (an inherited descriptor would share its lock).
    Every word is an aligned 64-bit integer, read and written whole through a
    ``memoryview``.
    """

    def __init__(self, path: str, *, create: bool = False):
        self.path = path
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        self._fd = os.open(path, flags, 0o600)
        if create:
            os.ftruncate(self._fd, _WORDS * 8 + written.SIZE)
        self._map = mmap.mmap(self._fd, _WORDS * 8 + written.SIZE)
        self._words = memoryview(self._map)[: _WORDS * 8].cast("Q")
        self._written = written.WrittenValues(memoryview(self._map)[_WORDS * 8:])
        self._mutex = threading.Lock()
        if create:
            self._words[_W_MAGIC] = _MAGIC
        elif self._words[_W_MAGIC] != _MAGIC:
            raise ValueError(f"{path} is not a Strongroom coherence table")

    @classmethod
    def create(cls, path: str) -> "CoherenceTable":
        return cls(path, create=True)

    def close(self) -> None:
        self._words.release()
        self._written.release()
        self._map.close()
        os.close(self._fd)

    # -- writers ------------------------------------------------------------

    @contextmanager
    def _locked(self):
        with self._mutex:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield self._words
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def set_active(self, active: bool) -> None:
        """The node became active (a new epoch: nothing cached before counts) or stopped being so."""
        with self._locked() as w:
            w[_W_CLOCK] += 1
            w[_W_EPOCH] = w[_W_CLOCK] if active else 0

    def set_lease(self, until: float) -> None:
        """Cached entries may be served until ``until`` (``time.monotonic()``
        seconds, a clock every process shares): the node core renews it while
        Consul confirms the lock and the node's heartbeats get through."""
        self._words[_W_LEASE] = max(int(until * 1e9), 0)

    def begin_write(self, slots: set[int]) -> tuple[int, int]:
        """Mark a write on ``slots`` in flight; returns (the clock it began at, the epoch)."""
        with self._locked() as w:
            return self._bump(w, slots, +1), w[_W_EPOCH]

    def end_write(self, slots: set[int], began: int, epoch: int, keys: set[int]) -> int | None:
        """The write that began at ``began`` in ``epoch`` is over (done, or
        failed with nothing written).  Returns the clock to stamp what it wrote
        with when it was the only write on the slots of the keys it wrote
        (``keys``, a subset of ``slots``) from beginning to end, no tree was
        deleted meanwhile and the node led throughout (so what it wrote is what
        storage holds for those keys), else None.

        Writes to other keys of the same folders do not count: they change
        what a folder read returns (their bumps of the folder slots see to
        that), not what storage holds for these keys."""
        with self._locked() as w:
            alone = (epoch != 0 and w[_W_EPOCH] == epoch and _ALL not in slots
                     and w[_W_PENDING_ALL] == 0 and w[_W_FLUSH] < began
                     and all(w[_GEN + s] == began and w[_PENDING + s] == 1 for s in keys))
            now = self._bump(w, slots, -1)
            return now if alone else None

    def publish(self, values: Sequence[tuple[str, bytes | None]], index: int, epoch: int, stamp: int) -> None:
        """Show the node's other processes what a write stamped ``stamp`` by
        ``end_write`` left at these keys (see storage/written.py)."""
        with self._locked():
            for key, value in values:
                self._written.put(key, value, index, epoch, stamp)

    @staticmethod
    def _bump(w, slots: set[int], pending: int) -> int:
        w[_W_CLOCK] += 1
        now = w[_W_CLOCK]
        if _ALL in slots:
            w[_W_FLUSH] = now
            w[_W_PENDING_ALL] += pending
        for s in slots:
            if s != _ALL:
                w[_GEN + s] = now
                w[_PENDING + s] += pending
        return now

    # -- readers ------------------------------------------------------------

    def stamp(self) -> tuple[int, int]:
        """(epoch, clock) to record before a storage read; epoch 0: do not cache."""
        w = self._words
        return w[_W_EPOCH], w[_W_CLOCK]

    def recent(self, key: str, s: int) -> tuple[bytes | None, int, int, int] | None:
        """(value, index, epoch, clock) another process published for ``key``
        (slot ``s``) if no write touched it since: served like a cached entry."""
        found = self._written.get(key)
        if found is None or not self.valid(s, found[2], found[3]):
            return None
        return found

    def valid(self, s: int, epoch: int, clock: int) -> bool:
        w = self._words
        return (w[_W_EPOCH] == epoch and w[_PENDING + s] == 0 and w[_W_PENDING_ALL] == 0
                and w[_GEN + s] <= clock and w[_W_FLUSH] <= clock and time.monotonic_ns() < w[_W_LEASE])


class CachedBackend:
    """A ``Backend`` that serves ``get``, ``get_with_index`` and folder
    ``get_prefix`` from a per-process LRU while the ``CoherenceTable`` says
    nothing changed; every write bumps the table around the real write.

    ``size`` 0 caches nothing but still announces writes (the node core's own
    writes: root token, keyring).  Besides ``size`` entries, the values held
    stay under ``max_bytes`` (least recently used go first)."""

    def __init__(self, backend, table: CoherenceTable, size: int = DEFAULT_CACHE_SIZE,
                 max_bytes: int = DEFAULT_CACHE_BYTES):
        self._backend = backend
        self._table = table
        self._size = size
        self._max_bytes = max_bytes
        #: key -> (value, epoch, clock, bytes), least recently used first.
        self._entries: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._hits = metrics.cache_total.labels("storage", "hit")
        self._misses = metrics.cache_total.labels("storage", "miss")

    def __getattr__(self, attr):
        return getattr(self._backend, attr)

    # -- reads --------------------------------------------------------------

    def _cached(self, key: tuple, s: int, load):
        if self._size:
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
        epoch, clock = self._table.stamp()
        value = load()
        if epoch and self._size:
            metrics.inc(self._misses)
            if _size_of(value) <= MAX_CACHED_VALUE:
                with self._lock:
                    self._store(key, value, epoch, clock)
        return value

    def get(self, key: str) -> bytes | None:
        return self.get_with_index(key)[0]

    def get_with_index(self, key: str) -> tuple[bytes | None, int]:
        return self._cached(("k", key), slot(key), lambda: self._backend.get_with_index(key))

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

    def _write(self, ops: Sequence[TxnOp], call) -> int:
        """Run ``call`` (the inner write doing ``ops``) between the table's two bumps."""
        slots: set[int] = set()
        keys: set[int] = set()
        for op in ops:
            if op.verb == "delete-tree":
                slots.add(_ALL)
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
        stamp = self._table.end_write(slots, began, epoch, keys)
        if stamp is not None:
            self._remember(ops, index, epoch, stamp)
        return index

    def _remember(self, ops: Sequence[TxnOp], index: int, epoch: int, stamp: int) -> None:
        """Write-through: keys this process just wrote, alone, are cached as written
        (every ``set`` of a transaction carries its commit index) if they were
        cached already, and published for the node's other processes.  Keys it
        never read (each new KV version) would fill the cache with values nobody
        reads back this way."""
        if not self._size:
            return
        wrote: list[tuple[str, bytes | None]] = []
        with self._lock:
            for op in ops:
                if ("k", op.key) not in self._entries:
                    continue
                value = bytes(op.value or b"")
                if op.verb == "set" and len(value) <= MAX_CACHED_VALUE:
                    self._store(("k", op.key), (value, index), epoch, stamp)
                    wrote.append((op.key, value))
                elif op.verb == "delete":
                    self._store(("k", op.key), (None, 0), epoch, stamp)
                    wrote.append((op.key, None))
        if wrote:
            self._table.publish(wrote, index, epoch, stamp)

    def _store(self, key: tuple, value, epoch: int, clock: int) -> None:
        self._drop(key)
        size = _size_of(value)
        self._entries[key] = (value, epoch, clock, size)
        self._bytes += size
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


def _size_of(value) -> int:
    if isinstance(value, dict):
        return sum(len(k) + len(v[0]) for k, v in value.items())
    raw = value[0]
    return len(raw) if raw else 0
