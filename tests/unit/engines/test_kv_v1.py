"""KV version 1 and the engine registry (shapes checked against OpenBao 2.7.2)."""

from __future__ import annotations

import pytest

from strongroom.engines import ENGINE_TYPES, create_engine
from strongroom.engines.kv import KVv1, KVv2
from strongroom.engines.kv.v1 import DEFAULT_LEASE_TTL
from strongroom.errors import InvalidRequest, MethodNotAllowed, ReadOnly, RequestTooLarge, StorageUnavailable
from strongroom.sdk import logical
from strongroom.storage import ReadOnlyView
from strongroom.storage.inmem import InmemBackend
from tests.unit.engines.kv_support import make_request


def write(engine, path, data, operation=logical.UPDATE):
    return engine.handle(make_request(operation, path, data))


def read(engine, path):
    return engine.handle(make_request(logical.READ, path))


def listing(engine, path):
    return engine.handle(make_request(logical.LIST, path))


# --- registry -------------------------------------------------------------------


def test_registry_builds_kv_versions(backend, clock):
    assert set(ENGINE_TYPES) >= {"kv", "generic"}
    assert isinstance(create_engine("kv", {}, backend, clock), KVv1)
    assert isinstance(create_engine("kv", None, backend, clock), KVv1)
    assert isinstance(create_engine("kv", {"version": "1"}, backend, clock), KVv1)
    assert isinstance(create_engine("kv", {"version": "2"}, backend, clock), KVv2)
    assert isinstance(create_engine("kv", {"version": 2}, backend, clock), KVv2)
    assert isinstance(create_engine("generic", {}, backend, clock), KVv1)


def test_registry_rejects_unknown_type(backend, clock):
    with pytest.raises(InvalidRequest) as info:
        create_engine("nope", {}, backend, clock)
    assert info.value.messages == ["plugin not found in the catalog: nope"]


def test_registry_rejects_unknown_kv_version(backend, clock):
    with pytest.raises(InvalidRequest) as info:
        create_engine("kv", {"version": "3"}, backend, clock)
    assert info.value.messages == ['nil backend of type "kv" returned from factory']


# --- read / write -----------------------------------------------------------------


def test_write_then_read_returns_data_with_default_lease(kv1):
    resp = write(kv1, "foo", {"a": 1, "b": {"c": [1, 2]}}, logical.CREATE)
    assert resp.data is None and resp.status is None  # 204
    assert resp.index > 0
    got = read(kv1, "foo")
    assert got.data == {"a": 1, "b": {"c": [1, 2]}}
    assert got.lease_duration == DEFAULT_LEASE_TTL == 2764800
    assert got.lease_id == "" and got.renewable is False


@pytest.mark.parametrize(
    "data, lease",
    [
        ({"ttl": "1h"}, 3600),
        ({"ttl": 60}, 60),
        ({"ttl": "-5s"}, -5),
        ({"ttl": "90"}, 90),
        ({"ttl": "2d"}, 172800),
        ({"ttl": "xyz"}, DEFAULT_LEASE_TTL),  # unparsable: Vault keeps the default
        ({"lease": "10m"}, 600),
        ({"ttl": "1m", "lease": "1h"}, 60),
    ],
)
def test_ttl_key_sets_lease_duration(kv1, data, lease):
    write(kv1, "s", data)
    got = read(kv1, "s")
    assert got.lease_duration == lease
    assert got.data == data


def test_write_replaces_whole_object(kv1):
    write(kv1, "foo", {"a": 1, "b": 2})
    write(kv1, "foo", {"c": 3})
    assert read(kv1, "foo").data == {"c": 3}


def test_read_missing_is_none(kv1):
    assert read(kv1, "nothing") is None
    assert read(kv1, "") is None
    assert read(kv1, "dir/") is None


def test_empty_body_is_missing_data_fields(kv1):
    with pytest.raises(InvalidRequest) as info:
        write(kv1, "foo", {})
    assert info.value.messages == ["missing data fields"]


def test_write_to_mount_root_is_missing_path(kv1):
    with pytest.raises(InvalidRequest) as info:
        kv1.handle(make_request(logical.UPDATE, "", {"a": 1}, mount="kv1"))
    assert info.value.messages == ["missing path"]
    with pytest.raises(InvalidRequest) as info:
        kv1.handle(make_request(logical.UPDATE, "", {"a": 1}, mount="kv1/"))
    assert info.value.messages == ["cannot write to a path ending in '/'"]


@pytest.mark.parametrize("operation", [logical.CREATE, logical.UPDATE, logical.PATCH])
def test_write_to_folder_is_refused(kv1, operation):
    with pytest.raises(InvalidRequest) as info:
        write(kv1, "dir/", {"a": 1}, operation)
    assert info.value.messages == ["cannot write to a path ending in '/'"]


def test_patch_is_not_supported(kv1):
    write(kv1, "foo", {"a": 1})
    with pytest.raises(MethodNotAllowed):
        write(kv1, "foo", {"a": 2}, logical.PATCH)


# --- delete / list ----------------------------------------------------------------


def test_delete_removes_and_is_idempotent(kv1):
    write(kv1, "foo", {"a": 1})
    assert kv1.handle(make_request(logical.DELETE, "foo")).data is None
    assert read(kv1, "foo") is None
    resp = kv1.handle(make_request(logical.DELETE, "foo"))
    assert resp.data is None and resp.status is None


def test_list_children_and_folders(kv1):
    for path in ("bar", "foo", "dir/baz", "dir/sub/x"):
        write(kv1, path, {"a": 1})
    assert listing(kv1, "").data == {"keys": ["bar", "dir/", "foo"]}
    assert listing(kv1, "dir/").data == {"keys": ["baz", "sub/"]}
    assert listing(kv1, "dir").data == {"keys": ["baz", "sub/"]}


def test_list_empty_or_of_a_secret_is_none(kv1):
    write(kv1, "foo", {"a": 1})
    assert listing(kv1, "nothing/") is None
    assert listing(kv1, "foo") is None


def test_exists_reflects_storage(kv1):
    request = make_request(logical.CREATE, "foo", {"a": 1})
    assert kv1.exists(request) is False
    kv1.handle(request)
    assert kv1.exists(make_request(logical.UPDATE, "foo", {"a": 1})) is True
    assert kv1.unauthenticated_paths() == []


# --- storage errors ---------------------------------------------------------------


def test_too_large_value_propagates_and_keeps_old_value(clock):
    engine = create_engine("kv", {}, InmemBackend(max_value_size=64), clock)
    write(engine, "foo", {"a": 1})
    with pytest.raises(RequestTooLarge):
        write(engine, "foo", {"a": "x" * 100})
    assert read(engine, "foo").data == {"a": 1}


def test_failed_write_keeps_old_value(kv1, backend):
    write(kv1, "foo", {"a": 1})
    backend.fail_txns = 1
    with pytest.raises(StorageUnavailable):
        write(kv1, "foo", {"a": 2})
    assert read(kv1, "foo").data == {"a": 1}


def test_reads_work_on_read_only_storage(backend, clock):
    create_engine("kv", {}, backend, clock).handle(make_request(logical.UPDATE, "foo", {"a": 1}))
    standby = create_engine("kv", {}, ReadOnlyView(backend), clock)
    assert standby.handle(make_request(logical.READ, "foo")).data == {"a": 1}
    assert standby.handle(make_request(logical.LIST, "")).data == {"keys": ["foo"]}
    with pytest.raises(ReadOnly):
        standby.handle(make_request(logical.UPDATE, "foo", {"a": 2}))
