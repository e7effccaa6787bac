"""KV v2 storage layout (engines/kv/store.py): a data read reads the metadata and the version's own
key (two cache entries, not the folder), only what is needed decrypted, and reads as one snapshot."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.barrier import Barrier, BarrierView, Keyring
from strongroom.engines import create_engine
from strongroom.engines.kv import KVv2
from strongroom.engines.kv.model import KeyMetadata, encode
from strongroom.sdk import logical
from strongroom.storage import ReadOnlyView
from strongroom.storage.cache import CachedBackend
from strongroom.storage.coherence import CoherenceTable
from strongroom.storage.inmem import InmemBackend
from tests.helpers.counting_keyring import CountingKeyring
from tests.unit.engines.kv_support import FlakyBackend, make_request


class CountingView:
    """A storage view that records every call by name (reads and writes)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def counted(*args, **kwargs):
            self.calls.append(name)
            return method(*args, **kwargs)

        return counted


def call(engine, operation, relative_path, data=None):
    return engine.handle(make_request(operation, relative_path, data))


def put(engine, path, data, **options):
    body = {"data": data}
    if options:
        body["options"] = options
    return call(engine, logical.UPDATE, "data/" + path, body)


def get(engine, path, version=None):
    return call(engine, logical.READ, "data/" + path, None if version is None else {"version": str(version)})


# --- what a read reads ------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative_path, data",
    [
        ("data/foo", None),
        ("data/foo", {"version": "1"}),
        ("data/foo", {"version": "3"}),
        ("subkeys/foo", None),
        ("subkeys/foo", {"version": "2"}),
    ],
)
def test_a_read_of_any_version_reads_the_metadata_then_that_version(clock, relative_path, data):
    view = CountingView(InmemBackend())
    engine = KVv2(view, clock)
    for n in range(3):
        put(engine, "foo", {"n": n})
    view.calls.clear()
    assert call(engine, logical.READ, relative_path, data).status is None
    assert view.calls == ["get", "get"]


def test_reads_of_missing_secrets_and_versions_read_the_metadata_only(clock):
    view = CountingView(InmemBackend())
    engine = KVv2(view, clock)
    put(engine, "foo", {"n": 1})
    call(engine, logical.DELETE, "data/foo")
    view.calls.clear()
    assert get(engine, "nope") is None
    assert get(engine, "foo", version=7) is None
    assert call(engine, logical.READ, "subkeys/nope") is None
    assert get(engine, "foo").status == 404  # deleted: its data is not read
    assert view.calls == ["get"] * 4


class PruningView(CountingView):
    """Runs ``between`` (a write) right after the first read of a key ending in ``meta``."""

    def __init__(self, inner, between):
        super().__init__(inner)
        self.between = between

    def get(self, key):
        value = self.inner.get(key)
        self.calls.append("get")
        if key.endswith("/meta") and self.between is not None:
            between, self.between = self.between, None
            between()
        return value


@pytest.mark.parametrize("change", ["prune", "destroy"])
def test_a_version_gone_between_the_two_reads_is_read_again_as_one_snapshot(clock, change):
    """The metadata said version 1 is live; before its data is read, a write
    prunes it (max_versions 1) or destroys it: the read is answered from one
    read of the folder, as the storage is now, never with an error."""
    inner = InmemBackend()
    writer = KVv2(inner, clock)
    call(writer, logical.UPDATE, "metadata/hot", {"max_versions": 1})
    put(writer, "hot", {"n": 1})
    if change == "prune":
        view = PruningView(inner, lambda: put(writer, "hot", {"n": 2}))
    else:
        view = PruningView(inner, lambda: call(writer, logical.UPDATE, "destroy/hot", {"versions": [1]}))
    reader = KVv2(view, clock)
    resp = get(reader, "hot")
    assert view.calls == ["get", "get", "get_prefix"]
    if change == "prune":
        assert resp.data["data"] == {"n": 2}
        assert resp.data["metadata"]["version"] == 2
    else:
        assert resp.status == 404
        assert resp.data["metadata"]["destroyed"] is True


