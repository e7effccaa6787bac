"""The storage read cache (storage/cache.py).

Proves that ``CachedBackend`` serves ``get``, ``get_with_index`` and folder
``get_prefix`` from memory only while its ``CoherenceTable`` says nothing
changed: the node is active in the same epoch, no write is in flight on the
slot, and no write began on it since the entry was read.  A write through any
worker's backend invalidates the others', whether the worker is another handle
on the table file in this process or another process; a backend caches what it
wrote itself only when no other write overlapped it.

The storage under every "worker" is one real ``InmemBackend`` (they share it, as
workers share Consul), subclassed to count reads: a read the cache served leaves
the count unchanged.  A write is held in flight by a ``threading.Event``.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY

from strongroom import metrics
from strongroom.errors import StorageUnavailable, WriteConflict
from strongroom.storage import TxnOp, written
from strongroom.storage.cache import ENTRY_OVERHEAD, FOLDER_ITEM_OVERHEAD, MAX_CACHED_VALUE, CachedBackend
from strongroom.storage.coherence import CoherenceTable, slot, write_slots
from strongroom.storage.inmem import InmemBackend

WAIT = 10  # seconds; only reached when a test is already failing

CACHE, STORAGE = "cache", "storage"


class Hold:
    """A point a storage call stops at until the test releases it."""

    def __init__(self):
        self.reached = threading.Event()
        self.released = threading.Event()

    def stop_here(self) -> None:
        self.reached.set()
        assert self.released.wait(WAIT), "the test never released the call"


class CountingBackend(InmemBackend):
    """The in-memory backend, counting the reads that reach it, whose next call
    can be held at a point (see ``hold``)."""

    def __init__(self):
        super().__init__()
        self.reads = 0
        self._next: dict[str, Hold] = {}
        self._holds: list[Hold] = []

    def hold(self, point: str) -> Hold:
        """Hold the next transaction "before" or "after" it applies (``put`` and
        ``delete`` are transactions too), or the next ``get_with_index`` once it
        has "read" storage."""
        hold = self._next[point] = Hold()
        self._holds.append(hold)
        return hold

    def release_all(self) -> None:
        for hold in self._holds:
            hold.released.set()

    def _reach(self, point: str) -> None:
        hold = self._next.pop(point, None)
        if hold is not None:
            hold.stop_here()

    def get_with_index(self, key):
        self.reads += 1
        value = super().get_with_index(key)
        self._reach("read")
        return value

    def get_prefix(self, prefix):
        self.reads += 1
        return super().get_prefix(prefix)

    def txn(self, ops):
        self._reach("before")
        index = super().txn(ops)
        self._reach("after")
        return index


def fetch(storage: CountingBackend, read, *args):
    """What ``read(*args)`` returned, and whether it was served by the cache or by storage."""
    before = storage.reads
    value = read(*args)
    return value, STORAGE if storage.reads > before else CACHE


@pytest.fixture
def storage() -> CountingBackend:
    return CountingBackend()


@pytest.fixture
def table(tmp_path) -> Iterator[CoherenceTable]:
    """The node's table, created as the node core creates it (the node not yet
    active), with a lease the node core keeps renewing (an hour ahead)."""
    table = CoherenceTable.create(str(tmp_path / "t"))
    table.set_lease(time.monotonic() + 3600)
    yield table
    table.close()


@pytest.fixture
def other_table(table: CoherenceTable) -> Iterator[CoherenceTable]:
    """A second handle on the same file: what another worker process opens."""
    other = CoherenceTable(table.path)
    yield other
    other.close()


@pytest.fixture
def cache(storage: CountingBackend, table: CoherenceTable) -> CachedBackend:
    """This worker's cached backend, on a node that just became active."""
    table.set_active(True)
    return CachedBackend(storage, table)


@pytest.fixture
def other(storage: CountingBackend, other_table: CoherenceTable) -> CachedBackend:
    """Another worker's cached backend over the same storage."""
    return CachedBackend(storage, other_table)


@pytest.fixture
def background(storage: CountingBackend) -> Iterator[ThreadPoolExecutor]:
    """Runs the write (or read) the test holds in flight."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            yield pool
        finally:
            storage.release_all()  # a failed test must not leave its thread blocked


def hits() -> float:
    """The storage cache's hit counter, as the metrics endpoint reports it."""
    return (
        REGISTRY.get_sample_value(metrics.PREFIX + "cache_requests_total", {"cache": "storage", "result": "hit"}) or 0.0
    )


