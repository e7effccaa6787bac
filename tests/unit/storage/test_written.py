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
from strongroom.storage.written import BUCKET_BYTES, BUCKETS, HEADER_WORDS, SIZE, WrittenValues

WRITES = 20_000


def value_of(index: int) -> bytes:
    """A value whose length and bytes both name its index (a torn read shows)."""
    return str(index).encode() * (1 + index % 97)


def area() -> tuple[mmap.mmap, WrittenValues]:
    shared = mmap.mmap(-1, SIZE)  # anonymous and shared: a forked child writes the same pages
    return shared, WrittenValues(memoryview(shared))


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


def test_a_bucket_being_written_is_not_read():
    shared, values = area()
    values.put("k", b"v", 7, 1, 3)
    words = memoryview(shared).cast("Q")
    seq = next(w for w in range(0, BUCKETS * HEADER_WORDS, HEADER_WORDS) if words[w] == 2)  # the one written
    words[seq] += 1  # a writer has begun
    assert values.get("k") is None


def test_a_bucket_a_killed_writer_left_half_written_is_readable_after_the_next_write():
    shared, values = area()
    values.put("k", b"v", 7, 1, 3)
    words = memoryview(shared).cast("Q")
    seq = next(w for w in range(0, BUCKETS * HEADER_WORDS, HEADER_WORDS) if words[w] == 2)
    words[seq] += 1  # the writer died here
    assert values.get("k") is None
    assert values.put("k", b"w", 8, 1, 4)
    assert words[seq] % 2 == 0
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
        values = os.path.getsize(table.path) - BUCKETS * BUCKET_BYTES
        for n in range(1000):
            assert reader.recent(f"absent{n}", slot(f"absent{n}")) is None
        assert resident_pages(reader._map, values) == 0
        assert reader.recent("k3", slot("k3")) == (b"v" * 100, 7, epoch, clock)
        assert 1 <= resident_pages(reader._map, values) <= 65536 // mmap.PAGESIZE
    finally:
        reader.close()
        table.close()