def test_reads_through_the_node_cache_keep_two_entries_per_secret_whatever_its_versions(clock, tmp_path):
    """A cached folder would hold all ten retained versions of each secret for
    the one read (issue 15: a worker's memory with 1,000 keys)."""
    table = CoherenceTable.create(str(tmp_path / "table"))
    table.set_lease(time.monotonic() + 3600)
    table.set_active(True)
    storage = InmemBackend()
    writer = KVv2(storage, clock)
    for n in range(12):
        for path in ("a", "b", "c"):
            put(writer, path, {"n": n})
    cache = CachedBackend(storage, table)
    reader = KVv2(cache, clock)
    for _ in range(3):
        for path in ("a", "b", "c"):
            assert get(reader, path).data["data"] == {"n": 11}
    assert get(reader, "a", version=5).data["data"] == {"n": 4}
    held = [entry[0] for entry in cache._entries.values()]
    values = sum(len(value) if isinstance(value, dict) else 1 for value in held)  # a folder holds each of its keys
    assert values == 7  # three metadata, three current versions, version 5 of "a"
    table.close()


def test_metadata_read_and_exists_are_one_storage_read(clock):
    view = CountingView(InmemBackend())
    engine = KVv2(view, clock)
    put(engine, "foo", {"n": 1})
    view.calls.clear()
    assert call(engine, logical.READ, "metadata/foo").data["current_version"] == 1
    assert engine.exists(make_request(logical.UPDATE, "data/foo")) is True
    assert engine.exists(make_request(logical.UPDATE, "metadata/nope")) is False
    assert view.calls == ["get_with_index"] * 3


def test_list_is_the_only_storage_list(clock):
    view = CountingView(InmemBackend())
    engine = KVv2(view, clock)
    for path in ("a", "b", "c"):
        assert get(engine, path) is None
        put(engine, path, {"x": 1})
    call(engine, logical.LIST, "metadata/")
    assert view.calls.count("list") == 1


def test_only_the_metadata_and_the_version_read_are_decrypted(keyring_factory, clock):
    keyring = keyring_factory()
    barrier = Barrier(InmemBackend())
    barrier.set_keyring(keyring)
    engine = KVv2(BarrierView(barrier, "logical/m/"), clock)
    for n in range(10):
        put(engine, "foo", {"n": n})
    counting = CountingKeyring(keyring)
    barrier.set_keyring(counting)
    assert get(engine, "foo").data["data"] == {"n": 9}
    assert counting.decryptions == 2
    assert get(engine, "foo", version=4).data["data"] == {"n": 3}
    assert counting.decryptions == 4


def test_read_from_a_performance_standby_view(backend, clock):
    writer = create_engine("kv", {"version": "2"}, backend, clock)
    put(writer, "foo", {"a": 1})
    put(writer, "foo", {"a": 2})
    standby = create_engine("kv", {"version": "2"}, ReadOnlyView(backend), clock)
    assert get(standby, "foo", version=1).data["data"] == {"a": 1}
    assert get(standby, "foo").data["data"] == {"a": 2}


# --- one snapshot --------------------------------------------------------------------


def test_reads_never_see_metadata_without_its_version_data(clock):
    """With max_versions 1 every write deletes the version before it: a read
    taking the metadata and the data in two steps could find the data gone."""
    engine = create_engine("kv", {"version": "2"}, InmemBackend(), clock)
    call(engine, logical.UPDATE, "metadata/hot", {"max_versions": 1})
    put(engine, "hot", {"n": 0})
    stop = threading.Event()
    errors = []

    def write():
        n = 0
        while not stop.is_set():
            n += 1
            put(engine, "hot", {"n": n})

    def read():
        try:
            for _ in range(3000):
                resp = get(engine, "hot")
                assert resp.data["data"]["n"] == resp.data["metadata"]["version"] - 1
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    writer = threading.Thread(target=write)
    readers = [threading.Thread(target=read) for _ in range(2)]
    writer.start()
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join(60)
    stop.set()
    writer.join(60)
    assert errors == []


