"""KV version 2: metadata, LIST, config, max_versions and delete_version_after.

Response shapes and messages were compared with OpenBao 2.7.2 (Vault's API);
OpenBao's additions (``current_metadata_version``, ``metadata_cas_required``)
are not part of Vault's shape and are not rendered.
"""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest
from strongroom.sdk import logical
from tests.unit.engines.kv_support import START_TEXT, make_request


def call(engine, operation, relative_path, data=None):
    return engine.handle(make_request(operation, relative_path, data))


def put(engine, path, data, options=None):
    body = {"data": data}
    if options is not None:
        body["options"] = options
    return call(engine, logical.UPDATE, "data/" + path, body)


def metadata(engine, path):
    resp = call(engine, logical.READ, "metadata/" + path)
    return None if resp is None else resp.data


# --- metadata read ---------------------------------------------------------------------


def test_metadata_shape(kv2, clock):
    put(kv2, "foo", {"a": 1})
    clock.advance(seconds=1)
    put(kv2, "foo", {"a": 2})
    assert metadata(kv2, "foo") == {
        "cas_required": False,
        "created_time": START_TEXT,
        "current_version": 2,
        "custom_metadata": None,
        "delete_version_after": "0s",
        "max_versions": 0,
        "oldest_version": 0,
        "updated_time": "2024-01-02T03:04:06.123456Z",
        "versions": {
            "1": {"created_time": START_TEXT, "deletion_time": "", "destroyed": False},
            "2": {"created_time": "2024-01-02T03:04:06.123456Z", "deletion_time": "", "destroyed": False},
        },
    }


def test_metadata_of_unknown_key_is_none(kv2):
    assert call(kv2, logical.READ, "metadata/nope") is None
    assert call(kv2, logical.READ, "metadata/") is None
    assert call(kv2, logical.READ, "metadata/dir/") is None


# --- metadata write ----------------------------------------------------------------------


def test_metadata_write_creates_key_without_versions(kv2, clock):
    resp = call(
        kv2,
        logical.CREATE,
        "metadata/m1",
        {
            "max_versions": 2,
            "cas_required": True,
            "delete_version_after": "1h",
            "custom_metadata": {"k": "v", "n": 5, "b": True, "f": 1.5},
        },
    )
    assert resp.data is None and resp.warnings == [] and resp.index > 0
    assert metadata(kv2, "m1") == {
        "cas_required": True,
        "created_time": START_TEXT,
        "current_version": 0,
        "custom_metadata": {"k": "v", "n": "5", "b": "1", "f": "1.5"},
        "delete_version_after": "1h0m0s",
        "max_versions": 2,
        "oldest_version": 0,
        "updated_time": START_TEXT,
        "versions": {},
    }
    assert call(kv2, logical.READ, "data/m1") is None


def test_metadata_write_updates_only_given_fields(kv2, clock):
    put(kv2, "foo", {"a": 1})
    clock.advance(seconds=5)
    call(kv2, logical.UPDATE, "metadata/foo", {"max_versions": 4, "custom_metadata": {"a": "b"}})
    call(kv2, logical.UPDATE, "metadata/foo", {"delete_version_after": 90})
    meta = metadata(kv2, "foo")
    assert meta["max_versions"] == 4
    assert meta["custom_metadata"] == {"a": "b"}
    assert meta["delete_version_after"] == "1m30s"
    assert meta["updated_time"] == START_TEXT  # Vault moves it only when a version is added
    call(kv2, logical.UPDATE, "metadata/foo", {"custom_metadata": {}})
    assert metadata(kv2, "foo")["custom_metadata"] is None


def test_metadata_write_without_known_fields_is_a_noop(kv2, backend):
    resp = call(kv2, logical.UPDATE, "metadata/foo", {"extra": 1})
    assert resp.data is None and resp.index == 0
    assert backend.txns == []
    assert metadata(kv2, "foo") is None


