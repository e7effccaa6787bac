"""KV v2 under concurrent writers that share storage but no lock.

Each "process" is its own engine instance over its own ``RaceView`` of one
in-memory backend, exactly as gunicorn workers (or nodes) share Consul: the
engines' in-process locks are distinct, so only the storage checks keep the
read-modify-write cycles of the metadata and the config correct.
Real-Consul versions of the thread races are in tests/integration/storage.
"""

from __future__ import annotations

import threading

import pytest

from strongroom.engines.kv import KVv2
from strongroom.errors import CheckAndSetMismatch, StorageUnavailable
from strongroom.sdk import logical
from strongroom.storage.inmem import InmemBackend
from tests.unit.engines.kv_support import FakeClock, RaceView, make_request

WRITERS = 8


def call(engine, operation, relative_path, data=None):
    return engine.handle(make_request(operation, relative_path, data))


def write(engine, path, data, cas=None):
    body = {"data": data}
    if cas is not None:
        body["options"] = {"cas": cas}
    return call(engine, logical.UPDATE, "data/" + path, body)


def metadata(engine, path):
    resp = call(engine, logical.READ, "metadata/" + path)
    return None if resp is None else resp.data


def data_at(engine, path, version):
    return call(engine, logical.READ, "data/" + path, {"version": str(version)}).data["data"]


@pytest.fixture
def backend():
    return InmemBackend()


@pytest.fixture
def clock():
    return FakeClock()


def process(backend, clock, **view_options) -> tuple[KVv2, RaceView]:
    """One engine with its own view: a separate worker process as far as locks go."""
    view = RaceView(backend, **view_options)
    return KVv2(view, clock, sleep=lambda seconds: None), view


def run_threads(count, target):
    start = threading.Barrier(count)
    errors = []

    def run(n):
        start.wait()
        try:
            target(n)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []


# --- thread races -------------------------------------------------------------------


def test_cas_writers_in_separate_engines_get_each_version_exactly_once(backend, clock):
    processes = [process(backend, clock, read_pause=0.001) for _ in range(WRITERS)]
    won: dict[int, int] = {}
    mismatches = []

    def writer(n):
        engine, _ = processes[n]
        while True:
            meta = metadata(engine, "shared")
            current = 0 if meta is None else meta["current_version"]
            try:
                resp = write(engine, "shared", {"writer": n}, cas=current)
            except CheckAndSetMismatch:
                mismatches.append(n)
                continue
            won[n] = resp.data["version"]
            return

    run_threads(WRITERS, writer)
    assert sorted(won.values()) == list(range(1, WRITERS + 1))
    reader = processes[0][0]
    assert metadata(reader, "shared")["current_version"] == WRITERS
    for n, version in won.items():
        assert data_at(reader, "shared", version) == {"writer": n}
    # The race really happened: commits collided in storage and cas was re-checked.
    assert sum(view.conflicts for _, view in processes) > 0
    assert mismatches


def test_writers_without_cas_never_share_or_lose_a_version(backend, clock):
    processes = [process(backend, clock, read_pause=0.001) for _ in range(WRITERS)]
    won: dict[int, int] = {}

    def writer(n):
        won[n] = write(processes[n][0], "shared", {"writer": n}).data["version"]

    run_threads(WRITERS, writer)
    assert sorted(won.values()) == list(range(1, WRITERS + 1))
    reader = processes[0][0]
    assert sorted(metadata(reader, "shared")["versions"]) == [str(v) for v in range(1, WRITERS + 1)]
    for n, version in won.items():
        assert data_at(reader, "shared", version) == {"writer": n}
    assert sum(view.conflicts for _, view in processes) > 0


def test_config_writers_in_separate_engines_keep_every_setting(backend, clock):
    processes = [process(backend, clock, read_pause=0.001) for _ in range(2)]
    settings = [{"max_versions": 7}, {"cas_required": True}]
    run_threads(2, lambda n: call(processes[n][0], logical.UPDATE, "config", settings[n]))
    config = call(processes[0][0], logical.READ, "config").data
    assert (config["max_versions"], config["cas_required"]) == (7, True)


# --- staged interleavings: another process commits between a read and a commit ------


