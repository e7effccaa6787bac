"""The table that keeps one node's read caches coherent (see storage/cache.py).

The table holds a clock, the *active epoch* (non-zero only while the node is
active; a new value every time it becomes active) and, for each of 65,536
slots (a CRC of a key or of a folder prefix), the clock of the last write that
touched it and the number of writes in flight on it; after them, in the same
file, the area where processes leave the values they wrote
(storage/written.py).  It lives in the node's private socket directory; the
node core creates it, every worker opens it.

Memory order: readers take no lock and rely on the writer's stores (the
slot's clock, then its in-flight count) becoming visible in program order, as
x86-64 guarantees; ``caching_supported()`` is False elsewhere, and the node
then runs without the cache.

A performance standby uses the same table with a *following epoch*: its node
core follows the active node's change log (storage/changes.py) and, for every
change record, bumps the slots of the keys it names exactly as a local write
would, then publishes the log index it has applied; entries are served while
the follower's own lease (renewed by each answer of its blocking query) runs.
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
from collections.abc import Sequence

from strongroom.storage import written

SLOTS = 1 << 16
_MAGIC = 0x5354524F4E47524D  # "STRONGRM"
# Word offsets in the table (unsigned 64-bit words).
_W_MAGIC, _W_CLOCK, _W_EPOCH, _W_FLUSH, _W_PENDING_ALL, _W_LEASE = 0, 1, 2, 3, 4, 5
# While a performance standby follows the change log (storage/changes.py):
# the log index it has applied (0: not following) and until when it may serve.
_W_APPLIED, _W_FOLLOW_LEASE = 6, 7
# Which process has a Consul transaction in flight, since when, and which one
# waits for its turn next, since when (``claim_commit``).
_W_COMMIT, _W_COMMIT_SINCE, _W_NEXT, _W_NEXT_SINCE = 8, 9, 10, 11
_GEN = 16
_PENDING = _GEN + SLOTS
_WORDS = _PENDING + SLOTS
#: Where the written values start: on a 64 KiB boundary.  A page fault maps
#: the neighbours (in the same aligned 64 KiB) other processes wrote too, so
#: the index of the area every lookup reads must not share one with a
#: value's page (see storage/written.py).
_AREA = -(-_WORDS * 8 // 65536) * 65536
ALL = -1  # pseudo-slot: the write touches every key
#: A turn to commit (``claim_commit``) held or waited for longer than this is
#: taken as abandoned (its process died or hangs).
COMMIT_TURN_NS = 50_000_000


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

    def __init__(self, path: str, *, create: bool = False, process: int | None = None):
        self.path = path
        #: Who this handle is among the table's users (``claim_commit``): its process's pid.
        self._process = process or os.getpid()
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        self._fd = os.open(path, flags, 0o600)
        if create:
            os.ftruncate(self._fd, _AREA + written.SIZE)
        self._map = mmap.mmap(self._fd, _AREA + written.SIZE)
        self._words = memoryview(self._map)[: _WORDS * 8].cast("Q")
        self._written = written.WrittenValues(memoryview(self._map)[_AREA:])
        self._mutex = threading.Lock()
        if create:
            self._words[_W_MAGIC] = _MAGIC
        elif self._words[_W_MAGIC] != _MAGIC:
            raise ValueError(f"{path} is not a Strongroom coherence table")

    @classmethod
    def create(cls, path: str) -> CoherenceTable:
        return cls(path, create=True)

    def close(self) -> None:
        self._words.release()
        self._written.release()
        self._map.close()
        os.close(self._fd)

    # -- writers ------------------------------------------------------------

    # Writers lock with a mutex (threads) and then flock (processes); plain
    # calls rather than a context manager: a write takes the lock twice.

    def _lock(self) -> None:
        self._mutex.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    def _unlock(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    def set_active(self, active: bool) -> None:
        """The node became active (a new epoch: nothing cached before counts) or stopped being so."""
        w = self._words
        self._lock()
        try:
            w[_W_CLOCK] += 1
            w[_W_APPLIED] = 0
            w[_W_FOLLOW_LEASE] = 0
            w[_W_EPOCH] = w[_W_CLOCK] if active else 0
        finally:
            self._unlock()

    # -- whose turn it is to commit (storage/consul_batch.py) -------------------

    def claim_commit(self) -> bool:
        """Take the node's turn to send a Consul transaction: True when no other
        process holds it (or its hold is older than ``COMMIT_TURN``, a process
        that died or hangs) and no other process waits for it; else False, and
        this process is the next in line unless another one already is.

        Only a hint for group commit: the node's workers each batch their own
        writes, and one transaction in flight for the whole node lets each
        batch grow while the other is committed (half as many transactions,
        each about as costly to Consul: bench/README.md).  Correctness never
        depends on it: a process that waited ``TURN_WAIT`` sends anyway."""
        me, now, w = self._process, time.monotonic_ns(), self._words
        self._lock()
        try:
            held = w[_W_COMMIT] not in (0, me) and now - w[_W_COMMIT_SINCE] < COMMIT_TURN_NS
            queued = w[_W_NEXT] not in (0, me) and now - w[_W_NEXT_SINCE] < COMMIT_TURN_NS
            if held or queued:
                if not queued:
                    w[_W_NEXT], w[_W_NEXT_SINCE] = me, now
                return False
            w[_W_COMMIT], w[_W_COMMIT_SINCE] = me, now
            if w[_W_NEXT] == me:
                w[_W_NEXT] = 0
            return True
        finally:
            self._unlock()

    def release_commit(self) -> None:
        """End this process's turn (its transaction was answered, or it stopped
        waiting for its turn: it is no longer next in line either)."""
        me, w = self._process, self._words
        self._lock()
        try:
            if w[_W_COMMIT] == me:
                w[_W_COMMIT] = 0
            if w[_W_NEXT] == me:
                w[_W_NEXT] = 0
        finally:
            self._unlock()

    # -- the change-log follower of a performance standby (storage/changes.py) --

    def begin_following(self, applied: int, until: float) -> int:
        """A new following epoch (nothing cached before counts) at log index
        ``applied``, served until ``until`` (``time.monotonic()`` seconds); returns it."""
        w = self._words
        self._lock()
        try:
            w[_W_CLOCK] += 1
            w[_W_FOLLOW_LEASE] = max(int(until * 1e9), 0)
            w[_W_APPLIED] = max(applied, 1)
            w[_W_EPOCH] = w[_W_CLOCK]
            return w[_W_EPOCH]
        finally:
            self._unlock()

    def apply_changes(self, epoch: int, keys: Sequence[str], flush: bool, applied: int, until: float) -> bool:
        """Changes of the log up to index ``applied`` reached this node: the
        slots of ``keys`` (and every folder above them; everything when
        ``flush``) go stale, *then* ``applied`` is published, so a reader that
        sees ``applied`` also sees the bumps.  False (nothing done) when
        ``epoch`` is no longer the table's."""
        w = self._words
        self._lock()
        try:
            if epoch == 0 or w[_W_EPOCH] != epoch:
                return False
            if keys or flush:
                w[_W_CLOCK] += 1
                now = w[_W_CLOCK]
                if flush:
                    w[_W_FLUSH] = now
                for key in keys:
                    for s in write_slots(key):
                        w[_GEN + s] = now
            w[_W_APPLIED] = max(applied, 1)
            w[_W_FOLLOW_LEASE] = max(int(until * 1e9), 0)
            return True
        finally:
            self._unlock()

    def stop_following(self, epoch: int) -> None:
        """The follower lost the log (or the node changed role): if ``epoch``
        is still the table's, nothing cached is served any more."""
        w = self._words
        self._lock()
        try:
            if epoch and w[_W_EPOCH] == epoch:
                w[_W_CLOCK] += 1
                w[_W_EPOCH] = 0
                w[_W_APPLIED] = 0
                w[_W_FOLLOW_LEASE] = 0
        finally:
            self._unlock()

    def applied(self) -> int:
        """The change-log index this standby has applied; 0 when it does not follow one."""
        return self._words[_W_APPLIED]

    def set_lease(self, until: float) -> None:
        """Cached entries may be served until ``until`` (``time.monotonic()``
        seconds, a clock every process shares): the node core renews it while
        Consul confirms the lock and the node's heartbeats get through."""
        self._words[_W_LEASE] = max(int(until * 1e9), 0)

    def begin_write(self, slots: set[int]) -> tuple[int, int]:
        """Mark a write on ``slots`` in flight; returns (the clock it began at, the epoch)."""
        self._lock()
        try:
            return self._bump(self._words, slots, +1), self._words[_W_EPOCH]
        finally:
            self._unlock()

    def end_write(
        self,
        slots: set[int],
        began: int,
        epoch: int,
        keys: set[int],
        written: Sequence[tuple[str, bytes | None]] = (),
        index: int = 0,
    ) -> int | None:
        """The write that began at ``began`` in ``epoch`` is over (done, or
        failed with nothing written).  Returns the clock to stamp what it wrote
        with when it was the only write on the slots of the keys it wrote
        (``keys``, a subset of ``slots``) from beginning to end, no tree was
        deleted meanwhile and the node led throughout (so what it wrote is what
        storage holds for those keys), else None.  Then ``written``, (key,
        value or None) pairs that write left at commit ``index``, are shown to
        the node's other processes (storage/written.py).

        Writes to other keys of the same folders do not count: they change
        what a folder read returns (their bumps of the folder slots see to
        that), not what storage holds for these keys."""
        w = self._words
        self._lock()
        try:
            alone = (
                epoch != 0
                and w[_W_EPOCH] == epoch
                and ALL not in slots
                and w[_W_PENDING_ALL] == 0
                and w[_W_FLUSH] < began
                and all(w[_GEN + s] == began and w[_PENDING + s] == 1 for s in keys)
            )
            now = self._bump(w, slots, -1)
            if not alone:
                return None
            for key, value in written:
                self._written.put(key, value, index, epoch, now)
            return now
        finally:
            self._unlock()

    @staticmethod
    def _bump(w: memoryview, slots: set[int], pending: int) -> int:
        w[_W_CLOCK] += 1
        now = w[_W_CLOCK]
        if ALL in slots:
            w[_W_FLUSH] = now
            w[_W_PENDING_ALL] += pending
        for s in slots:
            if s != ALL:
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

    def writing(self, s: int) -> bool:
        """A write on slot ``s`` is in flight (in any process)."""
        return self._words[_PENDING + s] != 0

    def valid(self, s: int, epoch: int, clock: int) -> bool:
        w = self._words
        return (
            w[_W_EPOCH] == epoch
            and w[_PENDING + s] == 0
            and w[_W_PENDING_ALL] == 0
            and w[_GEN + s] <= clock
            and w[_W_FLUSH] <= clock
            and time.monotonic_ns() < (w[_W_FOLLOW_LEASE] if w[_W_APPLIED] else w[_W_LEASE])
        )
