"""Live token lookups kept per process (auth/token_cache.py), under the storage cache's rules.

Two token stores stand for two worker processes of the active node: each
reads the same storage through its own ``CachedBackend`` and its own handle
on the node's coherence table, as the workers do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from strongroom.auth.token import TokenStore
from strongroom.storage.cache import CachedBackend
from strongroom.storage.coherence import CoherenceTable
from tests.unit.auth.conftest import ReadCountingBackend


@pytest.fixture
def storage() -> ReadCountingBackend:
    return ReadCountingBackend()


@pytest.fixture
def tables(tmp_path) -> Iterator[tuple[CoherenceTable, CoherenceTable]]:
    first = CoherenceTable.create(str(tmp_path / "table"))
    first.set_lease(time.monotonic() + 3600)
    first.set_active(True)
    second = CoherenceTable(first.path)
    yield first, second
    second.close()
    first.close()


class CountingFreshness:
    """The storage cache's answers, counting the lookups that went to the token records
    (each takes a stamp before its reads)."""

    def __init__(self, cache: CachedBackend):
        self.cache = cache
        self.reads = 0

    def stamp(self):
        self.reads += 1
        return self.cache.stamp()

    def unchanged(self, keys, stamp):
        return self.cache.unchanged(keys, stamp)


def _store(storage, table, clock) -> TokenStore:
    backend = CachedBackend(storage, table)
    return TokenStore(backend, clock, freshness=CountingFreshness(backend))


@pytest.fixture
def worker(storage, tables, clock) -> TokenStore:
    return _store(storage, tables[0], clock)


@pytest.fixture
def other(storage, tables, clock) -> TokenStore:
    return _store(storage, tables[1], clock)


def lookups_reading_storage(store: TokenStore, token_id: str, times: int = 3) -> int:
    """How many of ``times`` lookups of a live token read its records (the others used what was kept)."""
    counter = store._live_tokens._freshness
    before = counter.reads
    for _ in range(times):
        assert store.lookup(token_id) is not None
    return counter.reads - before


def test_a_live_token_is_looked_up_in_storage_once(worker):
    root_id, _ = worker.create_root()
    token_id, _ = worker.create(policies=["bench"], parent=worker.lookup(root_id))
    assert lookups_reading_storage(worker, token_id, times=1) == 1
    assert lookups_reading_storage(worker, token_id, times=5) == 0  # neither its record nor its parent's
    entry = worker.lookup(token_id)
    assert entry is not None and entry.id == token_id and entry.policies == ["bench", "default"]
    # Callers get entries of their own.
    entry.policies.append("root")
    assert worker.lookup(token_id).policies == ["bench", "default"]


def test_without_an_active_epoch_nothing_is_kept(worker, tables):
    token_id, _ = worker.create(policies=["a"])
    tables[0].set_active(False)  # a standby or a sealed node: the storage cache keeps nothing, nor do tokens
    assert lookups_reading_storage(worker, token_id) == 3
    assert worker._live_tokens._live == {}


def test_a_revocation_by_another_worker_is_seen_by_the_next_lookup(worker, other):
    token_id, _ = worker.create(policies=["a"])
    assert worker.lookup(token_id) is not None
    assert lookups_reading_storage(worker, token_id) == 0
    other.revoke_live(token_id)
    assert worker.lookup(token_id) is None


def test_a_parent_revoked_elsewhere_ends_its_child_at_once(worker, other):
    parent_id, _ = worker.create(policies=["a"])
    child_id, _ = worker.create(policies=["a"], parent=worker.lookup(parent_id))
    assert worker.lookup(child_id) is not None and worker.lookup(child_id) is not None
    other.revoke_live(parent_id)
    assert worker.lookup(child_id) is None


def test_expiry_is_checked_on_every_lookup(worker, clock):
    parent_id, _ = worker.create(policies=["a"], ttl=3600)
    child_id, _ = worker.create(policies=["a"], ttl=7200, parent=worker.lookup(parent_id))
    assert worker.lookup(child_id) is not None
    clock.advance(3599)
    assert worker.lookup(child_id) is not None
    clock.advance(1)  # the parent's expiry ends the child too
    assert worker.lookup(child_id) is None
    assert worker.lookup(parent_id) is None


def test_a_renewal_elsewhere_is_seen(worker, other, clock):
    token_id, _ = worker.create(policies=["a"], ttl=60)
    assert worker.lookup(token_id).expire_at == clock().timestamp() + 60
    clock.advance(30)
    other.renew(other.lookup(token_id), increment=600)
    assert worker.lookup(token_id).expire_at == clock().timestamp() + 600
    clock.advance(100)  # past the first expiry: still live, as renewed
    assert worker.lookup(token_id) is not None


def test_limited_use_tokens_are_never_kept_and_stay_exact(worker, other):
    token_id, _ = worker.create(policies=["a"], num_uses=3)
    assert lookups_reading_storage(worker, token_id, times=2) == 2
    granted = 0
    for store in (worker, other, worker, other, worker):
        entry = store.lookup(token_id)
        if entry is not None and store.use(entry) is not None:
            granted += 1
    assert granted == 3
    assert worker.lookup(token_id) is None and other.lookup(token_id) is None


def test_a_new_active_epoch_or_a_keyring_change_drops_what_was_kept(worker, tables):
    token_id, _ = worker.create(policies=["a"])
    worker.lookup(token_id)
    assert lookups_reading_storage(worker, token_id) == 0
    tables[0].set_active(False)
    tables[0].set_active(True)
    assert lookups_reading_storage(worker, token_id, times=1) == 1
    assert lookups_reading_storage(worker, token_id) == 0
    worker.forget_decoded()
    assert lookups_reading_storage(worker, token_id, times=1) == 1
