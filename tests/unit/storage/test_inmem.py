"""The in-memory backend's side of the storage contract: modify indexes and the
``check-index`` / ``check-not-exists`` verbs (Consul's semantics, see
tests/integration/storage for the same properties against real Consul)."""

from __future__ import annotations

import threading

import pytest

from strongroom.errors import InvalidRequest, ReadOnly
from strongroom.storage import ReadOnlyView, TxnOp, WriteConflict, check_op
from strongroom.storage.inmem import InmemBackend


@pytest.fixture
def backend() -> InmemBackend:
    return InmemBackend()


class TestModifyIndex:
    def test_absent_key_has_index_zero(self, backend):
        assert backend.get_with_index("nothing") == (None, 0)

    def test_index_is_that_of_the_write_that_stored_the_value(self, backend):
        first = backend.put("a", b"1")
        backend.put("other", b"x")
        assert backend.get_with_index("a") == (b"1", first)
        second = backend.put("a", b"2")
        assert second > first
        assert backend.get_with_index("a") == (b"2", second)

    def test_empty_value_is_present(self, backend):
        index = backend.put("e", b"")
        assert backend.get_with_index("e") == (b"", index)

    def test_every_set_of_a_transaction_gets_the_commit_index(self, backend):
        index = backend.txn([TxnOp("set", "a", b"1"), TxnOp("set", "b", b"2")])
        assert backend.get_with_index("a")[1] == backend.get_with_index("b")[1] == index

    def test_deleted_keys_lose_their_index_and_never_get_it_back(self, backend):
        old = backend.put("k", b"1")
        backend.delete("k")
        assert backend.get_with_index("k") == (None, 0)
        backend.put("t/a", b"1")
        backend.delete_prefix("t/")
        assert backend.get_with_index("t/a") == (None, 0)
        assert backend.put("k", b"again") > old


class TestChecks:
    def test_check_index_passes_when_unchanged(self, backend):
        backend.put("k", b"1")
        _, index = backend.get_with_index("k")
        written = backend.txn([TxnOp("check-index", "k", index=index), TxnOp("set", "k", b"2")])
        assert backend.get_with_index("k") == (b"2", written)

    def test_check_index_fails_after_a_concurrent_write_and_writes_nothing(self, backend):
        backend.put("k", b"1")
        _, index = backend.get_with_index("k")
        backend.put("k", b"someone else")
        before, at = dict(backend._data), backend.index()
        with pytest.raises(WriteConflict) as info:
            backend.txn(
                [TxnOp("set", "side", b"x"), TxnOp("check-index", "k", index=index), TxnOp("set", "k", b"mine")]
            )
        assert info.value.key == "k"
        assert dict(backend._data) == before
        assert backend.index() == at
        assert backend.get_with_index("side") == (None, 0)

    def test_failed_check_restores_deleted_keys_with_their_indexes(self, backend):
        a = backend.put("t/a", b"1")
        b = backend.put("t/b", b"2")
        backend.put("k", b"v")
        with pytest.raises(WriteConflict):
            backend.txn([TxnOp("delete-tree", "t/"), TxnOp("set", "t/a", b"new"), TxnOp("check-not-exists", "k")])
        assert backend.get_with_index("t/a") == (b"1", a)
        assert backend.get_with_index("t/b") == (b"2", b)

    def test_check_index_zero_means_absent(self, backend):
        backend.txn([TxnOp("check-index", "k", index=0), TxnOp("set", "k", b"1")])
        with pytest.raises(WriteConflict):
            backend.txn([TxnOp("check-index", "k", index=0), TxnOp("set", "k", b"2")])
        assert backend.get("k") == b"1"

    def test_check_index_fails_on_a_deleted_key(self, backend):
        backend.put("k", b"1")
        _, index = backend.get_with_index("k")
        backend.delete("k")
        with pytest.raises(WriteConflict):
            backend.txn([TxnOp("check-index", "k", index=index), TxnOp("set", "k", b"resurrected")])
        assert backend.get("k") is None

    def test_check_not_exists(self, backend):
        backend.txn([TxnOp("check-not-exists", "k"), TxnOp("set", "k", b"first")])
        with pytest.raises(WriteConflict):
            backend.txn([TxnOp("check-not-exists", "k"), TxnOp("set", "k", b"second")])
        assert backend.get("k") == b"first"

    def test_operations_apply_in_order(self, backend):
        """As in Consul: a check after a set of the same key sees the new value."""
        backend.put("k", b"1")
        _, index = backend.get_with_index("k")
        with pytest.raises(WriteConflict):
            backend.txn([TxnOp("set", "k", b"2"), TxnOp("check-index", "k", index=index)])
        assert backend.get_with_index("k") == (b"1", index)
        backend.txn([TxnOp("delete", "k"), TxnOp("check-not-exists", "k"), TxnOp("set", "k", b"3")])
        assert backend.get("k") == b"3"

    def test_checks_alone_write_nothing(self, backend):
        index = backend.put("k", b"1")
        assert backend.txn([TxnOp("check-index", "k", index=index), TxnOp("check-not-exists", "x")]) == index
        assert backend.index() == index
        with pytest.raises(WriteConflict):
            backend.txn([TxnOp("check-not-exists", "k")])

    def test_unknown_verb_is_refused_before_anything_happens(self, backend):
        with pytest.raises(InvalidRequest):
            backend.txn([TxnOp("set", "a", b"1"), TxnOp("check-session", "a")])
        assert backend.get("a") is None

    def test_check_op_matches_what_get_with_index_returned(self, backend):
        assert check_op("k", 0) == TxnOp("check-not-exists", "k")
        assert check_op("k", 7) == TxnOp("check-index", "k", index=7)
        for _ in range(2):
            value, index = backend.get_with_index("k")
            backend.txn([check_op("k", index), TxnOp("set", "k", (value or b"") + b"+")])
        assert backend.get("k") == b"++"