def test_conflicting_commit_re_validates_cas(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    write(b, "k", {"v": 1})
    a_view.before_txn.append(lambda: write(b, "k", {"v": "b"}))
    with pytest.raises(CheckAndSetMismatch):
        write(a, "k", {"v": "a"}, cas=1)
    assert a_view.conflicts == 1
    assert metadata(a, "k")["current_version"] == 2
    assert data_at(a, "k", 2) == {"v": "b"}


def test_conflicting_write_without_cas_becomes_the_next_version(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    a_view.before_txn.append(lambda: write(b, "k", {"v": "b"}))
    assert write(a, "k", {"v": "a"}).data["version"] == 2
    assert a_view.conflicts == 1
    assert (data_at(a, "k", 1), data_at(a, "k", 2)) == ({"v": "b"}, {"v": "a"})


def test_conflicting_patch_applies_to_the_newest_version(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    write(b, "k", {"a": 1})
    a_view.before_txn.append(lambda: write(b, "k", {"a": 9, "c": 3}))
    resp = call(a, logical.PATCH, "data/k", {"data": {"b": 2}})
    assert resp.data["version"] == 3
    assert data_at(a, "k", 3) == {"a": 9, "b": 2, "c": 3}


def test_metadata_settings_and_new_versions_do_not_undo_each_other(backend, clock):
    a, a_view = process(backend, clock)
    b, b_view = process(backend, clock)
    write(b, "k", {"v": 1})
    a_view.before_txn.append(lambda: write(b, "k", {"v": 2}))
    call(a, logical.UPDATE, "metadata/k", {"custom_metadata": {"owner": "a"}, "max_versions": 5})
    b_view.before_txn.append(lambda: call(a, logical.PATCH, "metadata/k", {"custom_metadata": {"team": "x"}}))
    write(b, "k", {"v": 3})
    meta = metadata(a, "k")
    assert meta["current_version"] == 3
    assert meta["max_versions"] == 5
    assert meta["custom_metadata"] == {"owner": "a", "team": "x"}
    assert (a_view.conflicts, b_view.conflicts) == (1, 1)


@pytest.mark.parametrize(
    "path, check",
    [
        ("delete/k", lambda meta: meta["versions"]["1"]["deletion_time"] != ""),
        ("undelete/k", lambda meta: meta["versions"]["1"]["deletion_time"] == ""),
        ("destroy/k", lambda meta: meta["versions"]["1"]["destroyed"]),
    ],
)
def test_version_operations_racing_with_a_write_keep_both(backend, clock, path, check):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    write(b, "k", {"v": 1})
    if path == "undelete/k":
        call(b, logical.UPDATE, "delete/k", {"versions": [1]})
    a_view.before_txn.append(lambda: write(b, "k", {"v": 2}))
    call(a, logical.UPDATE, path, {"versions": [1]})
    meta = metadata(a, "k")
    assert meta["current_version"] == 2 and check(meta)
    assert data_at(a, "k", 2) == {"v": 2}
    assert a_view.conflicts == 1


def test_soft_delete_of_latest_racing_with_a_write_deletes_the_new_latest(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    write(b, "k", {"v": 1})
    a_view.before_txn.append(lambda: write(b, "k", {"v": 2}))
    call(a, logical.DELETE, "data/k")
    meta = metadata(a, "k")
    assert meta["versions"]["1"]["deletion_time"] == ""
    assert meta["versions"]["2"]["deletion_time"] != ""


def test_write_racing_with_metadata_delete_starts_the_key_afresh(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    write(b, "k", {"v": 1})
    write(b, "k", {"v": 2})
    a_view.before_txn.append(lambda: call(b, logical.DELETE, "metadata/k"))
    assert write(a, "k", {"v": "after"}).data["version"] == 1
    meta = metadata(a, "k")
    assert (meta["current_version"], sorted(meta["versions"])) == (1, ["1"])
    assert data_at(a, "k", 1) == {"v": "after"}


def test_first_writes_of_a_new_key_collide_on_check_not_exists(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    a_view.before_txn.append(lambda: write(b, "new", {"v": "b"}, cas=0))
    with pytest.raises(CheckAndSetMismatch):
        write(a, "new", {"v": "a"}, cas=0)
    assert data_at(a, "new", 1) == {"v": "b"}


def test_contention_gives_up_after_bounded_attempts(backend, clock):
    view = RaceView(backend)
    view.always_conflict = True
    pauses = []
    engine = KVv2(view, clock, rand=lambda: 0.5, sleep=pauses.append, patience=0)
    with pytest.raises(StorageUnavailable, match="too many concurrent writes to secret 'k'"):
        write(engine, "k", {"v": 1})
    assert view.conflicts == 10
    assert pauses == pytest.approx([0.5 * 0.002 * n for n in range(1, 10)])
    assert backend.get_with_index(engine.store.meta_key("k")) == (None, 0)
    view.always_conflict = False
    assert write(engine, "k", {"v": 1}).data["version"] == 1