def test_custom_metadata_shows_in_data_responses(kv2):
    call(kv2, logical.UPDATE, "metadata/foo", {"custom_metadata": {"owner": "me"}})
    assert put(kv2, "foo", {"a": 1}).data["custom_metadata"] == {"owner": "me"}
    assert call(kv2, logical.READ, "data/foo").data["metadata"]["custom_metadata"] == {"owner": "me"}


def test_cas_required_false_warns_when_mount_requires_it(kv2):
    call(kv2, logical.UPDATE, "config", {"cas_required": True})
    resp = call(kv2, logical.UPDATE, "metadata/foo", {"cas_required": False})
    assert resp.warnings == [
        '"cas_required" set to false, but is mandated by backend config. This value will be ignored.'
    ]
    assert resp.status is None  # the API renders 200 with data null and the warning


@pytest.mark.parametrize(
    "body, message",
    [
        (
            {"delete_version_after": "-1h"},
            "error converting input for field \"delete_version_after\": cannot provide negative value '-3600'",
        ),
        (
            {"delete_version_after": "abc"},
            'error converting input for field "delete_version_after": time: invalid duration "abc"',
        ),
        (
            {"max_versions": "x"},
            "error converting input for field \"max_versions\": '' cannot parse value as 'int': "
            "strconv.ParseInt: invalid syntax",
        ),
        ({"max_versions": -1}, "max_versions must not be negative"),
        (
            {"cas_required": "x"},
            "error converting input for field \"cas_required\": '' cannot parse value as 'bool': "
            "strconv.ParseBool: invalid syntax",
        ),
        (
            {"custom_metadata": "x"},
            "error converting input for field \"custom_metadata\": '' expected type 'map[string]interface {}', "
            "got unconvertible type 'string'",
        ),
        (
            {"custom_metadata": {"a": {"b": 1}}},
            "custom_metadata validation failed: '' expected type 'string', got unconvertible type "
            "'map[string]interface {}'",
        ),
        (
            {"custom_metadata": {"a": None}},
            '1 error occurred:\n\t* custom_metadata validation failed: length of value for key "a" is 0 but must be '
            "0 < len(value) <= 512\n\n",
        ),
        (
            {"custom_metadata": {"": "", "a": "\u0001"}},
            "3 errors occurred:\n"
            '\t* custom_metadata validation failed: length of key "" is 0 but must be 0 < len(key) <= 128\n'
            '\t* custom_metadata validation failed: length of value for key "" is 0 but must be 0 < len(value) <= 512\n'
            '\t* custom_metadata validation failed: value for key "a" contains unprintable characters\n\n',
        ),
    ],
)
def test_metadata_write_validation(kv2, backend, body, message):
    with pytest.raises(InvalidRequest) as info:
        call(kv2, logical.UPDATE, "metadata/m2", body)
    assert info.value.messages == [message]
    assert backend.txns == []


def test_custom_metadata_limits(kv2):
    too_many = {f"k{i}": "v" for i in range(65)}
    with pytest.raises(InvalidRequest) as info:
        call(kv2, logical.UPDATE, "metadata/m", {"custom_metadata": too_many})
    assert "payload must contain at most 64 keys, provided 65" in info.value.messages[0]
    with pytest.raises(InvalidRequest) as info:
        call(kv2, logical.UPDATE, "metadata/m", {"custom_metadata": {"k" * 129: "v"}})
    assert "is 129 but must be 0 < len(key) <= 128" in info.value.messages[0]
    with pytest.raises(InvalidRequest) as info:
        call(kv2, logical.UPDATE, "metadata/m", {"custom_metadata": {"k": "v" * 513}})
    assert "is 513 but must be 0 < len(value) <= 512" in info.value.messages[0]
    limits = {f"k{i:03d}" + "k" * 124: "v" * 512 for i in range(64)}
    call(kv2, logical.UPDATE, "metadata/m", {"custom_metadata": limits})
    assert metadata(kv2, "m")["custom_metadata"] == limits


