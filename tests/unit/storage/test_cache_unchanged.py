"""``CachedBackend.stamp`` / ``unchanged``: values derived from cached keys follow the cache's rules."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from strongroom.storage.cache import CachedBackend
from strongroom.storage.coherence import CoherenceTable, slot
from strongroom.storage.inmem import InmemBackend


@pytest.fixture
def table(tmp_path) -> Iterator[CoherenceTable]:
    table = CoherenceTable.create(str(tmp_path / "t"))
    table.set_lease(time.monotonic() + 3600)
    table.set_active(True)
    yield table
    table.close()


@pytest.fixture
def cache(table: CoherenceTable) -> CachedBackend:
    return CachedBackend(InmemBackend(), table)


@pytest.fixture
def other(table: CoherenceTable) -> Iterator[CachedBackend]:
    """Another worker of the node: its own handle on the table, the same storage."""
    handle = CoherenceTable(table.path)
    yield handle
    handle.close()


def test_unchanged_until_a_write_touches_one_of_the_keys(cache: CachedBackend, table: CoherenceTable, other):
    cache.put("t/a", b"1")
    cache.put("t/b", b"2")
    stamp = cache.stamp()
    assert stamp is not None
    assert cache.unchanged(["t/a", "t/b"], stamp)
    cache.put("t/c", b"3")  # another key (a collision of slots would only cost a miss)
    assert cache.unchanged(["t/a", "t/b"], stamp)
    # A write by another process of the node, through its own handle on the table.
    CachedBackend(cache._backend, other).delete("t/b")
    assert not cache.unchanged(["t/a", "t/b"], stamp)
    assert cache.unchanged(["t/a"], stamp)


def test_a_write_in_flight_or_a_new_epoch_ends_it(cache: CachedBackend, table: CoherenceTable):
    stamp = cache.stamp()
    assert stamp is not None
    table.begin_write({slot("t/a")})
    assert not cache.unchanged(["t/a"], stamp)
    table.set_active(False)
    table.set_active(True)
    assert not cache.unchanged(["t/z"], stamp)


def test_nothing_is_kept_without_a_cache_or_an_active_epoch(tmp_path):
    table = CoherenceTable.create(str(tmp_path / "t"))
    try:
        table.set_lease(time.monotonic() + 3600)
        assert CachedBackend(InmemBackend(), table).stamp() is None  # not active
        table.set_active(True)
        assert CachedBackend(InmemBackend(), table, size=0).stamp() is None
        assert CachedBackend(InmemBackend(), table).stamp() is not None
    finally:
        table.close()


def test_an_expired_lease_ends_it(cache: CachedBackend, table: CoherenceTable):
    stamp = cache.stamp()
    assert stamp is not None and cache.unchanged(["t/a"], stamp)
    table.set_lease(time.monotonic() - 1)
    assert not cache.unchanged(["t/a"], stamp)
