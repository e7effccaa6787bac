"""The area where a node's processes leave the values they wrote (storage/written.py).

How the cache uses it is tested in test_cache.py; here: a reader never takes
half of one write and half of another, whatever the writer is doing.
"""

from __future__ import annotations

import ctypes
import mmap
import multiprocessing
import os
import time

from strongroom.storage.coherence import CoherenceTable, slot
from strongroom.storage.written import (
    CAPACITY,
    INDEX_AT,
    RING,
    RING_AT,
    RING_UNITS,
    SETS,
    SIZE,
    WAYS,
    WrittenValues,
    set_of,
)

WRITES = 20_000


def value_of(index: int) -> bytes:
    """A value whose length and bytes both name its index (a torn read shows)."""
    return str(index).encode() * (1 + index % 97)


def area() -> tuple[mmap.mmap, WrittenValues]:
    shared = mmap.mmap(-1, SIZE)  # anonymous and shared: a forked child writes the same pages
    return shared, WrittenValues(memoryview(shared))


def test_the_index_every_lookup_reads_shares_no_64_kib_with_the_ring():
    assert (INDEX_AT + SETS * WAYS) * 8 <= RING_AT
    assert RING_AT % 65536 == 0


def test_what_was_put_is_got_back_for_that_key_only():
    _, values = area()
    assert values.get("k") is None
    assert values.put("k", b"v", 7, 1, 3)
    assert values.get("k") == (b"v", 7, 1, 3)
    assert values.put("k", None, 9, 1, 4)
    assert values.get("k") == (None, 0, 1, 4)  # deleted: storage reports index 0
    assert values.get("kk") is None


def test_an_older_write_does_not_replace_a_later_one_of_the_same_key():
    _, values = area()
    assert values.put("k", b"new", 9, 1, 20)
    assert not values.put("k", b"old", 8, 1, 10)
    assert values.get("k") == (b"new", 9, 1, 20)
    assert values.put("k", b"next period", 3, 2, 10)  # a new active epoch: its clock starts anew
    assert values.get("k") == (b"next period", 3, 2, 10)


def test_a_value_too_large_is_not_kept():
    _, values = area()
    assert not values.put("k", b"x" * CAPACITY, 7, 1, 3)  # with its key: one byte too many
    assert values.get("k") is None
    assert values.put("k", b"x" * (CAPACITY - 1), 7, 1, 3)
    assert values.get("k") == (b"x" * (CAPACITY - 1), 7, 1, 3)


def test_a_thousand_secrets_metadata_written_in_turn_all_stay():
    """The case the ring is for: with fixed buckets, one per key hash, about
    60 % of these were gone before their secret's next write."""
    _, values = area()
    keys = [f"logical/3f2a/metadata/app/secret-{n}" for n in range(1000)]
    for stamp, key in enumerate(keys * 2, start=1):
        values.put(key, key.encode() * 15, stamp, 1, stamp)  # ~900 bytes, as with ten versions
    for n, key in enumerate(keys):
        assert values.get(key) == (key.encode() * 15, 1001 + n, 1, 1001 + n)