# -- what is cached -------------------------------------------------------------


def test_nothing_is_cached_while_the_node_was_never_active(storage, table):
    backend = CachedBackend(storage, table)
    storage.put("k", b"v")
    storage.put("f/a", b"1")
    for _ in range(3):
        assert fetch(storage, backend.get, "k") == (b"v", STORAGE)
        assert fetch(storage, backend.get_prefix, "f/")[1] == STORAGE


def test_a_second_read_of_a_key_is_served_from_cache(storage, cache):
    index = storage.put("k", b"v")
    hits_before = hits()
    assert fetch(storage, cache.get_with_index, "k") == ((b"v", index), STORAGE)
    assert fetch(storage, cache.get_with_index, "k") == ((b"v", index), CACHE)
    assert fetch(storage, cache.get, "k") == (b"v", CACHE)
    assert hits() == hits_before + 2


def test_an_absent_key_is_cached_too(storage, cache):
    assert fetch(storage, cache.get_with_index, "missing") == ((None, 0), STORAGE)
    assert fetch(storage, cache.get_with_index, "missing") == ((None, 0), CACHE)
    assert fetch(storage, cache.get, "missing") == (None, CACHE)


def test_a_transaction_of_checks_only_writes_nothing_and_invalidates_nothing(storage, cache):
    index = storage.put("k", b"v")
    cache.get("k")
    cache.txn([TxnOp("check-index", "k", index=index)])
    assert fetch(storage, cache.get, "k") == (b"v", CACHE)


# -- a backend's own writes (write-through) ---------------------------------------------


def test_a_backends_own_writes_are_cached_as_written(storage, cache):
    for key in ("k", "gone", "t/a", "t/b"):
        storage.put(key, b"v0")
        cache.get(key)
    put = cache.put("k", b"v1")
    cache.delete("gone")
    txn = cache.txn(
        [
            TxnOp("check-index", "k", index=put),
            TxnOp("set", "t/a", b"a1"),
            TxnOp("delete", "t/b"),
            TxnOp("set", "t/b", b"b1"),
        ]
    )
    assert fetch(storage, cache.get_with_index, "k") == ((b"v1", put), CACHE)
    assert fetch(storage, cache.get_with_index, "gone") == ((None, 0), CACHE)
    assert fetch(storage, cache.get_with_index, "t/a") == ((b"a1", txn), CACHE)
    assert fetch(storage, cache.get_with_index, "t/b") == ((b"b1", txn), CACHE)
    for key in ("k", "gone", "t/a", "t/b"):
        assert cache.get_with_index(key) == InmemBackend.get_with_index(storage, key)


def test_an_own_write_of_a_key_never_read_is_not_cached(storage, cache):
    """New keys (each KV v2 version) would fill the cache with values nobody reads back."""
    put = cache.put("new", b"v")
    cache.txn([TxnOp("set", "t/new", b"a"), TxnOp("delete", "t/gone")])
    assert fetch(storage, cache.get_with_index, "new") == ((b"v", put), STORAGE)
    assert fetch(storage, cache.get, "t/new") == (b"a", STORAGE)
    assert fetch(storage, cache.get, "t/gone") == (None, STORAGE)


def test_a_backends_own_write_makes_its_folder_reads_stale(storage, cache):
    first = storage.put("a/b/c", b"1")
    cache.get_prefix("a/b/")
    second = cache.put("a/b/d", b"2")
    assert fetch(storage, cache.get_prefix, "a/b/") == ({"a/b/c": (b"1", first), "a/b/d": (b"2", second)}, STORAGE)


def test_own_writes_are_not_cached_while_inactive_too_large_or_with_size_zero(storage, table, other_table):
    inactive = CachedBackend(storage, table)
    inactive.put("k", b"v")
    assert fetch(storage, inactive.get, "k") == (b"v", STORAGE)
    table.set_active(True)
    announcer = CachedBackend(storage, other_table, size=0)
    announcer.put("k", b"v")
    assert fetch(storage, announcer.get, "k") == (b"v", STORAGE)
    active = CachedBackend(storage, table)
    active.put("big", b"x" * (MAX_CACHED_VALUE + 1))
    assert fetch(storage, active.get, "big")[1] == STORAGE


