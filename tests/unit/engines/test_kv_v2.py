"""KV version 2: data, delete/undelete/destroy, subkeys, routing, atomicity.

Response shapes and messages were compared with OpenBao 2.7.2 (Vault's API).
"""

from __future__ import annotations

import pytest

from strongroom.engines import create_engine
from strongroom.errors import (
    CheckAndSetMismatch,
    InvalidRequest,
    MethodNotAllowed,
    ReadOnly,
    RequestTooLarge,
    StorageUnavailable,
    StrongroomError,
)
from strongroom.sdk import logical
from strongroom.storage import ReadOnlyView
from strongroom.storage.inmem import InmemBackend
from tests.unit.engines.kv_support import START_TEXT, FlakyBackend, make_request


def put(engine, path, data, options=None, operation=logical.UPDATE, **extra):
    body = {"data": data, **extra}
    if options is not None:
        body["options"] = options
    return engine.handle(make_request(operation, "data/" + path, body))


def get(engine, path, **query):
    return engine.handle(make_request(logical.READ, "data/" + path, {k: str(v) for k, v in query.items()}))


def patch(engine, path, body):
    return engine.handle(make_request(logical.PATCH, "data/" + path, body))


def call(engine, operation, relative_path, data=None):
    return engine.handle(make_request(operation, relative_path, data))


def version_meta(version, created=START_TEXT, deletion="", destroyed=False, custom=None):
    return {
        "created_time": created,
        "custom_metadata": custom,
        "deletion_time": deletion,
        "destroyed": destroyed,
        "version": version,
    }


# --- data: write and read ------------------------------------------------------------


def test_write_returns_version_metadata(kv2):
    resp = put(kv2, "foo", {"a": 1, "b": {"c": "d"}}, operation=logical.CREATE)
    assert resp.status is None
    assert resp.data == version_meta(1)
    assert resp.index > 0 and resp.warnings == []


def test_read_latest_and_by_version(kv2, clock):
    put(kv2, "foo", {"a": 1})
    clock.advance(seconds=1)
    put(kv2, "foo", {"a": 2})
    latest = get(kv2, "foo")
    assert latest.status is None
    assert latest.data == {"data": {"a": 2}, "metadata": version_meta(2, created="2024-01-02T03:04:06.123456Z")}
    assert get(kv2, "foo", version=1).data["data"] == {"a": 1}
    assert get(kv2, "foo", version=0).data["data"] == {"a": 2}


def test_read_unknown_key_or_version_is_none(kv2):
    assert get(kv2, "nope") is None
    put(kv2, "foo", {"a": 1})
    assert get(kv2, "foo", version=99) is None
    assert call(kv2, logical.READ, "data/") is None
    assert call(kv2, logical.READ, "data/dir/") is None


def test_read_bad_version_parameter(kv2):
    put(kv2, "foo", {"a": 1})
    with pytest.raises(InvalidRequest) as info:
        get(kv2, "foo", version="abc")
    assert info.value.messages == [
        'Field validation failed: error converting input for field "version": '
        "'' cannot parse value as 'int': strconv.ParseInt: invalid syntax"
    ]


def test_empty_and_null_data_are_stored(kv2):
    put(kv2, "w", None)
    put(kv2, "w", {})
    assert get(kv2, "w", version=1).data["data"] is None
    assert get(kv2, "w").data["data"] == {}


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "no data provided"),
        ({"options": {}}, "no data provided"),
        (
            {"data": "x"},
            "error converting input for field \"data\": '' expected type 'map[string]interface {}', "
            "got unconvertible type 'string'",
        ),
        (
            {"data": [1]},
            "error converting input for field \"data\": '' expected type 'map[string]interface {}', "
            "got unconvertible type '[]interface {}'",
        ),
        (
            {"data": {"a": 1}, "options": "x"},
            "error converting input for field \"options\": '' expected type "
            "'map[string]interface {}', got unconvertible type 'string'",
        ),
    ],
)
def test_write_validation(kv2, body, message):
    with pytest.raises(InvalidRequest) as info:
        call(kv2, logical.UPDATE, "data/foo", body)
    assert info.value.messages == [message]


def test_write_warns_about_unknown_parameters(kv2):
    resp = put(kv2, "foo", {"a": 1}, extra=1, zzz=2)
    assert resp.warnings == ["Endpoint ignored these unrecognized parameters: [extra zzz]"]


@pytest.mark.parametrize("path", ["data/dir/", "metadata/dir/", "delete/dir/", "config/"])
def test_write_to_folder_is_refused(kv2, path):
    with pytest.raises(InvalidRequest) as info:
        call(kv2, logical.UPDATE, path, {"data": {"a": 1}, "versions": [1], "max_versions": 1})
    assert info.value.messages == ["cannot write to a path ending in '/'"]