# --- metadata patch ----------------------------------------------------------------------


def test_metadata_patch_merges(kv2):
    call(kv2, logical.UPDATE, "metadata/cr", {"max_versions": 3, "custom_metadata": {"a": "b", "c": "d"}})
    call(kv2, logical.PATCH, "metadata/cr", {"max_versions": 5, "custom_metadata": {"a": None, "e": 7}})
    meta = metadata(kv2, "cr")
    assert meta["max_versions"] == 5
    assert meta["custom_metadata"] == {"c": "d", "e": "7"}
    call(kv2, logical.PATCH, "metadata/cr", {"delete_version_after": "1h", "cas_required": True})
    meta = metadata(kv2, "cr")
    assert (meta["delete_version_after"], meta["cas_required"], meta["max_versions"]) == ("1h0m0s", True, 5)
    call(kv2, logical.PATCH, "metadata/cr", {"custom_metadata": None, "max_versions": None})
    meta = metadata(kv2, "cr")
    assert meta["custom_metadata"] is None and meta["max_versions"] == 0


def test_metadata_patch_of_unknown_key_is_404(kv2):
    resp = call(kv2, logical.PATCH, "metadata/nope", {"max_versions": 5})
    assert resp.status == 404 and resp.data is None


def test_metadata_patch_validates_merged_custom_metadata(kv2):
    call(kv2, logical.UPDATE, "metadata/m", {"custom_metadata": {f"k{i}": "v" for i in range(64)}})
    with pytest.raises(InvalidRequest):
        call(kv2, logical.PATCH, "metadata/m", {"custom_metadata": {"one-more": "v"}})
    with pytest.raises(InvalidRequest):
        call(kv2, logical.PATCH, "metadata/m", {"custom_metadata": {"bad": ""}})
    assert len(metadata(kv2, "m")["custom_metadata"]) == 64


# --- metadata delete and LIST ---------------------------------------------------------


def test_metadata_delete_removes_everything(kv2, backend):
    put(kv2, "foo", {"a": 1})
    put(kv2, "foo", {"a": 2})
    put(kv2, "foobar", {"a": 1})
    resp = call(kv2, logical.DELETE, "metadata/foo")
    assert resp.data is None and resp.index > 0
    assert metadata(kv2, "foo") is None
    assert call(kv2, logical.READ, "data/foo") is None
    digest = kv2.store.version_key("foo", 1).rsplit("/", 1)[0]
    assert not [k for k in backend.snapshot() if k.startswith(digest)]
    assert call(kv2, logical.READ, "data/foobar").data["data"] == {"a": 1}
    assert call(kv2, logical.DELETE, "metadata/foo").index == 0


def test_list_keys_and_folders(kv2):
    put(kv2, "dir/a", {"x": 1})
    put(kv2, "dir/sub/b", {"x": 1})
    put(kv2, "top", {"x": 1})
    call(kv2, logical.UPDATE, "metadata/onlymeta", {"max_versions": 3})
    expected = {"keys": ["dir/", "onlymeta", "top"]}
    assert call(kv2, logical.LIST, "metadata/").data == expected
    assert call(kv2, logical.LIST, "metadata").data == expected
    assert call(kv2, logical.LIST, "metadata/dir").data == {"keys": ["a", "sub/"]}
    assert call(kv2, logical.LIST, "metadata/dir/").data == {"keys": ["a", "sub/"]}
    assert call(kv2, logical.LIST, "metadata/none/") is None


def test_list_shows_soft_deleted_and_destroyed_keys(kv2):
    put(kv2, "a", {"x": 1})
    call(kv2, logical.DELETE, "data/a")
    put(kv2, "b", {"x": 1})
    call(kv2, logical.UPDATE, "destroy/b", {"versions": [1]})
    assert call(kv2, logical.LIST, "metadata/").data == {"keys": ["a", "b"]}