def test_an_own_write_overlapped_by_another_write_is_not_cached(storage, cache, other, background):
    """Storage may hold either value then: the write cannot know it is the last."""
    storage.put("k", b"v0")
    after = storage.hold("after")
    mine = background.submit(cache.put, "k", b"mine")
    assert after.reached.wait(WAIT)
    theirs = other.put("k", b"theirs")
    after.released.set()
    mine.result(WAIT)
    assert fetch(storage, cache.get_with_index, "k") == ((b"theirs", theirs), STORAGE)


def test_an_own_write_overlapped_by_a_write_to_a_sibling_key_is_cached(storage, cache, other, background):
    """Concurrent writes to other keys of the same folder (every KV v2 write
    shares the mount's folders) change the folder, not this key."""
    storage.put("f/k", b"v0")
    cache.get("f/k")
    cache.get_prefix("f/")
    after = storage.hold("after")
    mine = background.submit(cache.put, "f/k", b"mine")
    assert after.reached.wait(WAIT)
    theirs = other.put("f/sibling", b"theirs")
    after.released.set()
    index = mine.result(WAIT)
    assert fetch(storage, cache.get_with_index, "f/k") == ((b"mine", index), CACHE)
    assert fetch(storage, cache.get_prefix, "f/") == (
        {"f/k": (b"mine", index), "f/sibling": (b"theirs", theirs)},
        STORAGE,
    )


def test_a_failed_own_write_is_not_cached(storage, cache):
    index = storage.put("k", b"v0")
    with pytest.raises(WriteConflict):
        cache.txn([TxnOp("check-index", "k", index=index + 100), TxnOp("set", "k", b"v1")])
    assert fetch(storage, cache.get_with_index, "k") == ((b"v0", index), STORAGE)


def test_an_own_write_overlapped_by_a_tree_delete_is_not_cached(storage, cache, other, background):
    """A ``delete_prefix`` that ran while this process's write was in flight
    means the write did not run alone: what it wrote is not cached."""
    storage.put("k", b"v0")
    after = storage.hold("after")
    mine = background.submit(cache.put, "k", b"v1")
    assert after.reached.wait(WAIT)  # b"v1" is in storage
    other.delete_prefix("")  # ... and deleted again
    after.released.set()
    mine.result(WAIT)
    assert cache.get_with_index("k") == (None, 0)


def test_an_own_write_from_an_earlier_active_period_is_not_cached(storage, other_table, cache, background):
    """A write acknowledged after the node lost the lock and won it back is not
    cached in the new active period: another node may have written the key in
    between (a new period starts empty)."""
    storage.put("k", b"v0")
    after = storage.hold("after")
    mine = background.submit(cache.put, "k", b"mine")
    assert after.reached.wait(WAIT)  # committed while this node still led
    other_table.set_active(False)  # the node core: lock lost
    storage.put("k", b"theirs")  # the next active node writes (outside this node's table)
    other_table.set_active(True)  # this node leads again
    after.released.set()
    mine.result(WAIT)
    assert cache.get("k") == b"theirs"


# -- another worker's writes ----------------------------------------------------

WRITES = {
    "put": (lambda backend: backend.put("k", b"v1"), b"v1"),
    "delete": (lambda backend: backend.delete("k"), None),
    "txn set": (lambda backend: backend.txn([TxnOp("check-not-exists", "unrelated"), TxnOp("set", "k", b"v1")]), b"v1"),
    "txn delete": (lambda backend: backend.txn([TxnOp("delete", "k")]), None),
}


@pytest.mark.parametrize("write, value", WRITES.values(), ids=WRITES.keys())
def test_another_workers_write_makes_the_entry_stale(storage, cache, other, write, value):
    storage.put("k", b"v0")
    cache.get("k")
    assert fetch(storage, cache.get, "k") == (b"v0", CACHE)
    index = write(other)
    expected = (value, index if value is not None else 0)
    assert fetch(storage, cache.get_with_index, "k") == (expected, STORAGE)
    assert fetch(storage, cache.get_with_index, "k") == (expected, CACHE)


# -- another worker's write-through (storage/written.py) ------------------------------


