"""Optimistic concurrency on real Consul: modify indexes, ``check-index`` and
``check-not-exists``, and how a failed check is told apart from a lost fence.

Same properties as tests/unit/storage/test_inmem.py, against the real thing.
"""

from __future__ import annotations

import threading

import pytest

from strongroom.errors import LockLost
from strongroom.storage import TxnOp, WriteConflict, check_op
from strongroom.storage.consul import ConsulBackend
from tests.integration.storage.test_consul_backend import LockHolder, in_consul


def modify_index(agent, backend: ConsulBackend, key: str) -> int:
    """Consul's own ModifyIndex for a backend key, read past the backend."""
    _, entry = agent.client().kv.get(backend.prefix + key)
    return 0 if entry is None else entry["ModifyIndex"]


# -- get_with_index -------------------------------------------------------------


def test_get_with_index_returns_consuls_modify_index(consul_backend, consul_agent):
    assert consul_backend.get_with_index("missing") == (None, 0)
    written = consul_backend.put("k", b"v1")
    consul_backend.put("other", b"x")
    assert consul_backend.get_with_index("k") == (b"v1", written)
    assert modify_index(consul_agent, consul_backend, "k") == written
    again = consul_backend.put("k", b"v2")
    assert again > written
    assert consul_backend.get_with_index("k") == (b"v2", again)


def test_get_with_index_of_an_empty_value(consul_backend):
    written = consul_backend.put("empty", b"")
    assert consul_backend.get_with_index("empty") == (b"", written)


# -- checks ---------------------------------------------------------------------


def test_check_index_commits_when_the_key_is_unchanged(consul_backend):
    consul_backend.put("k", b"1")
    _, index = consul_backend.get_with_index("k")
    written = consul_backend.txn([TxnOp("check-index", "k", index=index), TxnOp("set", "k", b"2")])
    assert written > index
    assert consul_backend.get_with_index("k") == (b"2", written)


def test_failed_check_index_raises_write_conflict_and_writes_nothing(consul_backend, consul_agent):
    consul_backend.put("k", b"1")
    _, index = consul_backend.get_with_index("k")
    consul_backend.put("k", b"concurrent")
    with pytest.raises(WriteConflict) as info:
        consul_backend.txn(
            [TxnOp("set", "side", b"x"), TxnOp("check-index", "k", index=index), TxnOp("set", "k", b"stale")]
        )
    assert info.value.key == "k"
    assert in_consul(consul_agent, consul_backend, "k") == b"concurrent"
    assert in_consul(consul_agent, consul_backend, "side") is None


def test_check_index_on_a_deleted_key_fails(consul_backend, consul_agent):
    consul_backend.put("k", b"1")
    _, index = consul_backend.get_with_index("k")
    consul_backend.delete("k")
    with pytest.raises(WriteConflict):
        consul_backend.txn([TxnOp("check-index", "k", index=index), TxnOp("set", "k", b"resurrected")])
    assert in_consul(consul_agent, consul_backend, "k") is None


def test_check_index_zero_means_absent(consul_backend):
    consul_backend.txn([TxnOp("check-index", "k", index=0), TxnOp("set", "k", b"first")])
    with pytest.raises(WriteConflict):
        consul_backend.txn([TxnOp("check-index", "k", index=0), TxnOp("set", "k", b"second")])
    assert consul_backend.get("k") == b"first"


def test_check_not_exists(consul_backend):
    consul_backend.txn([TxnOp("check-not-exists", "k"), TxnOp("set", "k", b"first")])
    with pytest.raises(WriteConflict) as info:
        consul_backend.txn([TxnOp("check-not-exists", "k"), TxnOp("set", "k", b"second")])
    assert info.value.key == "k"
    assert consul_backend.get("k") == b"first"


def test_a_check_before_a_tree_delete_sees_the_key_as_it_was(consul_backend):
    """The check is not carried past the tree delete by the set that follows
    (as one ``cas`` it would find the key deleted by then)."""
    written = consul_backend.put("a/k", b"1")
    index = consul_backend.txn(
        [TxnOp("check-index", "a/k", index=written), TxnOp("delete-tree", "a/"), TxnOp("set", "a/k", b"2")]
    )
    assert consul_backend.get_with_index("a/k") == (b"2", index)


