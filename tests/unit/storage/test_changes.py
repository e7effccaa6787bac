"""The change log and a performance standby's cache fed by it (storage/changes.py).

A ``CachedBackend`` over a ``CoherenceTable`` that a ``ChangeFollower`` feeds
(driven here by hand with the answers a feed would give, or by its thread on
a feed that fails) serves a key from memory only while no record naming it
arrived since it was read, drops everything when the log moved past it
(records pruned before it saw them, the index going backwards, the feed
failing), never serves the tables the node core watches itself, and sends a
request carrying an index the follower has not applied to storage.  Storage
is a real ``InmemBackend`` counting its reads: a read the cache served leaves
the count unchanged.
"""

from __future__ import annotations

import threading
import time

import pytest

from strongroom.errors import StorageUnavailable
from strongroom.storage import TxnOp
from strongroom.storage.cache import CachedBackend
from strongroom.storage.changes import (
    FOLLOW_LEASE,
    PREFIX,
    PRUNED_KEY,
    ChangeFollower,
    ChangePruner,
    parse_record,
    record_op,
)
from strongroom.storage.coherence import CoherenceTable
from strongroom.storage.consistency import require_index
from strongroom.storage.consul_txn import encode_txn
from strongroom.storage.inmem import InmemBackend
from tests.helpers.procs import wait_until


class CountingBackend(InmemBackend):
    def __init__(self):
        super().__init__()
        self.reads = 0

    def get_with_index(self, key):
        self.reads += 1
        return super().get_with_index(key)


class ScriptedFeed:
    """A feed whose answers the test queues; ``error`` makes the next wait fail.
    ``values`` holds the records (and the mark) ``read`` finds."""

    def __init__(self):
        self.answers: list = []
        self.values: dict[str, bytes] = {}
        self.error = threading.Event()
        self.calls = 0
        self.read_keys: list[list[str]] = []

    def wait(self, index, wait):
        self.calls += 1
        if self.error.is_set():
            raise StorageUnavailable("consul at test is unreachable")
        if self.answers:
            return self.answers.pop(0)
        time.sleep(0.01)
        return index or 1, []

    def read(self, keys):
        self.read_keys.append(list(keys))
        if any(key not in self.values for key in keys):
            return None
        return {key: self.values[key] for key in keys}


@pytest.fixture
def table(tmp_path):
    t = CoherenceTable.create(str(tmp_path / "table"))
    yield t
    t.close()


@pytest.fixture
def storage():
    return CountingBackend()


@pytest.fixture
def cached(storage, table):
    return CachedBackend(storage, table, size=100)


def record(feed: ScriptedFeed, *keys: str) -> str:
    """The key of a new record naming ``keys``, which the feed's ``read`` finds."""
    op = record_op([TxnOp("set", k, b"x") for k in keys])
    assert op is not None
    feed.values[op.key] = op.value or b""
    return op.key


def mark(feed: ScriptedFeed, pruned: int) -> str:
    feed.values[PRUNED_KEY] = str(pruned).encode()
    return PRUNED_KEY


def following(feed, table: CoherenceTable, **options) -> ChangeFollower:
    """A follower whose lease outlasts any test's pauses (the tests of the lease use their own)."""
    options.setdefault("lease", 60.0)
    return ChangeFollower(feed, table, **options)


def served_from_cache(storage: CountingBackend, cached: CachedBackend, key: str) -> bool:
    before = storage.reads
    cached.get(key)
    return storage.reads == before


def test_a_record_makes_the_key_it_names_stale_and_only_that_key(storage, table, cached):
    feed = ScriptedFeed()
    follower = following(feed, table)
    storage.put("logical/m/a", b"1")
    storage.put("logical/m/b", b"1")
    follower.answer(0, 10, [])
    assert table.applied() == 10
    assert cached.get("logical/m/a") == b"1"
    cached.get("logical/m/b")
    assert served_from_cache(storage, cached, "logical/m/a")
    storage.put("logical/m/a", b"2")  # the active node writes; until its record arrives the cache may lag
    follower.answer(0, 11, [record(feed, "logical/m/a")])
    assert table.applied() == 11
    assert cached.get("logical/m/a") == b"2"
    assert served_from_cache(storage, cached, "logical/m/b")
    assert served_from_cache(storage, cached, "logical/m/a")


def test_a_record_already_listed_is_not_read_again_and_changes_nothing(storage, table, cached):
    feed = ScriptedFeed()
    follower = following(feed, table)
    storage.put("k", b"1")
    first = record(feed, "k")
    follower.answer(0, 5, [first])  # where following starts: nothing is read
    cached.get("k")
    other = record(feed, "other")
    follower.answer(0, 6, [first, other])  # the same record again in the next snapshot
    assert feed.read_keys == [[other]]
    assert served_from_cache(storage, cached, "k")