@pytest.mark.parametrize("write, value", WRITES.values(), ids=WRITES.keys())
def test_a_key_another_worker_wrote_alone_is_served_as_it_wrote_it(storage, cache, other, write, value):
    """The next read-modify-write of a secret often runs in another worker:
    what the writer wrote is taken from the node's shared area, not storage."""
    storage.put("k", b"v0")
    cache.get("k")
    other.get("k")
    index = write(other)
    expected = (value, index if value is not None else 0)
    assert fetch(storage, cache.get_with_index, "k") == (expected, CACHE)
    assert InmemBackend.get_with_index(storage, "k") == expected
    assert fetch(storage, cache.get_with_index, "k") == (expected, CACHE)


@pytest.fixture
def third(storage: CountingBackend, table: CoherenceTable) -> Iterator[CachedBackend]:
    """A third worker, which never read the key the tests write: it publishes nothing."""
    handle = CoherenceTable(table.path)
    yield CachedBackend(storage, handle)
    handle.close()


def test_a_shared_value_is_not_served_once_another_write_touched_the_key(storage, cache, other, third):
    storage.put("k", b"v0")
    other.get("k")
    other.put("k", b"v1")
    index = third.put("k", b"v2")
    assert fetch(storage, cache.get_with_index, "k") == ((b"v2", index), STORAGE)


def test_no_shared_value_is_served_while_a_write_on_the_key_is_in_flight(storage, cache, other, third, background):
    storage.put("k", b"v0")
    other.get("k")
    other.put("k", b"v1")
    after = storage.hold("after")
    theirs = background.submit(third.put, "k", b"v2")
    assert after.reached.wait(WAIT)  # in storage, not acknowledged yet
    assert fetch(storage, cache.get, "k") == (b"v2", STORAGE)
    after.released.set()
    theirs.result(WAIT)


def test_a_shared_value_from_an_earlier_active_period_is_not_served(storage, other_table, cache, other):
    storage.put("k", b"v0")
    other.get("k")
    other.put("k", b"v1")
    other_table.set_active(False)
    storage.put("k", b"theirs")  # another node led meanwhile
    other_table.set_active(True)
    assert fetch(storage, cache.get, "k") == (b"theirs", STORAGE)


def test_a_value_too_large_to_share_is_read_from_storage(storage, cache, other):
    storage.put("k", b"v0")
    other.get("k")
    index = other.put("k", b"x" * written.CAPACITY)
    assert fetch(storage, cache.get_with_index, "k") == ((b"x" * written.CAPACITY, index), STORAGE)


def test_keys_sharing_a_set_are_never_mistaken_for_each_other(storage, cache, other):
    same = [key for key in (f"k{n}" for n in range(100_000)) if written.set_of(key.encode()) == written.set_of(b"k0")]
    keys = same[: written.WAYS + 1]
    for key in keys:
        storage.put(key, b"v0")
        other.get(key)
    indexes = [other.put(key, key.encode()) for key in keys]  # the last takes the oldest's way
    assert fetch(storage, cache.get_with_index, keys[0]) == ((keys[0].encode(), indexes[0]), STORAGE)
    for key, index in zip(keys[1:], indexes[1:], strict=True):
        assert fetch(storage, cache.get_with_index, key) == ((key.encode(), index), CACHE)


# -- folder reads ---------------------------------------------------------------


def test_a_folder_read_is_cached_and_callers_get_a_copy(storage, cache):
    index = storage.put("a/b/c", b"1")
    first, _ = fetch(storage, cache.get_prefix, "a/b/")
    first["a/b/forged"] = (b"x", 1)
    assert fetch(storage, cache.get_prefix, "a/b/") == ({"a/b/c": (b"1", index)}, CACHE)


@pytest.mark.parametrize("key", ["a/b/c", "a/b/new", "a/b/c/d/e", "a/b/"])
@pytest.mark.parametrize("folder", ["a/b/", "a/", ""])
def test_a_write_anywhere_below_a_folder_makes_its_read_stale(storage, cache, other, key, folder):
    storage.put("a/b/c", b"1")
    cache.get_prefix(folder)
    assert fetch(storage, cache.get_prefix, folder)[1] == CACHE
    index = other.put(key, b"2")
    answer, source = fetch(storage, cache.get_prefix, folder)
    assert source == STORAGE
    assert answer[key] == (b"2", index)


