"""KV v2 over the barrier on real Consul: a read of any version is one Consul
request, and the engine behaves as it does over the in-memory backend."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.barrier import Barrier, BarrierView, Keyring
from strongroom.engines.kv import KVv2
from strongroom.sdk import logical
from strongroom.storage import ReadOnlyView
from tests.integration.storage.test_consul_backend import CountingHTTP
from tests.unit.engines.kv_support import FakeClock, make_request


@pytest.fixture
def barrier(consul_backend):
    ticks = itertools.count()
    barrier = Barrier(consul_backend)
    barrier.set_keyring(Keyring.generate(lambda: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=next(ticks))))
    return barrier


def call(engine, operation, relative_path, data=None):
    return engine.handle(make_request(operation, relative_path, data))


def test_a_read_is_the_metadata_then_the_version_two_consul_requests(barrier, consul_backend):
    """Without the node cache (storage/cache.py holds both as entries): a live
    version costs two requests, an absent or pruned one only the metadata's."""
    engine = KVv2(BarrierView(barrier, "logical/mount-1/"), FakeClock())
    for n in range(12):
        call(engine, logical.UPDATE, "data/app/db", {"data": {"n": n}})
    counting = CountingHTTP(consul_backend._http)
    consul_backend._http = counting
    assert call(engine, logical.READ, "data/app/db").data["data"] == {"n": 11}
    assert call(engine, logical.READ, "data/app/db", {"version": "5"}).data["data"] == {"n": 4}
    assert call(engine, logical.READ, "data/app/db", {"version": "2"}) is None  # pruned
    assert call(engine, logical.READ, "subkeys/app/db").data["subkeys"] == {"n": None}
    assert call(engine, logical.READ, "data/app/none") is None
    assert counting.calls == 2 + 2 + 1 + 2 + 1


def test_secrets_round_trip_list_and_delete_on_consul(barrier, consul_backend):
    engine = KVv2(BarrierView(barrier, "logical/mount-1/"), FakeClock())
    paths = ["plain", "dir/sp ace", "dir/q?x=1", "dir/ünï#2"]
    for path in paths:
        call(engine, logical.UPDATE, "data/" + path, {"data": {"path": path}})
        call(engine, logical.UPDATE, "data/" + path, {"data": {"path": path, "v": 2}})
    # A performance standby's engine: same keyring, read-only storage.
    standby_barrier = Barrier(ReadOnlyView(consul_backend))
    standby_barrier.set_keyring(barrier.keyring)
    standby = KVv2(BarrierView(standby_barrier, "logical/mount-1/"), FakeClock())
    for path in paths:
        assert call(standby, logical.READ, "data/" + path, {"version": "1"}).data["data"] == {"path": path}
        assert call(standby, logical.READ, "data/" + path).data["data"] == {"path": path, "v": 2}
    assert call(standby, logical.LIST, "metadata/").data == {"keys": ["dir/", "plain"]}
    assert call(standby, logical.LIST, "metadata/dir/").data == {"keys": ["q?x=1", "sp ace", "ünï#2"]}
    call(engine, logical.DELETE, "metadata/dir/q?x=1")
    assert call(standby, logical.READ, "data/dir/q?x=1") is None
    assert call(standby, logical.LIST, "metadata/dir/").data == {"keys": ["sp ace", "ünï#2"]}
    assert len(consul_backend.list("logical/mount-1/versions/")) == 3  # one folder per remaining secret


def test_large_versions_are_read_from_their_blob_on_consul(barrier, consul_backend):
    engine = KVv2(BarrierView(barrier, "logical/mount-1/"), FakeClock())
    large = {"pem": "x" * 60_000}
    call(engine, logical.UPDATE, "data/cert", {"data": large})
    call(engine, logical.UPDATE, "data/cert", {"data": {"small": True}})
    counting = CountingHTTP(consul_backend._http)
    consul_backend._http = counting
    assert call(engine, logical.READ, "data/cert", {"version": "1"}).data["data"] == large
    assert counting.calls == 2  # the metadata, then the blob it points at
    assert call(engine, logical.READ, "data/cert").data["data"] == {"small": True}
    assert counting.calls == 4
    call(engine, logical.DELETE, "metadata/cert")
    assert consul_backend.get_prefix("logical/mount-1/") == {}