# --- config ----------------------------------------------------------------------------


def test_config_defaults_and_write(kv2):
    assert call(kv2, logical.READ, "config").data == {
        "cas_required": False,
        "delete_version_after": "0s",
        "max_versions": 0,
    }
    resp = call(kv2, logical.UPDATE, "config", {"max_versions": 3, "cas_required": "t", "delete_version_after": "2h"})
    assert resp.data is None and resp.index > 0
    assert call(kv2, logical.READ, "config").data == {
        "cas_required": True,
        "delete_version_after": "2h0m0s",
        "max_versions": 3,
    }
    call(kv2, logical.UPDATE, "config", {"max_versions": "0x10"})
    assert call(kv2, logical.READ, "config").data["max_versions"] == 16


@pytest.mark.parametrize("value, rendered", [(-1, "-1s"), ("-5s", "-1s"), (0, "0s"), ("90m", "1h30m0s")])
def test_config_delete_version_after(kv2, value, rendered):
    call(kv2, logical.UPDATE, "config", {"delete_version_after": "2h"})
    call(kv2, logical.UPDATE, "config", {"delete_version_after": value})
    assert call(kv2, logical.READ, "config").data["delete_version_after"] == rendered


@pytest.mark.parametrize(
    "body, message",
    [
        (
            {"max_versions": "abc"},
            "Field validation failed: error converting input for field \"max_versions\": '' "
            "cannot parse value as 'int': strconv.ParseInt: invalid syntax",
        ),
        (
            {"max_versions": [1]},
            "Field validation failed: error converting input for field \"max_versions\": '' "
            "expected type 'int', got unconvertible type '[]interface {}'",
        ),
        ({"max_versions": -2}, "max_versions must not be negative"),
        (
            {"cas_required": "x"},
            "Field validation failed: error converting input for field \"cas_required\": '' "
            "cannot parse value as 'bool': strconv.ParseBool: invalid syntax",
        ),
    ],
)
def test_config_validation(kv2, body, message):
    with pytest.raises(InvalidRequest) as info:
        call(kv2, logical.UPDATE, "config", body)
    assert info.value.messages == [message]


def test_config_empty_write_is_a_noop(kv2, backend):
    assert call(kv2, logical.UPDATE, "config", {}).index == 0
    assert backend.txns == []


# --- max_versions ----------------------------------------------------------------------


def test_default_keeps_ten_versions(kv2):
    for n in range(12):
        put(kv2, "foo", {"n": n})
    meta = metadata(kv2, "foo")
    assert (meta["current_version"], meta["oldest_version"]) == (12, 3)
    assert sorted(int(v) for v in meta["versions"]) == list(range(3, 13))
    assert call(kv2, logical.READ, "data/foo", {"version": "2"}) is None
    assert call(kv2, logical.READ, "data/foo", {"version": "3"}).data["data"] == {"n": 2}


def test_key_max_versions_prunes_oldest(kv2, backend):
    call(kv2, logical.UPDATE, "metadata/m1", {"max_versions": 2})
    put(kv2, "m1", {"n": 1})
    put(kv2, "m1", {"n": 2})
    assert metadata(kv2, "m1")["oldest_version"] == 1  # Vault's sliding window
    put(kv2, "m1", {"n": 3})
    meta = metadata(kv2, "m1")
    assert (meta["current_version"], meta["oldest_version"]) == (3, 2)
    assert sorted(meta["versions"]) == ["2", "3"]
    assert kv2.store.version_key("m1", 1) not in backend.snapshot()
    # The pruning is part of the write's single transaction.
    assert [op.verb for op in backend.txns[-1]] == ["check-index", "set", "set", "delete"]
    assert [op.key for op in backend.txns[-1][3:]] == [kv2.store.version_key("m1", 1)]