def test_a_write_beside_a_folder_leaves_its_read_cached(storage, cache, other):
    assert slot("a/b/") not in write_slots("a/x")  # else this would only prove a collision
    storage.put("a/b/c", b"1")
    cache.get_prefix("a/b/")
    other.put("a/x", b"2")
    assert fetch(storage, cache.get_prefix, "a/b/")[1] == CACHE


def test_a_prefix_that_is_not_a_folder_is_never_cached(storage, cache):
    index = storage.put("a/bc", b"1")
    for _ in range(3):
        assert fetch(storage, cache.get_prefix, "a/b") == ({"a/bc": (b"1", index)}, STORAGE)


FLUSHES = {
    "delete_prefix": lambda backend: backend.delete_prefix("elsewhere/"),
    "txn delete-tree": lambda backend: backend.txn([TxnOp("delete-tree", "elsewhere/")]),
}


@pytest.mark.parametrize("flush", FLUSHES.values(), ids=FLUSHES.keys())
def test_deleting_a_tree_invalidates_everything_cached(storage, cache, other, flush):
    storage.put("a/b/c", b"1")
    storage.put("k", b"2")
    reads = [
        (cache.get, "a/b/c"),
        (cache.get, "k"),
        (cache.get, "absent"),
        (cache.get_prefix, "a/"),
        (cache.get_prefix, ""),
    ]
    for read, arg in reads:
        read(arg)
        assert fetch(storage, read, arg)[1] == CACHE
    flush(other)
    for read, arg in reads:
        assert fetch(storage, read, arg)[1] == STORAGE, (read.__name__, arg)


# -- writes in flight and failed writes ------------------------------------------


def test_no_cache_hit_while_another_workers_write_is_in_flight(storage, cache, other, background):
    storage.put("k", b"v0")
    cache.get("k")
    before = storage.hold("before")
    write = background.submit(other.put, "k", b"v1")
    assert before.reached.wait(WAIT)
    # The entry read now (from the slot's state in flight) must not be served either.
    assert fetch(storage, cache.get, "k") == (b"v0", STORAGE)
    assert fetch(storage, cache.get, "k") == (b"v0", STORAGE)
    before.released.set()
    write.result(WAIT)
    assert fetch(storage, cache.get, "k") == (b"v1", STORAGE)
    assert fetch(storage, cache.get, "k") == (b"v1", CACHE)


class Waits:
    """The pause a read-for-check-and-set takes while a write on its key is in
    flight: records every call (and says so) before pausing for real."""

    def __init__(self):
        self.calls = 0
        self.waiting = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.calls += 1
        self.waiting.set()
        time.sleep(seconds)


def test_a_read_for_check_and_set_waits_for_the_write_in_flight_on_its_key(storage, table, other, background):
    """Read at once, the old value would make the caller's commit conflict
    once the other worker's write lands; read after it, the value is the one
    that write left, taken from the node's shared area, not from storage."""
    table.set_active(True)
    waits = Waits()
    cache = CachedBackend(storage, table, write_wait=WAIT, sleep=waits)
    storage.put("k", b"v0")
    other.get("k")
    before = storage.hold("before")
    write = background.submit(other.put, "k", b"v1")
    assert before.reached.wait(WAIT)
    with ThreadPoolExecutor(max_workers=1) as reader:
        read = reader.submit(fetch, storage, cache.get_with_index, "k")
        assert waits.waiting.wait(WAIT), "the read did not wait for the write in flight"
        before.released.set()
        index = write.result(WAIT)
        assert read.result(WAIT) == ((b"v1", index), CACHE)


def test_a_plain_read_does_not_wait_for_a_write_in_flight(storage, table, other, background):
    table.set_active(True)
    waits = Waits()
    cache = CachedBackend(storage, table, write_wait=WAIT, sleep=waits)
    storage.put("k", b"v0")
    before = storage.hold("before")
    write = background.submit(other.put, "k", b"v1")
    assert before.reached.wait(WAIT)
    assert cache.get("k") == b"v0"
    assert waits.calls == 0
    before.released.set()
    write.result(WAIT)


def test_a_key_whose_write_stays_in_flight_is_waited_on_once_only(storage, table, other, background):
    """A write with an unknown outcome stays in flight for good: after one
    whole wait the process reads that key at once."""
    table.set_active(True)
    waits = Waits()
    cache = CachedBackend(storage, table, write_wait=0.01, sleep=waits)
    storage.put("k", b"v0")
    before = storage.hold("before")
    write = background.submit(other.put, "k", b"v1")
    assert before.reached.wait(WAIT)
    assert cache.get_with_index("k")[0] == b"v0"
    assert waits.calls > 0
    waited = waits.calls
    assert cache.get_with_index("k")[0] == b"v0"
    assert waits.calls == waited
    before.released.set()
    write.result(WAIT)