def test_exists_for_data_and_metadata(kv2):
    assert kv2.exists(make_request(logical.CREATE, "data/foo")) is False
    assert kv2.exists(make_request(logical.CREATE, "metadata/foo")) is False
    put(kv2, "foo", {"a": 1})
    assert kv2.exists(make_request(logical.UPDATE, "data/foo")) is True
    assert kv2.exists(make_request(logical.UPDATE, "metadata/foo")) is True
    assert kv2.exists(make_request(logical.UPDATE, "delete/foo")) is None
    assert kv2.exists(make_request(logical.UPDATE, "config")) is None
    assert kv2.exists(make_request(logical.UPDATE, "bogus")) is None
    assert kv2.unauthenticated_paths() == []


# --- check-and-set ---------------------------------------------------------------------


def test_cas_zero_only_creates(kv2):
    assert put(kv2, "foo", {"a": 1}, {"cas": 0}).data["version"] == 1
    with pytest.raises(CheckAndSetMismatch) as info:
        put(kv2, "foo", {"a": 2}, {"cas": 0})
    assert info.value.messages == ["check-and-set parameter did not match the current version"]


@pytest.mark.parametrize("cas", [1, "1", True])
def test_cas_matching_current_version(kv2, cas):
    put(kv2, "foo", {"a": 1})
    assert put(kv2, "foo", {"a": 2}, {"cas": cas}).data["version"] == 2


@pytest.mark.parametrize("cas", [2, -1, "2"])
def test_cas_mismatch_keeps_state(kv2, backend, cas):
    put(kv2, "foo", {"a": 1})
    before = backend.snapshot()
    with pytest.raises(CheckAndSetMismatch):
        put(kv2, "foo", {"a": 2}, {"cas": cas})
    assert backend.snapshot() == before


@pytest.mark.parametrize("cas", ["x", 1.0, [1]])
def test_cas_unparsable(kv2, cas):
    with pytest.raises(InvalidRequest) as info:
        put(kv2, "foo", {"a": 1}, {"cas": cas})
    assert info.value.messages == ["error parsing check-and-set parameter"]


def test_cas_required_by_key_metadata(kv2):
    call(kv2, logical.UPDATE, "metadata/foo", {"cas_required": True})
    with pytest.raises(InvalidRequest) as info:
        put(kv2, "foo", {"a": 1})
    assert info.value.messages == ["check-and-set parameter required for this call"]
    assert put(kv2, "foo", {"a": 1}, {"cas": 0}).data["version"] == 1


def test_cas_required_by_mount_config(kv2):
    call(kv2, logical.UPDATE, "config", {"cas_required": True})
    with pytest.raises(InvalidRequest):
        put(kv2, "foo", {"a": 1})
    put(kv2, "foo", {"a": 1}, {"cas": 0})
    with pytest.raises(InvalidRequest):
        patch(kv2, "foo", {"data": {"b": 1}})
    assert patch(kv2, "foo", {"data": {"b": 1}, "options": {"cas": 1}}).data["version"] == 2


# --- patch -----------------------------------------------------------------------------


def test_patch_merges_into_latest(kv2, clock):
    put(kv2, "foo", {"a": 1, "b": {"x": 1, "y": 2}, "c": [1, 2]})
    clock.advance(seconds=2)
    resp = patch(kv2, "foo", {"data": {"a": None, "b": {"y": None, "z": 3}, "c": [3], "d": "new"}})
    assert resp.data == version_meta(2, created="2024-01-02T03:04:07.123456Z")
    assert get(kv2, "foo").data["data"] == {"b": {"x": 1, "z": 3}, "c": [3], "d": "new"}
    assert get(kv2, "foo", version=1).data["data"] == {"a": 1, "b": {"x": 1, "y": 2}, "c": [1, 2]}


def test_patch_missing_key_is_404_without_body(kv2):
    resp = patch(kv2, "nope", {"data": {"a": 1}})
    assert resp.status == 404 and resp.data is None
    call(kv2, logical.UPDATE, "metadata/onlymeta", {"max_versions": 3})
    resp = patch(kv2, "onlymeta", {"data": {"a": 1}})
    assert resp.status == 404 and resp.data is None


def test_patch_deleted_latest_is_404_with_flat_metadata(kv2, clock):
    put(kv2, "foo", {"a": 1})
    clock.advance(seconds=1)
    call(kv2, logical.DELETE, "data/foo")
    resp = patch(kv2, "foo", {"data": {"a": 2}})
    assert resp.status == 404
    assert resp.data == version_meta(1, deletion="2024-01-02T03:04:06.123456Z")