def test_mount_max_versions_and_larger_limit_wins(kv2):
    call(kv2, logical.UPDATE, "config", {"max_versions": 3})
    for n in range(5):
        put(kv2, "a", {"n": n})
    assert sorted(metadata(kv2, "a")["versions"]) == ["3", "4", "5"]
    call(kv2, logical.UPDATE, "metadata/b", {"max_versions": 1})
    for n in range(5):
        put(kv2, "b", {"n": n})
    assert sorted(metadata(kv2, "b")["versions"]) == ["3", "4", "5"]  # max(key, mount)


def test_lowering_max_versions_prunes_several_on_next_write(kv2, backend):
    for n in range(8):
        put(kv2, "foo", {"n": n})
    call(kv2, logical.UPDATE, "metadata/foo", {"max_versions": 2})
    put(kv2, "foo", {"n": 8})
    meta = metadata(kv2, "foo")
    assert sorted(meta["versions"]) == ["8", "9"] and meta["oldest_version"] == 8
    stored = sorted(k for k in backend.snapshot() if k.startswith("versions/"))
    assert stored == sorted(
        [kv2.store.version_key("foo", 8), kv2.store.version_key("foo", 9), kv2.store.meta_key("foo")]
    )


# --- delete_version_after --------------------------------------------------------------


def test_key_delete_version_after_expires_versions(kv2, clock):
    call(kv2, logical.UPDATE, "metadata/t", {"delete_version_after": "1h"})
    resp = put(kv2, "t", {"a": 1})
    assert resp.data["deletion_time"] == "2024-01-02T04:04:05.123456Z"
    assert call(kv2, logical.READ, "data/t").data["data"] == {"a": 1}
    clock.advance(hours=1)
    got = call(kv2, logical.READ, "data/t")
    assert got.status == 404 and got.data["data"] is None
    # Undelete restarts the clock.
    call(kv2, logical.UPDATE, "undelete/t", {"versions": [1]})
    got = call(kv2, logical.READ, "data/t")
    assert got.data["data"] == {"a": 1}
    assert got.data["metadata"]["deletion_time"] == "2024-01-02T05:04:05.123456Z"


def test_smaller_of_mount_and_key_delete_version_after_applies(kv2):
    call(kv2, logical.UPDATE, "config", {"delete_version_after": "30m"})
    call(kv2, logical.UPDATE, "metadata/t", {"delete_version_after": "1h"})
    assert put(kv2, "t", {"a": 1}).data["deletion_time"] == "2024-01-02T03:34:05.123456Z"
    assert put(kv2, "u", {"a": 1}).data["deletion_time"] == "2024-01-02T03:34:05.123456Z"


def test_disabled_delete_version_after_on_mount_wins(kv2):
    call(kv2, logical.UPDATE, "metadata/t", {"delete_version_after": "1h"})
    call(kv2, logical.UPDATE, "config", {"delete_version_after": -1})
    assert put(kv2, "t", {"a": 1}).data["deletion_time"] == ""


def test_soft_delete_of_version_pending_expiry_sets_now(kv2, clock):
    call(kv2, logical.UPDATE, "metadata/t", {"delete_version_after": "1h"})
    put(kv2, "t", {"a": 1})
    clock.advance(minutes=1)
    call(kv2, logical.DELETE, "data/t")
    assert metadata(kv2, "t")["versions"]["1"]["deletion_time"] == "2024-01-02T03:05:05.123456Z"


def test_expired_latest_cannot_be_patched_and_delete_is_noop(kv2, clock, backend):
    call(kv2, logical.UPDATE, "metadata/t", {"delete_version_after": "10s"})
    put(kv2, "t", {"a": 1})
    clock.advance(seconds=10)
    assert call(kv2, logical.PATCH, "data/t", {"data": {"b": 1}}).status == 404
    writes = len(backend.txns)
    call(kv2, logical.DELETE, "data/t")
    assert len(backend.txns) == writes