def test_a_request_carrying_a_newer_index_reads_storage(storage, table, cached):
    follower = following(ScriptedFeed(), table)
    storage.put("k", b"1")
    follower.answer(0, 20, [])
    cached.get("k")
    try:
        require_index(21)
        assert not served_from_cache(storage, cached, "k")
        require_index(20)
        assert served_from_cache(storage, cached, "k")
    finally:
        require_index(0)


def test_records_pruned_before_the_follower_saw_them_drop_the_whole_cache(storage, table, cached):
    feed = ScriptedFeed()
    follower = following(feed, table)
    storage.put("k", b"1")
    follower.answer(0, 30, [])
    cached.get("k")
    # Records 31..40 were written and pruned between two answers: the mark says so.
    follower.answer(0, 41, [mark(feed, 40)])
    assert follower.restarts == 1
    assert not served_from_cache(storage, cached, "k")
    assert served_from_cache(storage, cached, "k")  # cached again in the new epoch


def test_a_record_gone_before_it_was_read_drops_the_whole_cache(storage, table, cached):
    feed = ScriptedFeed()
    follower = following(feed, table)
    storage.put("k", b"1")
    follower.answer(0, 30, [])
    cached.get("k")
    follower.answer(0, 31, ["changes/pruned-meanwhile"])  # listed, then pruned before the read
    assert follower.restarts == 1
    assert not served_from_cache(storage, cached, "k")


def test_a_prune_of_records_already_seen_keeps_the_cache(storage, table, cached):
    feed = ScriptedFeed()
    follower = following(feed, table)
    storage.put("k", b"1")
    follower.answer(0, 30, [record(feed, "other")])
    cached.get("k")
    follower.answer(0, 31, [mark(feed, 30)])
    assert follower.restarts == 0
    assert served_from_cache(storage, cached, "k")


def test_an_index_going_backwards_drops_the_whole_cache(storage, table, cached):
    follower = following(ScriptedFeed(), table)
    storage.put("k", b"1")
    follower.answer(0, 30, [])
    cached.get("k")
    follower.answer(0, 3, [])  # Consul restored from a snapshot, or a new cluster
    assert follower.restarts == 1
    assert not served_from_cache(storage, cached, "k")


def test_a_deleted_tree_drops_everything(storage, table, cached):
    feed = ScriptedFeed()
    follower = following(feed, table)
    storage.put("a/k", b"1")
    storage.put("b/k", b"1")
    follower.answer(0, 30, [])
    cached.get("a/k")
    cached.get("b/k")
    op = record_op([TxnOp("delete-tree", "a/")])
    assert op is not None and parse_record(op.value or b"") == ([], True)
    feed.values[op.key] = op.value or b""
    follower.answer(0, 31, [op.key])
    assert not served_from_cache(storage, cached, "b/k")


def test_the_tables_the_node_core_watches_never_come_from_the_standby_cache(storage, table, cached):
    following(ScriptedFeed(), table).answer(0, 30, [])
    for key in ("sys/policy/p", "sys/mounts", "sys/auth", "core/keyring", "sys/audit/x"):
        storage.put(key, b"1")
        cached.get(key)
        assert not served_from_cache(storage, cached, key)


def test_an_expired_lease_stops_serving(storage, table, cached):
    # The follower's clock says its last answer came long ago.
    follower = ChangeFollower(ScriptedFeed(), table, clock=lambda: time.monotonic() - 60)
    storage.put("k", b"1")
    follower.answer(0, 30, [])
    cached.get("k")
    assert not served_from_cache(storage, cached, "k")