def test_patch_validation(kv2):
    put(kv2, "foo", {"a": 1})
    with pytest.raises(InvalidRequest) as info:
        patch(kv2, "foo", {})
    assert info.value.messages == ["no data provided"]
    with pytest.raises(InvalidRequest) as info:
        patch(kv2, "foo", {"data": "x"})
    assert info.value.messages[0].startswith('Field validation failed: error converting input for field "data"')
    with pytest.raises(CheckAndSetMismatch):
        patch(kv2, "foo", {"data": {"a": 1}, "options": {"cas": 5}})


# --- soft delete, undelete, destroy ---------------------------------------------------


def test_delete_latest_then_read_is_404_with_body(kv2, clock):
    put(kv2, "foo", {"a": 1})
    put(kv2, "foo", {"a": 2})
    clock.advance(seconds=3)
    resp = call(kv2, logical.DELETE, "data/foo")
    assert resp.data is None and resp.status is None and resp.index > 0
    got = get(kv2, "foo")
    assert got.status == 404
    assert got.data == {"data": None, "metadata": version_meta(2, deletion="2024-01-02T03:04:08.123456Z")}
    assert get(kv2, "foo", version=1).data["data"] == {"a": 1}


def test_delete_is_a_noop_when_missing_or_already_deleted(kv2, backend):
    assert call(kv2, logical.DELETE, "data/nope").index == 0
    put(kv2, "foo", {"a": 1})
    call(kv2, logical.DELETE, "data/foo")
    writes = len(backend.txns)
    assert call(kv2, logical.DELETE, "data/foo").index == 0
    assert len(backend.txns) == writes


def test_delete_versions_and_undelete(kv2, clock):
    for n in range(3):
        put(kv2, "foo", {"n": n})
    clock.advance(seconds=1)
    assert call(kv2, logical.UPDATE, "delete/foo", {"versions": [1, 2, 9]}).data is None
    assert get(kv2, "foo", version=1).status == 404
    assert get(kv2, "foo", version=2).status == 404
    assert get(kv2, "foo").data["data"] == {"n": 2}
    call(kv2, logical.UPDATE, "undelete/foo", {"versions": "1,3"})
    assert get(kv2, "foo", version=1).data == {"data": {"n": 0}, "metadata": version_meta(1)}
    assert get(kv2, "foo", version=2).status == 404


@pytest.mark.parametrize(
    "path, message",
    [
        ("delete/foo", "No version number provided"),
        ("undelete/foo", "No version number provided"),
        ("destroy/foo", "no version number provided"),
    ],
)
@pytest.mark.parametrize("versions", [None, "", []])
def test_versions_required(kv2, path, message, versions):
    body = {} if versions is None else {"versions": versions}
    with pytest.raises(InvalidRequest) as info:
        call(kv2, logical.UPDATE, path, body)
    assert info.value.messages == [message]


def test_versions_parameter_parsing(kv2):
    with pytest.raises(InvalidRequest) as info:
        call(kv2, logical.UPDATE, "delete/foo", {"versions": ["1", "x"]})
    assert info.value.messages == [
        'Field validation failed: error converting input for field "versions": '
        "decoding failed due to the following error(s):\n\n"
        "'[1]' cannot parse value as 'int': strconv.ParseInt: invalid syntax"
    ]
    put(kv2, "foo", {"a": 1})
    call(kv2, logical.UPDATE, "delete/foo", {"versions": 1})
    assert get(kv2, "foo").status == 404


def test_versions_ops_on_missing_key_are_noops(kv2, backend):
    for path in ("delete/nope", "undelete/nope", "destroy/nope"):
        assert call(kv2, logical.UPDATE, path, {"versions": [1]}).data is None
    assert backend.txns == []


def test_destroy_removes_data_and_marks_metadata(kv2, backend):
    put(kv2, "foo", {"a": 1})
    put(kv2, "foo", {"a": 2})
    call(kv2, logical.UPDATE, "destroy/foo", {"versions": [1]})
    got = get(kv2, "foo", version=1)
    assert got.status == 404
    assert got.data == {"data": None, "metadata": version_meta(1, destroyed=True)}
    assert kv2.store.version_key("foo", 1) not in backend.snapshot()
    assert kv2.store.version_key("foo", 2) in backend.snapshot()
    # Destroyed versions cannot be undeleted or soft-deleted.
    call(kv2, logical.UPDATE, "undelete/foo", {"versions": [1]})
    call(kv2, logical.UPDATE, "delete/foo", {"versions": [1]})
    assert get(kv2, "foo", version=1).data["metadata"] == version_meta(1, destroyed=True)