IN_FLIGHT = {
    "put": (lambda backend: backend.put("k", b"v1"), b"v1"),
    "delete_prefix": (lambda backend: backend.delete_prefix(""), None),
}


@pytest.mark.parametrize("write, value", IN_FLIGHT.values(), ids=IN_FLIGHT.keys())
def test_a_value_read_before_a_write_applied_is_not_served_once_storage_has_the_new_one(
    storage, cache, other, background, write, value
):
    """The case the in-flight counts exist for: the entry was stamped after the
    write began, so only the count keeps it from being served while storage
    already holds the new value (which another reader may have seen)."""
    storage.put("k", b"v0")
    before, after = storage.hold("before"), storage.hold("after")
    done = background.submit(write, other)
    assert before.reached.wait(WAIT)
    assert fetch(storage, cache.get, "k") == (b"v0", STORAGE)
    before.released.set()
    assert after.reached.wait(WAIT)  # applied, not yet acknowledged
    assert fetch(storage, cache.get, "k") == (value, STORAGE)
    after.released.set()
    done.result(WAIT)
    assert fetch(storage, cache.get, "k") == (value, STORAGE)
    assert fetch(storage, cache.get, "k") == (value, CACHE)


def test_a_write_that_lands_while_a_read_returns_makes_that_read_stale(storage, cache, other, background):
    """The entry's clock is the one read before storage was: a write that
    completes between the storage read and caching its answer is not missed."""
    storage.put("k", b"v0")
    hold = storage.hold("read")
    read = background.submit(cache.get, "k")
    assert hold.reached.wait(WAIT)  # storage answered b"v0"; not cached yet
    other.put("k", b"v1")
    hold.released.set()
    assert read.result(WAIT) == b"v0"
    assert fetch(storage, cache.get, "k") == (b"v1", STORAGE)


def test_a_failed_write_leaves_the_table_consistent(storage, table, cache, other):
    index = storage.put("k", b"v0")
    cache.get("k")
    with pytest.raises(WriteConflict):
        other.txn([TxnOp("check-index", "k", index=index + 100), TxnOp("set", "k", b"v1")])
    assert table.valid(slot("k"), *table.stamp())  # nothing left in flight
    assert fetch(storage, cache.get_with_index, "k") == ((b"v0", index), STORAGE)
    assert fetch(storage, cache.get_with_index, "k") == ((b"v0", index), CACHE)


def test_a_write_that_may_still_commit_does_not_leave_a_stale_entry(table, other_table):
    """A transaction that times out (``StorageUnavailable``) may still commit in
    Consul after the client gave up: its keys stay uncacheable, so a value read
    in between is never served once storage holds the new one."""

    class TimingOut(CountingBackend):
        """Storage whose transactions, while ``timing_out``, raise as a timeout does
        and are kept in ``late`` for the test to commit afterwards."""

        def __init__(self):
            super().__init__()
            self.timing_out = False
            self.late: list = []

        def txn(self, ops):
            if self.timing_out:
                self.late.append(ops)
                raise StorageUnavailable("consul at 127.0.0.1:8500 unreachable during txn (TimeoutError)")
            return super().txn(ops)

    storage = TimingOut()
    table.set_active(True)
    cache, other = CachedBackend(storage, table), CachedBackend(storage, other_table)
    storage.put("k", b"v0")
    storage.timing_out = True
    with pytest.raises(StorageUnavailable):
        other.put("k", b"v1")
    storage.timing_out = False
    assert fetch(storage, cache.get, "k") == (b"v0", STORAGE)  # not committed yet
    storage.txn(storage.late.pop())  # Consul commits it now
    assert cache.get("k") == b"v1"


# -- the active epoch ---------------------------------------------------------------


def test_stepping_down_stops_cache_hits_at_once(storage, other_table, cache):
    storage.put("k", b"v")
    cache.get("k")
    other_table.set_active(False)  # the node core's handle
    assert fetch(storage, cache.get, "k") == (b"v", STORAGE)
    assert fetch(storage, cache.get, "k") == (b"v", STORAGE)