# --- layout ------------------------------------------------------------------------


def test_layout_of_a_secret(backend, kv2):
    put(kv2, "dir/foo", {"a": 1})
    put(kv2, "dir/foo", {"a": 2})
    folder = kv2.store.folder("dir/foo")
    assert sorted(backend.snapshot()) == sorted(["paths/dir/foo", folder + "meta", folder + "1", folder + "2"])
    call(kv2, logical.DELETE, "metadata/dir/foo")
    assert backend.snapshot() == {}


def test_metadata_only_secret_is_listed_and_deleted(backend, kv2):
    call(kv2, logical.UPDATE, "metadata/only", {"max_versions": 2})
    assert sorted(backend.snapshot()) == sorted(["paths/only", kv2.store.meta_key("only")])
    assert call(kv2, logical.LIST, "metadata/").data == {"keys": ["only"]}
    put(kv2, "only", {"a": 1})
    assert [op.key for op in backend.txns[-1] if op.key.startswith("paths/")] == []
    call(kv2, logical.DELETE, "metadata/only")
    assert backend.snapshot() == {}


def test_large_versions_are_blobs_outside_the_folder(clock):
    backend = FlakyBackend()
    view = CountingView(backend)
    engine = KVv2(view, clock)
    store = engine.store
    big = {"pem": "x" * 5000}  # ten versions of it exceed the folder's budget
    put(engine, "cert", {"small": 1})
    put(engine, "cert", big)
    put(engine, "cert", {"small": 3})
    assert sorted(backend.snapshot()) == sorted(
        [
            "paths/cert",
            store.meta_key("cert"),
            store.version_key("cert", 1),
            store.blob_key("cert", 2),
            store.version_key("cert", 3),
        ]
    )
    view.calls.clear()
    assert get(engine, "cert", version=2).data["data"] == big
    assert view.calls == ["get", "get"]  # the metadata says where the data is: its blob at once
    view.calls.clear()
    assert get(engine, "cert").data["data"] == {"small": 3}
    assert view.calls == ["get", "get"]
    assert call(engine, logical.READ, "subkeys/cert", {"version": "2"}).data["subkeys"] == {"pem": None}


def test_the_folder_budget_counts_every_retained_version(clock):
    backend = FlakyBackend()
    small = len(b'{"data":{"a":"xx"}}')
    engine = KVv2(backend, clock, folder_budget=small * 10)
    store = engine.store
    put(engine, "k", {"a": "xx"})
    put(engine, "k", {"a": "xxx"})
    assert store.version_key("k", 1) in backend.snapshot()
    assert store.blob_key("k", 2) in backend.snapshot()
    call(engine, logical.UPDATE, "metadata/k", {"max_versions": 5})
    put(engine, "k", {"a": "xx"})
    assert store.version_key("k", 3) in backend.snapshot()
    call(engine, logical.UPDATE, "config", {"max_versions": 11})
    put(engine, "k", {"a": "xx"})
    assert store.blob_key("k", 4) in backend.snapshot()
    assert [get(engine, "k", version=n).data["data"] for n in (1, 2, 3, 4)] == [
        {"a": "xx"},
        {"a": "xxx"},
        {"a": "xx"},
        {"a": "xx"},
    ]


def test_blobs_are_patched_pruned_destroyed_and_deleted(clock):
    backend = FlakyBackend()
    engine = KVv2(backend, clock)
    store = engine.store
    call(engine, logical.UPDATE, "metadata/cert", {"max_versions": 2})
    large = "x" * 25_000  # two versions of it exceed the folder's budget
    put(engine, "cert", {"pem": large})
    assert call(engine, logical.PATCH, "data/cert", {"data": {"extra": 1}}).data["version"] == 2
    assert get(engine, "cert").data["data"] == {"pem": large, "extra": 1}
    assert store.blob_key("cert", 1) in backend.snapshot() and store.blob_key("cert", 2) in backend.snapshot()
    put(engine, "cert", {"pem": "y"})  # in the folder; prunes version 1
    assert store.blob_key("cert", 1) not in backend.snapshot()
    assert get(engine, "cert", version=1) is None
    call(engine, logical.UPDATE, "destroy/cert", {"versions": [2]})
    assert store.blob_key("cert", 2) not in backend.snapshot()
    assert get(engine, "cert", version=3).data["data"] == {"pem": "y"}
    put(engine, "cert", {"pem": large})
    call(engine, logical.DELETE, "metadata/cert")
    assert backend.snapshot() == {}