def test_destroy_is_one_transaction(kv2, backend):
    for n in range(3):
        put(kv2, "foo", {"n": n})
    backend.txns.clear()
    call(kv2, logical.UPDATE, "destroy/foo", {"versions": [1, 2, 3]})
    assert len(backend.txns) == 1
    # Each version's data is deleted where it is (here: the secret's folder).
    assert [(op.verb, op.key) for op in backend.txns[0]] == [
        ("check-index", kv2.store.meta_key("foo")),
        ("set", kv2.store.meta_key("foo")),
        *[("delete", kv2.store.version_key("foo", n)) for n in (1, 2, 3)],
    ]


def test_destroy_of_many_versions_stays_within_transaction_limit(backend, clock):
    engine = create_engine("kv", {"version": "2"}, backend, clock)
    call(engine, logical.UPDATE, "metadata/big", {"max_versions": 100})
    for n in range(80):
        put(engine, "big", {"n": n})
    backend.txns.clear()
    call(engine, logical.UPDATE, "destroy/big", {"versions": list(range(1, 81))})
    assert all(len(ops) <= 63 for ops in backend.txns)
    assert backend.txns[0][0].key == engine.store.meta_key("big")
    stored = [k for k in backend.snapshot() if k.startswith(engine.store.folder("big"))]
    assert stored == [engine.store.meta_key("big")]


# --- subkeys ---------------------------------------------------------------------------


def test_subkeys(kv2):
    put(kv2, "sk", {"a": 1, "b": {"c": {"d": 1}, "e": {}}, "f": [1]})
    resp = call(kv2, logical.READ, "subkeys/sk")
    assert resp.data == {
        "metadata": version_meta(1),
        "subkeys": {"a": None, "b": {"c": {"d": None}, "e": None}, "f": None},
    }
    assert call(kv2, logical.READ, "subkeys/sk", {"depth": "1"}).data["subkeys"] == {"a": None, "b": None, "f": None}
    assert call(kv2, logical.READ, "subkeys/sk", {"depth": "2"}).data["subkeys"] == {
        "a": None,
        "b": {"c": None, "e": None},
        "f": None,
    }
    assert call(kv2, logical.READ, "subkeys/sk", {"version": "9"}) is None
    assert call(kv2, logical.READ, "subkeys/nope") is None


def test_subkeys_of_deleted_version_is_404_with_body(kv2):
    put(kv2, "sk", {"a": 1})
    call(kv2, logical.DELETE, "data/sk")
    resp = call(kv2, logical.READ, "subkeys/sk")
    assert resp.status == 404
    assert resp.data == {"metadata": version_meta(1, deletion=START_TEXT), "subkeys": None}


def test_subkeys_bad_depth(kv2):
    with pytest.raises(InvalidRequest):
        call(kv2, logical.READ, "subkeys/sk", {"depth": "x"})


# --- routing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation, path",
    [
        (logical.LIST, "data/"),
        (logical.LIST, "data/foo"),
        (logical.READ, "delete/foo"),
        (logical.DELETE, "destroy/foo"),
        (logical.PATCH, "undelete/foo"),
        (logical.DELETE, "config"),
        (logical.PATCH, "config"),
        (logical.UPDATE, "subkeys/foo"),
        (logical.LIST, "subkeys/"),
    ],
)
def test_unsupported_operations_are_405(kv2, operation, path):
    with pytest.raises(MethodNotAllowed):
        call(kv2, operation, path, {})


@pytest.mark.parametrize(
    "operation, path, verb",
    [
        (logical.READ, "foo", "get"),
        (logical.UPDATE, "foo", "put"),
        (logical.CREATE, "foo", "put"),
        (logical.PATCH, "foo", "patch"),
        (logical.DELETE, "foo", "delete"),
        (logical.LIST, "", "list"),
        (logical.LIST, "config", "list"),
        (logical.READ, "subkeys", "get"),
        (logical.READ, "config/", "get"),
    ],
)
def test_v1_style_paths_answer_404_with_warning(kv2, operation, path, verb):
    resp = call(kv2, operation, path, {"a": 1})
    assert resp.status == 404 and resp.data is None
    assert resp.warnings == [
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints "
        f"to use. If using the Vault CLI, use 'vault kv {verb}' for this operation."
    ]