@pytest.mark.parametrize("stepped_down", [True, False], ids=["after stepping down", "re-elected"])
def test_a_new_active_period_does_not_serve_what_the_last_one_cached(storage, other_table, cache, stepped_down):
    storage.put("k", b"v")
    cache.get("k")
    if stepped_down:
        other_table.set_active(False)
    other_table.set_active(True)
    assert fetch(storage, cache.get, "k") == (b"v", STORAGE)
    assert fetch(storage, cache.get, "k") == (b"v", CACHE)


# -- size bounds ----------------------------------------------------------------------


def test_the_least_recently_used_entry_is_evicted(storage, table):
    table.set_active(True)
    cache = CachedBackend(storage, table, size=2)
    for key in ("a", "b", "a", "c"):  # "a" used again after "b": "b" is the least recently used
        cache.get(key)
    assert fetch(storage, cache.get, "a")[1] == CACHE
    assert fetch(storage, cache.get, "c")[1] == CACHE
    assert fetch(storage, cache.get, "b")[1] == STORAGE


def test_size_zero_caches_nothing_but_its_writes_still_invalidate(storage, other_table, cache):
    announcer = CachedBackend(storage, other_table, size=0)  # the node core's backend
    storage.put("k", b"v0")
    for _ in range(2):
        assert fetch(storage, announcer.get, "k") == (b"v0", STORAGE)
        assert fetch(storage, announcer.get_prefix, "")[1] == STORAGE
    cache.get("k")
    announcer.put("k", b"v1")
    assert fetch(storage, cache.get, "k") == (b"v1", STORAGE)


