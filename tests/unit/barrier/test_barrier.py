"""The security barrier and barrier views over the in-memory backend."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.barrier import Barrier, BarrierView, Keyring, aead
from strongroom.errors import IntegrityError, InvalidRequest, ReadOnly, Sealed
from strongroom.storage import ReadOnlyView, TxnOp, WriteConflict
from strongroom.storage.inmem import InmemBackend
from tests.helpers.counting_keyring import CountingKeyring

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def clock_from(start: datetime = START):
    ticks = itertools.count()
    return lambda: start + timedelta(seconds=next(ticks))


@pytest.fixture
def clock():
    return clock_from()


@pytest.fixture
def backend():
    return InmemBackend()


@pytest.fixture
def keyring(clock):
    return Keyring.generate(clock)


@pytest.fixture
def barrier(backend, keyring):
    barrier = Barrier(backend)
    barrier.set_keyring(keyring)
    return barrier


class TestRoundTrip:
    def test_put_then_get(self, barrier):
        barrier.put("logical/abc/secret", b"s3cr3t")
        assert barrier.get("logical/abc/secret") == b"s3cr3t"

    def test_missing_key_is_none(self, barrier):
        assert barrier.get("nothing/here") is None

    def test_empty_value(self, barrier):
        barrier.put("empty", b"")
        assert barrier.get("empty") == b""

    def test_writes_return_backend_index(self, barrier, backend):
        first = barrier.put("a", b"1")
        second = barrier.delete("a")
        assert second > first
        assert barrier.index() == backend.index() == second

    def test_delete(self, barrier):
        barrier.put("a", b"1")
        barrier.delete("a")
        assert barrier.get("a") is None

    def test_delete_prefix_and_list(self, barrier):
        for key in ("sys/policy/a", "sys/policy/b", "sys/token/x", "sys/mounts"):
            barrier.put(key, b"v")
        assert barrier.list("sys/") == ["mounts", "policy/", "token/"]
        barrier.delete_prefix("sys/policy/")
        assert barrier.list("sys/") == ["mounts", "token/"]

    def test_txn_encrypts_every_set(self, barrier, backend):
        barrier.put("old", b"gone soon")
        barrier.txn([TxnOp("set", "t/a", b"alpha"), TxnOp("set", "t/b", b"beta"), TxnOp("delete", "old")])
        assert barrier.get("t/a") == b"alpha" and barrier.get("t/b") == b"beta"
        assert barrier.get("old") is None
        assert b"alpha" not in backend.get("t/a")
        assert aead.decrypt(barrier.keyring.active_key().value, backend.get("t/b"), b"t/b") == b"beta"

    def test_txn_delete_tree(self, barrier):
        barrier.put("t/a", b"1")
        barrier.put("t/b/c", b"2")
        barrier.txn([TxnOp("delete-tree", "t/")])
        assert barrier.list("t/") == []


class TestOptimisticConcurrency:
    def test_get_with_index_decrypts_and_returns_the_backend_index(self, barrier, backend):
        written = barrier.put("a", b"secret")
        assert barrier.get_with_index("a") == (b"secret", written)
        assert backend.get_with_index("a")[1] == written
        assert barrier.get_with_index("missing") == (None, 0)

    def test_get_with_index_checks_integrity(self, barrier, backend):
        barrier.put("a", b"secret")
        backend.put("b", backend.get("a"))
        with pytest.raises(IntegrityError):
            barrier.get_with_index("b")

    def test_checks_pass_through_and_sets_are_still_encrypted(self, barrier, backend):
        _, index = barrier.get_with_index("a")
        barrier.txn([TxnOp("check-index", "a", index=index), TxnOp("set", "a", b"one")])
        value, index = barrier.get_with_index("a")
        assert value == b"one" and b"one" not in backend.get("a")
        barrier.txn([TxnOp("check-index", "a", index=index), TxnOp("check-not-exists", "b"), TxnOp("set", "a", b"two")])
        assert barrier.get("a") == b"two"

    def test_failed_check_raises_write_conflict_and_writes_nothing(self, barrier, backend):
        barrier.put("a", b"one")
        _, index = barrier.get_with_index("a")
        barrier.put("a", b"concurrent")
        with pytest.raises(WriteConflict):
            barrier.txn(
                [TxnOp("check-index", "a", index=index), TxnOp("set", "a", b"stale"), TxnOp("set", "b", b"side")]
            )
        assert barrier.get("a") == b"concurrent"
        assert barrier.get("b") is None

    def test_view_prefixes_checked_keys(self, barrier, backend):
        view = BarrierView(barrier, "logical/m/")
        assert view.get_with_index("k") == (None, 0)
        written = view.txn([TxnOp("check-not-exists", "k"), TxnOp("set", "k", b"v")])
        assert view.get_with_index("k") == (b"v", written)
        assert backend.get_with_index("logical/m/k")[1] == written
        with pytest.raises(WriteConflict):
            view.txn([TxnOp("check-not-exists", "k"), TxnOp("set", "k", b"again")])
        view.txn([TxnOp("check-index", "k", index=written), TxnOp("set", "k", b"w2")])
        assert view.get("k") == b"w2"

    def test_nested_views_keep_the_check_index(self, barrier):
        inner = BarrierView(BarrierView(barrier, "logical/"), "m/")
        written = inner.put("k", b"v")
        with pytest.raises(WriteConflict):
            inner.txn([TxnOp("check-index", "k", index=written - 1), TxnOp("set", "k", b"x")])
        inner.txn([TxnOp("check-index", "k", index=written), TxnOp("set", "k", b"x")])
        assert inner.get("k") == b"x"

    def test_view_dot_dot_is_refused_in_checks(self, barrier):
        view = BarrierView(barrier, "logical/a/")
        with pytest.raises(InvalidRequest, match="relative paths not supported"):
            view.txn([TxnOp("check-not-exists", "../b/k")])
        with pytest.raises(InvalidRequest, match="relative paths not supported"):
            view.get_with_index("../b/k")

    def test_view_over_read_only_storage_reads_indexes_and_refuses_checks(self, backend):
        written = backend.put("p/a", b"1")
        view = BarrierView(ReadOnlyView(backend), "p/")
        assert view.get_with_index("a") == (b"1", written)
        with pytest.raises(ReadOnly):
            view.txn([TxnOp("check-index", "a", index=written)])


class TestConfidentialityAndIntegrity:
    def test_stored_bytes_do_not_contain_plaintext(self, barrier, backend):
        plaintext = b"correct horse battery staple"
        barrier.put("logical/m/k", plaintext)
        stored = backend.get("logical/m/k")
        assert plaintext not in stored
        assert plaintext[:8] not in stored
        assert aead.term_of(stored) == 1
        assert stored[4] == 0x02

    def test_same_value_encrypts_differently_each_time(self, barrier, backend):
        barrier.put("a", b"same")
        first = backend.get("a")
        barrier.put("a", b"same")
        assert backend.get("a") != first

    def test_blob_moved_to_another_key_fails(self, barrier, backend):
        barrier.put("logical/m/alice", b"alice's secret")
        backend.put("logical/m/bob", backend.get("logical/m/alice"))
        with pytest.raises(IntegrityError):
            barrier.get("logical/m/bob")

    def test_blob_moved_into_another_view_fails(self, barrier, backend):
        view_a, view_b = BarrierView(barrier, "logical/a/"), BarrierView(barrier, "logical/b/")
        view_a.put("k", b"v")
        backend.put("logical/b/k", backend.get("logical/a/k"))
        with pytest.raises(IntegrityError):
            view_b.get("k")

    def test_tampered_blob_fails(self, barrier, backend):
        barrier.put("a", b"value")
        stored = backend.get("a")
        for position in range(4, len(stored)):
            tampered = bytearray(stored)
            tampered[position] ^= 0x80
            backend.put("a", bytes(tampered))
            with pytest.raises(IntegrityError):
                barrier.get("a")

    def test_truncated_blob_fails(self, barrier, backend):
        backend.put("a", b"\x00\x00")
        with pytest.raises(IntegrityError):
            barrier.get("a")

    def test_plaintext_written_under_the_barrier_fails(self, barrier, backend):
        backend.put("a", b"written around the barrier")
        with pytest.raises(IntegrityError):
            barrier.get("a")

    def test_unknown_term_fails(self, barrier, backend, keyring, clock):
        rotated = keyring.rotate(clock)
        writer = Barrier(backend)
        writer.set_keyring(rotated)
        writer.put("a", b"from the future")
        with pytest.raises(IntegrityError, match="term 2"):
            barrier.get("a")

    def test_term_zero_blobs_of_the_seal_are_never_opened(self, barrier, backend, keyring):
        # The seal stores the keyring under the root key with term 0.
        backend.put("core/keyring", aead.encrypt(keyring.root_key, 0, keyring.serialize(), b"core/keyring"))
        with pytest.raises(IntegrityError):
            barrier.get("core/keyring")

    def test_different_keyring_cannot_read(self, barrier, backend, clock):
        barrier.put("a", b"value")
        stranger = Barrier(backend)
        stranger.set_keyring(Keyring.generate(clock))
        with pytest.raises(IntegrityError):
            stranger.get("a")


class CountingBackend(InmemBackend):
    """In-memory storage that counts prefix reads."""

    def __init__(self):
        super().__init__()
        self.prefix_reads = 0

    def get_prefix(self, prefix):
        self.prefix_reads += 1
        return super().get_prefix(prefix)


class TestGetPrefix:
    def test_values_decrypted_with_indexes_from_one_backend_read(self, keyring):
        backend = CountingBackend()
        barrier = Barrier(backend)
        barrier.set_keyring(keyring)
        first = barrier.txn([TxnOp("set", "s/a/meta", b"m"), TxnOp("set", "s/a/1", b"")])
        second = barrier.put("s/a/2", b"two")
        barrier.put("s/b/meta", b"other")
        found = barrier.get_prefix("s/a/")
        assert backend.prefix_reads == 1
        assert dict(found) == {"s/a/meta": (b"m", first), "s/a/1": (b"", first), "s/a/2": (b"two", second)}
        assert found.modify_index("s/a/2") == second
        assert barrier.get_prefix("none/") == {}

    def test_each_value_is_authenticated_with_its_own_key(self, barrier, backend):
        barrier.put("s/a/1", b"one")
        barrier.put("s/a/2", b"two")
        # Swap the two ciphertexts: each is valid, but not under the other's key.
        one, two = backend.get("s/a/1"), backend.get("s/a/2")
        backend.put("s/a/1", two)
        backend.put("s/a/2", one)
        found = barrier.get_prefix("s/a/")
        for key in ("s/a/1", "s/a/2"):
            with pytest.raises(IntegrityError):
                found[key]

    def test_a_bad_entry_fails_alone_and_only_when_looked_up(self, barrier, backend):
        barrier.put("s/a/meta", b"m")
        backend.put("s/a/1", b"written around the barrier")
        barrier.put("s/a/2", b"fine")
        found = barrier.get_prefix("s/a/")
        assert "s/a/1" in found and sorted(found) == ["s/a/1", "s/a/2", "s/a/meta"] and len(found) == 3
        assert found["s/a/meta"][0] == b"m" and found.get("s/a/2")[0] == b"fine"
        with pytest.raises(IntegrityError):
            found["s/a/1"]
        with pytest.raises(IntegrityError):
            dict(found)

    def test_only_looked_up_values_are_decrypted(self, barrier, keyring):
        for n in range(10):
            barrier.put(f"s/a/{n}", str(n).encode())
        counting = CountingKeyring(keyring)
        barrier.set_keyring(counting)
        found = barrier.get_prefix("s/a/")
        assert len(found) == 10 and "s/a/3" in found and found.modify_index("s/a/3") > 0
        assert counting.decryptions == 0
        assert found["s/a/3"][0] == b"3" and found["s/a/3"][0] == b"3"
        assert counting.decryptions == 1

    def test_values_of_every_term_are_read(self, barrier, backend, keyring, clock):
        barrier.put("s/old", b"term 1")
        barrier.set_keyring(keyring.rotate(clock))
        barrier.put("s/new", b"term 2")
        found = barrier.get_prefix("s/")
        assert (found["s/old"][0], found["s/new"][0]) == (b"term 1", b"term 2")
        assert (aead.term_of(backend.get("s/old")), aead.term_of(backend.get("s/new"))) == (1, 2)

    def test_unknown_term_fails_on_lookup(self, barrier, backend, keyring, clock):
        writer = Barrier(backend)
        writer.set_keyring(keyring.rotate(clock))
        writer.put("s/a", b"from the future")
        found = barrier.get_prefix("s/")
        with pytest.raises(IntegrityError, match="term 2"):
            found["s/a"]

    def test_view_keys_are_relative_and_the_aad_is_the_full_key(self, barrier, backend):
        view = BarrierView(BarrierView(barrier, "logical/"), "m/")
        written = view.put("s/a/1", b"one")
        barrier.put("logical/m/s/b/1", b"other folder")
        barrier.put("logical/n/s/a/1", b"other mount")
        found = view.get_prefix("s/a/")
        assert dict(found) == {"s/a/1": (b"one", written)}
        assert "s/a/1" in found and "logical/m/s/a/1" not in found and 1 not in found
        assert dict(view.get_prefix("")) == {"s/a/1": (b"one", written), "s/b/1": (b"other folder", written + 1)}
        # A ciphertext copied from another mount's same relative key does not open.
        backend.put("logical/m/s/a/1", backend.get("logical/n/s/a/1"))
        with pytest.raises(IntegrityError):
            view.get_prefix("s/a/")["s/a/1"]

    def test_view_refuses_dot_dot(self, barrier):
        with pytest.raises(InvalidRequest, match="relative paths not supported"):
            BarrierView(barrier, "logical/a/").get_prefix("../b/")

    def test_view_over_read_only_storage_reads_prefixes(self, backend):
        written = backend.put("p/a/1", b"plain")
        view = BarrierView(ReadOnlyView(backend), "p/")
        assert dict(view.get_prefix("a/")) == {"a/1": (b"plain", written)}


class TestRotation:
    def test_rotate_keeps_old_values_readable_and_writes_new_term(self, barrier, backend, keyring, clock):
        barrier.put("old", b"written under term 1")
        barrier.set_keyring(keyring.rotate(clock))
        barrier.put("new", b"written under term 2")
        assert aead.term_of(backend.get("old")) == 1
        assert aead.term_of(backend.get("new")) == 2
        assert barrier.get("old") == b"written under term 1"
        assert barrier.get("new") == b"written under term 2"

    def test_rewrite_after_rotation_upgrades_term(self, barrier, backend, keyring, clock):
        barrier.put("a", b"v1")
        barrier.set_keyring(keyring.rotate(clock).rotate(clock))
        barrier.put("a", b"v2")
        assert aead.term_of(backend.get("a")) == 3
        assert barrier.get("a") == b"v2"

    def test_new_root_key_does_not_affect_values(self, barrier, keyring):
        barrier.put("a", b"v")
        barrier.set_keyring(keyring.with_root_key(b"\x11" * 32))
        assert barrier.get("a") == b"v"


class TestSealed:
    OPERATIONS = {
        "get": lambda b: b.get("a"),
        "get_with_index": lambda b: b.get_with_index("a"),
        "get_prefix": lambda b: b.get_prefix("a/"),
        "put": lambda b: b.put("a", b"v"),
        "delete": lambda b: b.delete("a"),
        "delete_prefix": lambda b: b.delete_prefix("a/"),
        "list": lambda b: b.list(""),
        "txn": lambda b: b.txn([TxnOp("set", "a", b"v")]),
        "index": lambda b: b.index(),
    }

    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_new_barrier_is_sealed(self, backend, operation):
        barrier = Barrier(backend)
        assert barrier.sealed and barrier.keyring is None
        with pytest.raises(Sealed):
            self.OPERATIONS[operation](barrier)

    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_sealing_forgets_the_keyring(self, barrier, operation):
        barrier.put("a", b"v")
        barrier.set_keyring(None)
        assert barrier.sealed
        with pytest.raises(Sealed):
            self.OPERATIONS[operation](barrier)

    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_views_of_a_sealed_barrier_raise_sealed(self, backend, operation):
        view = BarrierView(Barrier(backend), "logical/m/")
        with pytest.raises(Sealed):
            self.OPERATIONS[operation](view)

    def test_sealed_write_stores_nothing(self, backend):
        barrier = Barrier(backend)
        with pytest.raises(Sealed):
            barrier.put("a", b"v")
        assert backend.get("a") is None

    def test_unseal_again(self, barrier, keyring):
        barrier.put("a", b"v")
        barrier.set_keyring(None)
        barrier.set_keyring(keyring)
        assert not barrier.sealed and barrier.keyring is keyring
        assert barrier.get("a") == b"v"


class TestConcurrency:
    def test_readers_survive_keyring_swaps(self, barrier, keyring, clock):
        for i in range(20):
            barrier.put(f"k/{i}", str(i).encode())
        rotated = keyring.rotate(clock)
        errors = []
        stop = threading.Event()

        def read():
            try:
                while not stop.is_set():
                    for i in range(20):
                        assert barrier.get(f"k/{i}") == str(i).encode()
            except Exception as exc:  # collected so the main thread can report it
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(4)]
        for thread in readers:
            thread.start()
        for n in range(200):
            barrier.set_keyring(rotated if n % 2 else keyring)
            barrier.put(f"w/{n}", b"x")
        stop.set()
        for thread in readers:
            thread.join()
        assert errors == []


class TestBarrierView:
    def test_keys_are_prefixed_in_the_parent(self, barrier, backend):
        view = BarrierView(barrier, "logical/uuid-1/")
        view.put("config", b"c")
        assert barrier.get("logical/uuid-1/config") == b"c"
        assert view.get("config") == b"c"
        assert backend.get("config") is None
        assert aead.term_of(backend.get("logical/uuid-1/config")) == 1

    def test_list_is_relative_and_confined(self, barrier):
        view = BarrierView(barrier, "logical/a/")
        view.put("x", b"1")
        view.put("dir/y", b"2")
        barrier.put("logical/b/secret", b"other mount")
        barrier.put("logical/ab", b"sibling with a shared prefix")
        assert view.list("") == ["dir/", "x"]
        assert view.list() == ["dir/", "x"]
        assert view.list("dir/") == ["y"]

    def test_dot_dot_is_refused(self, barrier):
        view = BarrierView(barrier, "logical/a/")
        for operation in (
            lambda: view.get("../b/secret"),
            lambda: view.put("x/../y", b"v"),
            lambda: view.delete(".."),
            lambda: view.list("../"),
            lambda: view.delete_prefix("../"),
            lambda: view.txn([TxnOp("set", "..", b"v")]),
        ):
            with pytest.raises(InvalidRequest, match="relative paths not supported"):
                operation()

    def test_delete_and_delete_prefix_stay_inside(self, barrier):
        view = BarrierView(barrier, "logical/a/")
        view.put("x", b"1")
        view.put("d/y", b"2")
        barrier.put("logical/b/x", b"keep")
        view.delete("x")
        assert view.get("x") is None
        view.delete_prefix("")
        assert view.list() == []
        assert barrier.get("logical/b/x") == b"keep"

    def test_txn_keys_are_relative(self, barrier):
        view = BarrierView(barrier, "auth/u/")
        view.put("gone", b"x")
        view.txn([TxnOp("set", "user/alice", b"a"), TxnOp("delete", "gone"), TxnOp("delete-tree", "tmp/")])
        assert barrier.get("auth/u/user/alice") == b"a"
        assert barrier.get("auth/u/gone") is None

    def test_index_delegates(self, barrier, backend):
        view = BarrierView(barrier, "logical/a/")
        written = view.put("x", b"1")
        assert view.index() == written == backend.index()

    def test_views_nest(self, barrier):
        outer = BarrierView(barrier, "logical/")
        inner = BarrierView(outer, "m/")
        inner.put("k", b"v")
        assert inner.prefix == "logical/m/"
        assert barrier.get("logical/m/k") == b"v"
        assert outer.get("m/k") == b"v"
        assert outer.list() == ["m/"]
        assert inner.list() == ["k"]

    def test_moved_value_inside_a_view_fails(self, barrier, backend):
        view = BarrierView(barrier, "logical/a/")
        view.put("x", b"secret")
        backend.put("logical/a/y", backend.get("logical/a/x"))
        with pytest.raises(IntegrityError):
            view.get("y")

    def test_view_directly_over_a_backend(self, backend):
        view = BarrierView(backend, "sys/")
        view.put("a", b"plain")
        assert backend.get("sys/a") == b"plain"
        assert view.list() == ["a"]

    def test_view_over_read_only_storage_refuses_writes(self, backend):
        backend.put("p/a", b"1")
        view = BarrierView(ReadOnlyView(backend), "p/")
        assert view.get("a") == b"1"
        with pytest.raises(ReadOnly):
            view.put("b", b"2")

    @pytest.mark.parametrize("prefix", ["", "logical", "/logical/", "a/../b/", None])
    def test_bad_prefix_is_refused(self, barrier, prefix):
        with pytest.raises(InvalidRequest):
            BarrierView(barrier, prefix)


class TestEveryReadIsAuthenticated:
    """No plaintext is kept between reads: each read decrypts and
    authenticates what storage returned, whatever was read before."""

    @pytest.fixture
    def counting(self, barrier, keyring):
        counting = CountingKeyring(keyring)
        barrier.set_keyring(counting)
        return counting

    def test_each_read_decrypts_what_storage_holds(self, barrier, counting):
        barrier.put("a", b"one")
        for _ in range(3):
            assert barrier.get("a") == b"one"
            assert barrier.get_with_index("a")[0] == b"one"
            assert barrier.get_prefix("")["a"][0] == b"one"
        assert counting.decryptions == 9
        assert not hasattr(barrier, "_opened")  # no memo of plaintexts on the barrier

    def test_a_value_read_before_is_refused_once_tampered(self, barrier, backend, counting):
        barrier.put("a", b"value")
        assert barrier.get("a") == b"value"
        tampered = bytearray(backend.get("a"))
        tampered[-1] ^= 0x80
        backend.put("a", bytes(tampered))
        with pytest.raises(IntegrityError):
            barrier.get("a")

    def test_a_value_read_at_one_path_is_refused_at_another(self, barrier, backend, counting):
        barrier.put("logical/m/alice", b"alice's secret")
        assert barrier.get("logical/m/alice") == b"alice's secret"
        backend.put("logical/m/bob", backend.get("logical/m/alice"))
        with pytest.raises(IntegrityError):
            barrier.get("logical/m/bob")

    def test_sealing_refuses_reads_read_before(self, barrier, keyring, counting):
        barrier.put("a", b"one")
        assert barrier.get("a") == b"one"
        barrier.set_keyring(None)
        with pytest.raises(Sealed):
            barrier.get("a")

    def test_a_keyring_key_builds_its_cipher_once(self, keyring):
        key = keyring.active_key()
        assert key.cipher is key.cipher
        assert "cipher" not in repr(key) and key.value.hex() not in repr(key)
