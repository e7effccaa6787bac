"""The mount table: writers that share storage but no lock (worker processes, nodes)."""

from __future__ import annotations

import random

import pytest

from strongroom.core.mounts import MOUNTS_PATH, MountTable
from strongroom.errors import StorageUnavailable
from strongroom.storage.inmem import InmemBackend
from strongroom.storage.retry import MAX_ATTEMPTS, RETRY_DELAY
from tests.unit.engines.kv_support import RaceView  # one process's view of shared storage, with before_txn hooks


def table(storage, pauses: list[float]) -> MountTable:
    return MountTable(storage, MOUNTS_PATH, "logical/", randbytes=random.Random(7).randbytes, sleep=pauses.append)


def test_a_write_that_meets_a_conflict_pauses_then_keeps_both_changes():
    backend = InmemBackend()
    a_storage = RaceView(backend)
    a_pauses, b_pauses = [], []
    a, b = table(a_storage, a_pauses), table(RaceView(backend), b_pauses)
    a_storage.before_txn.append(lambda: b.add(b.new_entry("from-b/", "kv")))
    a.add(a.new_entry("from-a/", "kv"))
    assert len(a_pauses) == 1 and 0 < a_pauses[0] < RETRY_DELAY
    assert b_pauses == []
    b.invalidate()
    assert set(b.entries()) == {"from-a/", "from-b/"}


def test_a_write_that_always_conflicts_gives_up_after_bounded_pauses():
    backend = InmemBackend()
    a_storage = RaceView(backend)
    pauses = []
    a, b = table(a_storage, pauses), table(RaceView(backend), [])
    a_storage.before_txn.extend(lambda n=n: b.add(b.new_entry(f"b{n}/", "kv")) for n in range(MAX_ATTEMPTS))
    with pytest.raises(StorageUnavailable, match="too many concurrent changes to the mount table"):
        a.add(a.new_entry("from-a/", "kv"))
    # A pause after every conflict but the last, each bounded by the linearly growing delay.
    assert len(pauses) == MAX_ATTEMPTS - 1
    assert all(0 < pause < RETRY_DELAY * n for n, pause in enumerate(pauses, start=1))