def test_values_larger_than_the_limit_are_not_cached(storage, cache):
    storage.put("big", b"x" * (MAX_CACHED_VALUE + 1))
    storage.put("fits", b"x" * MAX_CACHED_VALUE)
    storage.put("f/a", b"x" * (MAX_CACHED_VALUE // 2))
    storage.put("f/b", b"x" * (MAX_CACHED_VALUE // 2))  # with the key names, over the limit
    for read, arg in [(cache.get, "big"), (cache.get_prefix, "f/")]:
        read(arg)
        assert fetch(storage, read, arg)[1] == STORAGE
    cache.get("fits")
    assert fetch(storage, cache.get, "fits") == (b"x" * MAX_CACHED_VALUE, CACHE)


def test_the_least_recently_used_values_go_past_the_byte_budget(storage, table):
    table.set_active(True)
    cache = CachedBackend(storage, table, max_bytes=3 * (ENTRY_OVERHEAD + 1 + 1000))  # three 1,000-byte values
    for key in ("a", "b", "c", "d"):
        storage.put(key, key.encode() * 1000)
    for key in ("a", "b", "c"):
        cache.get(key)
    cache.get("a")  # now the most recently used
    cache.get("d")  # a fourth: "b", the least recently used, goes
    assert fetch(storage, cache.get, "a") == (b"a" * 1000, CACHE)
    assert fetch(storage, cache.get, "b") == (b"b" * 1000, STORAGE)
    cache.put("a", b"A" * 2500)  # cached, rewritten: its new size counts
    assert fetch(storage, cache.get, "a")[1] == CACHE
    assert fetch(storage, cache.get, "c")[1] == STORAGE


#: What a one-letter key's entry with a 10-byte value costs against ``max_bytes``.
SHORT = ENTRY_OVERHEAD + 1 + 10


def cache_three_short_entries(storage: CountingBackend, table: CoherenceTable) -> CachedBackend:
    """A cache whose byte budget just holds "a", "b" and "c" (10-byte values),
    with "a" used again after them: "b", then "c", are the least recently used."""
    table.set_active(True)
    cache = CachedBackend(storage, table, max_bytes=3 * SHORT)
    for key in ("a", "b", "c", "a"):
        storage.put(key, b"x" * 10)
        cache.get(key)
    return cache


def test_a_long_key_counts_against_the_byte_budget(storage, table):
    cache = cache_three_short_entries(storage, table)
    long = "k" * ENTRY_OVERHEAD  # a 1-byte value, but an entry costing about two short ones
    storage.put(long, b"x")
    cache.get(long)
    assert fetch(storage, cache.get, "a")[1] == CACHE
    assert fetch(storage, cache.get, long)[1] == CACHE
    assert fetch(storage, cache.get, "c")[1] == STORAGE
    assert fetch(storage, cache.get, "b")[1] == STORAGE


def test_a_folders_items_count_against_the_byte_budget(storage, table):
    cache = cache_three_short_entries(storage, table)
    storage.put("f/1", b"x")
    storage.put("f/2", b"x")
    folder = ENTRY_OVERHEAD + len("f/") + 2 * (FOLDER_ITEM_OVERHEAD + len("f/1") + 1)
    assert SHORT < folder <= 2 * SHORT  # with its items' overhead: "b" and "c" go, "a" stays
    cache.get_prefix("f/")
    assert fetch(storage, cache.get, "a")[1] == CACHE
    assert fetch(storage, cache.get_prefix, "f/")[1] == CACHE
    assert fetch(storage, cache.get, "c")[1] == STORAGE
    assert fetch(storage, cache.get, "b")[1] == STORAGE


def test_the_byte_budget_bounds_the_memory_the_entries_hold(storage, table):
    """Tiny values under long keys: what the cached entries hold in this
    process (traced by tracemalloc: key strings, tuples, ints, the LRU's
    nodes; the values are storage's) stays near ``max_bytes``.  Counting only
    the values' bytes, all 4,000 entries stayed: about 2 MiB."""
    table.set_active(True)
    budget = 64 * 1024
    cache = CachedBackend(storage, table, max_bytes=budget)
    long = "k" * 200
    for i in range(4000):
        storage.put(f"{long}{i}", b"v")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(4000):
            cache.get(f"{long}{i}")  # a key string of its own, as a request's is
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= 2 * budget
    assert fetch(storage, cache.get, f"{long}3999")[1] == CACHE


# -- the table across processes --------------------------------------------------------


def write_in_child(path: str, key: str, begun, finish) -> None:
    """Another worker process: opens the table and announces a write to ``key``,
    held in flight until ``finish`` is set."""
    table = CoherenceTable(path)
    slots = write_slots(key)
    began, epoch = table.begin_write(slots)
    begun.set()
    assert finish.wait(WAIT)
    table.end_write(slots, began, epoch, {slot(key)})
    table.close()


def test_a_write_in_another_process_invalidates_entries_stamped_before_it(table):
    assert slot("elsewhere") not in write_slots("a/b/c")
    fork = multiprocessing.get_context("fork")
    begun, finish = fork.Event(), fork.Event()
    table.set_active(True)
    before = table.stamp()
    assert table.valid(slot("a/b/c"), *before)
    child = fork.Process(target=write_in_child, args=(table.path, "a/b/c", begun, finish))
    child.start()
    try:
        assert begun.wait(WAIT)
        during = table.stamp()
        for key in ("a/b/c", "a/b/", "a/", ""):
            assert not table.valid(slot(key), *before), key
            assert not table.valid(slot(key), *during), key  # in flight
        assert table.valid(slot("elsewhere"), *during)
    finally:
        finish.set()
        child.join(timeout=WAIT)
        if child.exitcode is None:
            child.kill()
            child.join()
    assert child.exitcode == 0
    for key in ("a/b/c", "a/b/", "a/", ""):
        assert not table.valid(slot(key), *before), key
        assert not table.valid(slot(key), *during), key
        assert table.valid(slot(key), *table.stamp()), key


def test_a_write_makes_the_key_and_every_folder_above_it_stale():
    assert write_slots("a/b/c") == {slot("a/b/c"), slot("a/b/"), slot("a/"), slot("")}
    assert write_slots("k") == {slot("k"), slot("")}


# -- the lease --------------------------------------------------------------------


def test_nothing_is_served_from_cache_once_the_lease_ran_out(storage, table, cache):
    """A hung node core or a node cut off from Consul's servers stops renewing the
    lease: cached entries are no longer served, whatever the epoch says."""
    storage.put("k", b"v")
    cache.get("k")
    assert fetch(storage, cache.get, "k") == (b"v", CACHE)
    table.set_lease(time.monotonic() - 0.001)
    assert fetch(storage, cache.get, "k") == (b"v", STORAGE)
    assert fetch(storage, cache.get, "k") == (b"v", STORAGE)
    table.set_lease(time.monotonic() + 60)  # renewed: what is read from now on is cached again
    cache.get("k")
    assert fetch(storage, cache.get, "k") == (b"v", CACHE)