def test_the_ring_keeps_the_last_two_mebibytes_written():
    _, values = area()
    keys, per_set = [], dict.fromkeys(range(SETS), 0)
    for key in (f"k{n:05}" for n in range(100_000)):
        if len(keys) < 1500 and per_set[set_of(key.encode())] < 2:  # no set ever full
            per_set[set_of(key.encode())] += 1
            keys.append(key)
    value = b"v" * (2048 - 48 - 6)  # one entry: 2 KiB with its header and key
    for stamp, key in enumerate(keys, start=1):
        assert values.put(key, value, stamp, 1, stamp)
    kept = [n for n, key in enumerate(keys) if values.get(key) is not None]
    assert kept == list(range(1500 - RING // 2048, 1500))


def test_a_full_set_gives_up_its_oldest_key():
    _, values = area()
    same = [key for key in (f"k{n}" for n in range(100_000)) if set_of(key.encode()) == set_of(b"k0")][: WAYS + 1]
    for stamp, key in enumerate(same, start=1):
        values.put(key, key.encode(), stamp, 1, stamp)
    assert values.get(same[0]) is None
    for stamp, key in enumerate(same[1:], start=2):
        assert values.get(key) == (key.encode(), stamp, 1, stamp)


def test_an_entry_a_writer_has_reached_is_not_read():
    shared, values = area()
    values.put("k", b"v", 7, 1, 3)
    head = memoryview(shared).cast("Q")
    head[0] += RING_UNITS  # a writer reserved the ring's next lap up to here
    assert values.get("k") is None
    head[0] -= RING_UNITS - 1  # it reserved less
    assert values.get("k") == (b"v", 7, 1, 3)


def test_a_writer_killed_midway_leaves_the_last_whole_value_readable():
    shared, values = area()
    values.put("k", b"v", 7, 1, 3)
    words = memoryview(shared).cast("Q")
    at = words[0]
    words[0] += 10  # reserved, and died before pointing the index at it
    start = RING_AT + at % RING_UNITS * 16
    shared[start : start + 160] = b"\xff" * 160  # half written
    assert values.get("k") == (b"v", 7, 1, 3)
    assert values.put("k", b"w", 8, 1, 4)
    assert values.get("k") == (b"w", 8, 1, 4)


def write_many(shared: mmap.mmap) -> None:
    values = WrittenValues(memoryview(shared))
    for index in range(1, WRITES + 1):
        values.put("k", value_of(index), index, 1, index)


def test_a_reader_racing_a_writer_only_ever_sees_whole_writes():
    shared, values = area()
    writer = multiprocessing.get_context("fork").Process(target=write_many, args=(shared,))
    writer.start()
    seen = 0
    while writer.is_alive() or seen == 0:
        found = values.get("k")
        if found is not None:
            value, index, _, stamp = found
            assert (value, stamp) == (value_of(index), index)
            seen += 1
    writer.join()
    assert writer.exitcode == 0
    assert values.get("k") == (value_of(WRITES), WRITES, 1, WRITES)


def resident_pages(mapped: mmap.mmap, first: int) -> int:
    """Pages of ``mapped`` from byte ``first`` on that are in this process's
    page table (what its RSS counts), from /proc/self/pagemap."""
    start = ctypes.addressof(ctypes.c_char.from_buffer(mapped))
    pages = len(mapped) // mmap.PAGESIZE
    with open("/proc/self/pagemap", "rb") as pagemap:
        pagemap.seek(start // mmap.PAGESIZE * 8)
        entries = memoryview(pagemap.read(pages * 8)).cast("Q")
    return sum(1 for page in range(first // mmap.PAGESIZE, pages) if entries[page] >> 63)


def test_a_worker_maps_only_the_pages_of_the_values_it_uses(tmp_path):
    """Every worker's RSS counts the pages of the shared file it has mapped: a
    miss (every cache miss looks here first) must map no value page, and a hit
    at most the kernel's fault-around window (64 KiB) around its own."""
    table = CoherenceTable.create(str(tmp_path / "t"))
    table.set_lease(time.monotonic() + 3600)
    table.set_active(True)
    keys = {f"k{n}": b"v" * 100 for n in range(64)}
    slots = {slot(key) for key in keys}
    began, epoch = table.begin_write(slots)
    clock = table.end_write(slots, began, epoch, slots, list(keys.items()), 7)
    reader = CoherenceTable(table.path)
    try:
        values = os.path.getsize(table.path) - RING
        for n in range(1000):
            assert reader.recent(f"absent{n}", slot(f"absent{n}")) is None
        assert resident_pages(reader._map, values) == 0
        assert reader.recent("k3", slot("k3")) == (b"v" * 100, 7, epoch, clock)
        assert 1 <= resident_pages(reader._map, values) <= 65536 // mmap.PAGESIZE
    finally:
        reader.close()
        table.close()