class TestGetPrefix:
    def test_every_key_under_the_prefix_with_value_and_modify_index(self, backend):
        first = backend.txn([TxnOp("set", "s/a/meta", b"m"), TxnOp("set", "s/a/1", b"")])
        second = backend.put("s/a/2", b"two")
        backend.put("s/b/meta", b"other")
        backend.put("s/a", b"sibling key, not in the folder")
        assert backend.get_prefix("s/a/") == {
            "s/a/meta": (b"m", first),
            "s/a/1": (b"", first),
            "s/a/2": (b"two", second),
        }
        assert backend.get_prefix("s/a/2") == {"s/a/2": (b"two", second)}

    def test_prefix_is_a_plain_string_prefix(self, backend):
        backend.put("ab", b"1")
        backend.put("a/b", b"2")
        assert sorted(backend.get_prefix("a")) == ["a/b", "ab"]
        assert sorted(backend.get_prefix("")) == ["a/b", "ab"]

    def test_nothing_under_the_prefix_is_empty(self, backend):
        assert backend.get_prefix("none/") == {}
        backend.put("t/x", b"1")
        backend.delete_prefix("t/")
        assert backend.get_prefix("t/") == {}

    def test_indexes_are_those_get_with_index_returns(self, backend):
        backend.put("f/k", b"1")
        backend.put("f/k", b"2")
        assert backend.get_prefix("f/")["f/k"] == backend.get_with_index("f/k")

    def test_answer_is_a_copy(self, backend):
        backend.put("f/k", b"1")
        found = backend.get_prefix("f/")
        backend.put("f/k", b"2")
        backend.put("f/new", b"3")
        assert found == {"f/k": (b"1", found["f/k"][1])}

    def test_a_transaction_is_read_whole_by_concurrent_readers(self, backend):
        stop = threading.Event()
        torn = []

        def write() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                value = str(n).encode()
                backend.txn([TxnOp("set", "f/a", value), TxnOp("set", "f/b", value)])

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for _ in range(2000):
                found = backend.get_prefix("f/")
                if found and found["f/a"] != found["f/b"]:
                    torn.append(found)
        finally:
            stop.set()
            writer.join()
        assert torn == []


def test_read_only_view_reads_indexes_and_refuses_checked_writes(backend):
    index = backend.put("k", b"1")
    view = ReadOnlyView(backend)
    assert view.get_with_index("k") == (b"1", index)
    assert view.get_prefix("k") == {"k": (b"1", index)}
    with pytest.raises(ReadOnly):
        view.txn([TxnOp("check-index", "k", index=index)])
    with pytest.raises(ReadOnly):
        view.txn([TxnOp("check-not-exists", "x"), TxnOp("set", "x", b"v")])


def test_checked_increments_from_many_threads_lose_nothing(backend):
    """The read-modify-write pattern the engines use, with no lock shared by the writers."""
    threads, increments = 8, 50
    conflicts = []
    start = threading.Barrier(threads)

    def increment() -> None:
        start.wait()
        for _ in range(increments):
            while True:
                raw, index = backend.get_with_index("counter")
                try:
                    backend.txn([check_op("counter", index), TxnOp("set", "counter", str(int(raw or 0) + 1).encode())])
                    break
                except WriteConflict:
                    conflicts.append(1)

    workers = [threading.Thread(target=increment) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert int(backend.get("counter")) == threads * increments