@pytest.mark.parametrize("root", ["data", "metadata", "delete", "undelete", "destroy"])
def test_roots_answer_404_with_warning(kv2, root):
    resp = call(kv2, logical.READ, root)
    assert resp.status == 404 and resp.data is None
    assert resp.warnings == ["Non-listing operations on the root of a K/V v2 mount are not supported."]


# --- atomicity and storage ---------------------------------------------------------------


def test_failed_write_leaves_previous_state(kv2, backend):
    put(kv2, "foo", {"a": 1})
    before = backend.snapshot()
    backend.fail_txns = 1
    with pytest.raises(StorageUnavailable):
        put(kv2, "foo", {"a": 2})
    assert backend.snapshot() == before
    assert get(kv2, "foo").data["data"] == {"a": 1}
    assert put(kv2, "foo", {"a": 3}).data["version"] == 2


def test_write_is_one_transaction_with_data_and_metadata(kv2, backend):
    put(kv2, "foo", {"a": 1})
    assert len(backend.txns) == 1
    meta = kv2.store.meta_key("foo")
    assert [(op.verb, op.key) for op in backend.txns[0]] == [
        ("check-not-exists", meta),
        ("set", kv2.store.version_key("foo", 1)),
        ("set", meta),
        ("set", "paths/foo"),
    ]
    put(kv2, "foo", {"a": 2})
    assert [(op.verb, op.key) for op in backend.txns[1]] == [
        ("check-index", meta),
        ("set", kv2.store.version_key("foo", 2)),
        ("set", meta),
    ]


def test_too_large_secret_propagates_without_partial_write(clock):
    backend = FlakyBackend(max_value_size=400)
    engine = create_engine("kv", {"version": "2"}, backend, clock)
    put(engine, "foo", {"a": 1})
    before = backend.snapshot()
    with pytest.raises(RequestTooLarge):
        put(engine, "foo", {"a": "x" * 500})
    assert backend.snapshot() == before
    assert get(engine, "foo").data["data"] == {"a": 1}


def test_failed_patch_and_deletes_leave_previous_state(kv2, backend):
    put(kv2, "foo", {"a": 1})
    before = backend.snapshot()
    for operation, path, body in [
        (logical.PATCH, "data/foo", {"data": {"b": 2}}),
        (logical.DELETE, "data/foo", {}),
        (logical.UPDATE, "delete/foo", {"versions": [1]}),
        (logical.UPDATE, "destroy/foo", {"versions": [1]}),
        (logical.DELETE, "metadata/foo", {}),
        (logical.UPDATE, "metadata/foo", {"max_versions": 2}),
        (logical.UPDATE, "config", {"max_versions": 2}),
    ]:
        backend.fail_txns = 1
        with pytest.raises(StorageUnavailable):
            call(kv2, operation, path, body)
        assert backend.snapshot() == before, path


def test_missing_version_data_is_an_internal_error(kv2, backend):
    put(kv2, "foo", {"a": 1})
    backend.delete(kv2.store.version_key("foo", 1))
    with pytest.raises(StrongroomError) as info:
        get(kv2, "foo")
    assert info.value.messages == ["could not find version data"]


def test_reads_never_write(backend, clock):
    writer = create_engine("kv", {"version": "2"}, backend, clock)
    put(writer, "dir/foo", {"a": 1})
    call(writer, logical.DELETE, "data/dir/foo")
    put(writer, "bar", {"a": 1})
    standby = create_engine("kv", {"version": "2"}, ReadOnlyView(backend), clock)
    assert get(standby, "bar").data["data"] == {"a": 1}
    assert get(standby, "dir/foo").status == 404
    assert call(standby, logical.READ, "metadata/bar").data["current_version"] == 1
    assert call(standby, logical.LIST, "metadata/").data == {"keys": ["bar", "dir/"]}
    assert call(standby, logical.READ, "subkeys/bar").data["subkeys"] == {"a": None}
    assert call(standby, logical.READ, "config").data["max_versions"] == 0
    assert standby.exists(make_request(logical.UPDATE, "data/bar")) is True
    with pytest.raises(ReadOnly):
        put(standby, "bar", {"a": 2})


def test_engines_share_nothing_but_storage(clock):
    backend = InmemBackend()
    first = create_engine("kv", {"version": "2"}, backend, clock)
    second = create_engine("kv", {"version": "2"}, backend, clock)
    call(first, logical.UPDATE, "config", {"cas_required": True})
    with pytest.raises(InvalidRequest):
        put(second, "foo", {"a": 1})
    put(second, "foo", {"a": 1}, {"cas": 0})
    assert put(first, "foo", {"a": 2}, {"cas": 1}).data["version"] == 2
    assert get(second, "foo").data["data"] == {"a": 2}