def test_checks_alone_write_nothing(consul_backend, consul_agent):
    written = consul_backend.put("k", b"v")
    assert consul_backend.txn([check_op("k", written), TxnOp("check-not-exists", "absent")]) >= written
    assert modify_index(consul_agent, consul_backend, "k") == written
    with pytest.raises(WriteConflict):
        consul_backend.txn([TxnOp("check-not-exists", "k")])


def test_guarded_delete_returns_the_index_of_the_delete(consul_backend):
    """A delete-only transaction's index is read after the deleted key, never
    after a checked key that still exists (which would report its older index)."""
    kept = consul_backend.put("keep", b"v")
    consul_backend.put("gone", b"v")
    deleted = consul_backend.txn([TxnOp("check-index", "keep", index=kept), TxnOp("delete", "gone")])
    later = consul_backend.put("after", b"v")
    assert kept < deleted < later


# -- checks under a fence -------------------------------------------------------


def test_fenced_checked_write_commits(consul_backend):
    holder = LockHolder(consul_backend)
    try:
        _, index = consul_backend.get_with_index("k")
        holder.backend.txn([check_op("k", index), TxnOp("set", "k", b"v")])
        assert consul_backend.get("k") == b"v"
        assert holder.lost == 0
    finally:
        holder.sessions.destroy_session(holder.session)


def test_fenced_failed_check_is_a_write_conflict_not_a_lost_lock(consul_backend, consul_agent):
    holder = LockHolder(consul_backend)
    try:
        consul_backend.put("k", b"1")
        _, index = consul_backend.get_with_index("k")
        consul_backend.put("k", b"concurrent")
        with pytest.raises(WriteConflict):
            holder.backend.txn([TxnOp("check-index", "k", index=index), TxnOp("set", "k", b"stale")])
        with pytest.raises(WriteConflict):
            holder.backend.txn([TxnOp("set", "x", b"v"), TxnOp("check-not-exists", "k")])
        assert holder.lost == 0
        assert in_consul(consul_agent, consul_backend, "k") == b"concurrent"
        assert in_consul(consul_agent, consul_backend, "x") is None
        holder.backend.put("still", b"leading")
        assert consul_backend.get("still") == b"leading"
    finally:
        holder.sessions.destroy_session(holder.session)


def test_lost_fence_wins_over_a_failed_check(consul_backend, consul_agent):
    holder = LockHolder(consul_backend)
    consul_backend.put("k", b"1")
    _, index = consul_backend.get_with_index("k")
    consul_backend.put("k", b"concurrent")
    holder.sessions.destroy_session(holder.session)
    with pytest.raises(LockLost):
        holder.backend.txn([TxnOp("check-index", "k", index=index), TxnOp("set", "k", b"deposed")])
    assert holder.lost == 1
    assert in_consul(consul_agent, consul_backend, "k") == b"concurrent"


# -- separate clients -----------------------------------------------------------


def test_checked_increments_from_separate_clients_lose_nothing(consul_backend, consul_agent):
    """Each thread has its own ConsulBackend and HTTP client, as separate processes would."""
    clients, increments = 6, 15
    backends = [ConsulBackend.from_config(consul_agent.address, prefix=consul_backend.prefix) for _ in range(clients)]
    conflicts = []
    errors = []
    start = threading.Barrier(clients)

    def increment(backend: ConsulBackend) -> None:
        start.wait()
        try:
            for _ in range(increments):
                while True:
                    raw, index = backend.get_with_index("counter")
                    try:
                        backend.txn(
                            [check_op("counter", index), TxnOp("set", "counter", str(int(raw or 0) + 1).encode())]
                        )
                        break
                    except WriteConflict:
                        conflicts.append(1)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=increment, args=(b,)) for b in backends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for backend in backends:
        backend.close()
    assert errors == []
    assert int(consul_backend.get("counter")) == clients * increments
    assert conflicts