class SlowFeed(ScriptedFeed):
    """Answers only ``delay`` seconds after it is asked."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay
        self.waits: list[str] = []

    def wait(self, index, wait):
        self.waits.append(wait)
        time.sleep(self.delay)
        return index or 1, []


def test_the_lease_runs_from_the_question_not_the_answer(storage, table, cached):
    # An answer that took longer than the lease to arrive vouches for nothing:
    # a revocation committed just after the question was sent is not in it,
    # and the active node answered that revocation a lease after its commit.
    storage.put("k", b"1")
    follower = ChangeFollower(SlowFeed(FOLLOW_LEASE + 0.05), table)
    follower.answer(0, 30, [], asked=time.monotonic() - FOLLOW_LEASE - 0.05)
    cached.get("k")
    assert not served_from_cache(storage, cached, "k")
    follower.start()
    try:
        wait_until(lambda: len(follower._feed.waits) >= 3, 5, "two slow answers applied")
        cached.get("k")
        assert not served_from_cache(storage, cached, "k")
    finally:
        follower.stop()
    # The same answer asked for just now is served.
    following(ScriptedFeed(), table, lease=FOLLOW_LEASE).answer(0, 31, [], asked=time.monotonic())
    cached.get("k")
    assert served_from_cache(storage, cached, "k")


def test_an_idle_log_is_asked_again_within_the_lease(table):
    # Consul answers an idle blocking query after ``wait`` (plus up to wait/16):
    # two such waits must fit in the lease, or an idle standby would lapse
    # between its answers.
    feed = SlowFeed(0.0)
    follower = ChangeFollower(feed, table)
    follower.start()
    try:
        wait_until(lambda: len(feed.waits) >= 2, 5, "the follower asking")
    finally:
        follower.stop()
    wait = float(feed.waits[0].rstrip("s"))
    assert 2 * wait * 17 / 16 < FOLLOW_LEASE * 0.6
    with pytest.raises(ValueError, match="does not renew"):
        ChangeFollower(feed, table, wait=FOLLOW_LEASE / 2)


def test_a_failing_feed_drops_the_cache_and_a_recovered_one_starts_a_new_epoch(storage, table, cached):
    feed = ScriptedFeed()
    follower = following(feed, table, wait=0.05, retry=0.01)
    storage.put("k", b"1")
    follower.start()
    try:
        wait_until(lambda: table.applied() != 0, 5, "the follower's first answer")
        cached.get("k")
        assert served_from_cache(storage, cached, "k")
        feed.error.set()
        wait_until(lambda: table.applied() == 0, 5, "the cache dropped when the feed fails")
        assert not served_from_cache(storage, cached, "k")
        feed.error.clear()
        wait_until(lambda: table.applied() != 0, 5, "following again")
        assert not served_from_cache(storage, cached, "k")  # nothing from before the failure
        assert served_from_cache(storage, cached, "k")
    finally:
        follower.stop()
    assert table.applied() == 0


def test_a_stopped_follower_never_touches_the_table_again(storage, table, cached):
    follower = following(ScriptedFeed(), table)
    follower.answer(0, 30, [])
    follower.stop()
    assert table.applied() == 0
    table.set_active(True)
    assert not follower.answer(0, 31, [])
    assert table.applied() == 0


def test_becoming_active_ends_the_following_epoch(storage, table, cached):
    following(ScriptedFeed(), table).answer(0, 30, [])
    storage.put("k", b"1")
    cached.get("k")
    table.set_active(True)
    table.set_lease(time.monotonic() + 60)
    assert table.applied() == 0
    assert not served_from_cache(storage, cached, "k")


def test_a_fenced_transaction_carries_its_change_record_last():
    ops = [TxnOp("check-index", "a", index=3), TxnOp("set", "a", b"v"), TxnOp("delete", "b")]
    _, kv_ops, _, sources = encode_txn(ops, ("core/lock", "s1"), lambda k: "p/" + k, 512 * 1024)
    last = kv_ops[-1]["KV"]
    assert last["Verb"] == "set" and last["Key"].startswith("p/" + PREFIX)
    assert len(sources) == len(kv_ops) - 1
    import base64

    assert parse_record(base64.b64decode(last["Value"])) == (["a", "b"], False)
    _, unfenced, _, _ = encode_txn(ops, None, lambda k: "p/" + k, 512 * 1024)
    assert not any(op["KV"]["Key"].startswith("p/" + PREFIX) for op in unfenced)
    _, checks_only, _, _ = encode_txn([TxnOp("check-not-exists", "a")], ("core/lock", "s1"), str, 512 * 1024)
    assert len(checks_only) == 1


class InmemFeed:
    """The change log as the in-memory backend holds it."""

    def __init__(self, backend: InmemBackend):
        self._backend = backend

    def wait(self, index, wait):
        return self._backend.index(), sorted(self._backend.get_prefix(PREFIX))

    def read(self, keys):
        raise AssertionError("the pruner reads no record")


def test_the_pruner_deletes_records_listed_long_enough_ago_and_marks_that_listings_index():
    backend = InmemBackend()
    now = [100.0]
    pruner = ChangePruner(InmemFeed(backend), backend, lambda: True, retain=3.0, clock=lambda: now[0])
    first = [backend.put(PREFIX + f"r{n}", b"k") for n in range(70)]
    assert pruner.prune_once() == 0  # nothing is old enough yet
    listed_at = backend.index()
    now[0] += 1
    later = backend.put(PREFIX + "late", b"k")
    assert pruner.prune_once() == 0
    now[0] += 2
    assert pruner.prune_once() == 70
    left = backend.get_prefix(PREFIX)
    assert PREFIX + "late" in left and PREFIX + "r0" not in left
    assert int(left[PRUNED_KEY][0]) == listed_at >= max(first)
    assert listed_at < later
    assert pruner.prune_once() == 0
    now[0] += 1
    assert pruner.prune_once() == 1  # "late", first listed three seconds ago
    assert ChangePruner(InmemFeed(backend), backend, lambda: False).prune_once() == 0