def deletes(backend: FlakyBackend) -> list[str]:
    """The keys the last transaction deleted."""
    return [op.key for op in backend.txns[-1] if op.verb == "delete"]


def test_pruning_and_destroying_delete_a_versions_data_only_where_it_is(clock):
    """Each write of a secret past ``max_versions`` prunes one version: its
    data is deleted from the folder or as a blob, not both (a delete of an
    absent key still costs Consul an operation)."""
    backend = FlakyBackend()
    engine = KVv2(backend, clock)
    store = engine.store
    call(engine, logical.UPDATE, "metadata/cert", {"max_versions": 2})
    put(engine, "cert", {"pem": "x" * 25_000})  # a blob
    put(engine, "cert", {"pem": "y"})  # in the folder
    put(engine, "cert", {"pem": "z"})  # prunes version 1
    assert deletes(backend) == [store.blob_key("cert", 1)]
    put(engine, "cert", {"pem": "w"})  # prunes version 2
    assert deletes(backend) == [store.version_key("cert", 2)]
    call(engine, logical.UPDATE, "destroy/cert", {"versions": [3]})
    assert deletes(backend) == [store.version_key("cert", 3)]
    assert sorted(backend.snapshot()) == sorted(["paths/cert", store.meta_key("cert"), store.version_key("cert", 4)])


def test_metadata_written_before_data_locations_were_kept_deletes_both_places(clock):
    """Metadata from before (three fields per version) says nothing of where
    a version's data is: pruning it deletes the folder key and the blob key."""
    backend = FlakyBackend()
    engine = KVv2(backend, clock)
    store = engine.store
    call(engine, logical.UPDATE, "metadata/old", {"max_versions": 1})
    put(engine, "old", {"v": 1})
    meta = store.load("old").meta
    stored = meta.to_json()
    stored["versions"] = {n: fields[:3] for n, fields in stored["versions"].items()}
    assert KeyMetadata.from_json(stored).versions[1].blob is None
    backend.put(store.meta_key("old"), encode(stored))
    put(engine, "old", {"v": 2})
    assert deletes(backend) == [store.version_key("old", 1), store.blob_key("old", 1)]


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
def keyring_factory():
    def make():
        start = datetime(2026, 1, 1, tzinfo=UTC)
        return Keyring.generate(lambda: start + timedelta(seconds=1))

    return make


def test_writers_of_different_paths_never_wait_for_each_other():
    from strongroom.engines.kv.store import PathLocks

    locks = PathLocks()
    paths = [f"app/k{n}" for n in range(64)]
    counted: list[int] = []

    def hold_all() -> None:
        # Every path held at once, in one thread: with a lock shared by two paths
        # the second acquisition blocks (the 64 hashed locks did for some pair).
        with ExitStack() as stack:
            for path in paths:
                stack.enter_context(locks.hold(path))
            counted.append(len(locks))

    holder = threading.Thread(target=hold_all, daemon=True)
    holder.start()
    holder.join(10)
    assert counted == [64], "a writer waited for another path's lock"
    assert len(locks) == 0  # nothing kept for paths no longer written


def test_writers_of_one_path_take_turns_and_an_error_lets_go():
    from strongroom.engines.kv.store import PathLocks

    locks = PathLocks()
    inside, overlaps = [0], [0]

    def write():
        for _ in range(200):
            with locks.hold("app/one"):
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                time.sleep(0)
                inside[0] -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert overlaps[0] == 0
    with pytest.raises(RuntimeError), locks.hold("app/one"):
        raise RuntimeError("the commit failed")
    assert len(locks) == 0
    with locks.hold("app/one"):  # not left held
        pass
