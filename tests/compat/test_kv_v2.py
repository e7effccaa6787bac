"""hvac's KV v2 calls: data, versions, metadata, configuration, subkeys.

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2
"""

from __future__ import annotations

import hvac
import pytest

from tests.compat.support import read_kv2
from tests.helpers.procs import wait_until

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def kv2(vault, unique) -> str:
    mount = unique("kv2")
    vault.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    return mount


def test_write_read_versions(vault, kv2):
    kv = vault.secrets.kv.v2
    secret = {"password": "p1", "nested": {"list": [1, "two", None], "flag": False}}
    first = kv.create_or_update_secret("app", secret=secret, mount_point=kv2)["data"]
    assert first["version"] == 1 and first["destroyed"] is False and first["deletion_time"] == ""
    assert first["created_time"].endswith("Z")
    second = kv.create_or_update_secret("app", secret={"password": "p2"}, mount_point=kv2)["data"]
    assert second["version"] == 2

    latest = kv.read_secret_version("app", mount_point=kv2, raise_on_deleted_version=True)["data"]
    assert latest["data"] == {"password": "p2"} and latest["metadata"]["version"] == 2
    assert read_kv2(vault, "app", kv2, version=1) == secret
    with pytest.raises(hvac.exceptions.InvalidPath):
        read_kv2(vault, "app", kv2, version=3)
    with pytest.raises(hvac.exceptions.InvalidPath):
        read_kv2(vault, "missing", kv2)


def test_check_and_set(vault, kv2):
    kv = vault.secrets.kv.v2
    assert kv.create_or_update_secret("cas", secret={"v": 1}, cas=0, mount_point=kv2)["data"]["version"] == 1
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret("cas", secret={"v": 2}, cas=0, mount_point=kv2)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret("cas", secret={"v": 2}, cas=5, mount_point=kv2)
    assert kv.create_or_update_secret("cas", secret={"v": 2}, cas=1, mount_point=kv2)["data"]["version"] == 2
    assert read_kv2(vault, "cas", kv2) == {"v": 2}


@pytest.mark.filterwarnings("ignore:The raise_on_deleted_version:DeprecationWarning")  # inside hvac's patch
def test_patch(vault, kv2):
    kv = vault.secrets.kv.v2
    kv.create_or_update_secret("p", secret={"user": "u", "password": "old", "drop": "me"}, mount_point=kv2)
    kv.patch("p", secret={"password": "new"}, mount_point=kv2)  # hvac: read, then write with cas
    assert read_kv2(vault, "p", kv2) == {"user": "u", "password": "new", "drop": "me"}

    # Vault's own PATCH: a JSON merge patch, where null removes a key.
    response = vault.adapter.request(
        "PATCH",
        f"/v1/{kv2}/data/p",
        headers=MERGE_PATCH,
        json={"data": {"drop": None, "added": "yes"}, "options": {"cas": 2}},
    )
    assert response["data"]["version"] == 3
    assert read_kv2(vault, "p", kv2) == {"user": "u", "password": "new", "added": "yes"}
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.adapter.request(
            "PATCH", f"/v1/{kv2}/data/p", headers=MERGE_PATCH, json={"data": {"x": "y"}, "options": {"cas": 1}}
        )
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.patch("absent", secret={"x": "y"}, mount_point=kv2)


def test_patch_requires_merge_patch_content_type(vault, kv2):
    """Vault answers a PATCH with another Content-Type with 415 Unsupported Media Type."""
    vault.secrets.kv.v2.create_or_update_secret("ct", secret={"a": "b"}, mount_point=kv2)
    with pytest.raises(hvac.exceptions.UnexpectedError) as refused:  # hvac has no class for 415
        vault.adapter.request(
            "PATCH", f"/v1/{kv2}/data/ct", headers={"Content-Type": "application/json"}, json={"data": {"a": "c"}}
        )
    assert "merge-patch+json" in str(refused.value)
    assert read_kv2(vault, "ct", kv2) == {"a": "b"}


def test_list_secrets(vault, kv2):
    for path in ("a", "dir/b", "dir/sub/c"):
        vault.secrets.kv.v2.create_or_update_secret(path, secret={"x": "1"}, mount_point=kv2)
    assert vault.secrets.kv.v2.list_secrets("", mount_point=kv2)["data"]["keys"] == ["a", "dir/"]
    assert vault.secrets.kv.v2.list_secrets("dir", mount_point=kv2)["data"]["keys"] == ["b", "sub/"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.secrets.kv.v2.list_secrets("none", mount_point=kv2)


def test_delete_undelete_destroy(vault, kv2):
    kv = vault.secrets.kv.v2
    for value in ("v1", "v2", "v3"):
        kv.create_or_update_secret("d", secret={"v": value}, mount_point=kv2)

    assert kv.delete_latest_version_of_secret("d", mount_point=kv2).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        read_kv2(vault, "d", kv2)
    deleted = kv.read_secret_version("d", mount_point=kv2, raise_on_deleted_version=False)["data"]
    assert deleted["data"] is None and deleted["metadata"]["deletion_time"] != ""

    assert kv.delete_secret_versions("d", versions=[1], mount_point=kv2).status_code == 204
    assert kv.undelete_secret_versions("d", versions=[1, 3], mount_point=kv2).status_code == 204
    assert read_kv2(vault, "d", kv2) == {"v": "v3"}
    assert read_kv2(vault, "d", kv2, version=1) == {"v": "v1"}

    assert kv.destroy_secret_versions("d", versions=[2], mount_point=kv2).status_code == 204
    versions = kv.read_secret_metadata("d", mount_point=kv2)["data"]["versions"]
    assert versions["2"]["destroyed"] is True and versions["1"]["destroyed"] is False
    kv.undelete_secret_versions("d", versions=[2], mount_point=kv2)  # a destroyed version stays destroyed
    with pytest.raises(hvac.exceptions.InvalidPath):
        read_kv2(vault, "d", kv2, version=2)
    with pytest.raises(hvac.exceptions.InvalidPath) as destroyed:  # hvac returns only *deleted* versions
        kv.read_secret_version("d", version=2, mount_point=kv2, raise_on_deleted_version=False)
    assert destroyed.value.json["data"]["data"] is None
    assert destroyed.value.json["data"]["metadata"]["destroyed"] is True


def test_metadata(vault, kv2):
    kv = vault.secrets.kv.v2
    kv.create_or_update_secret("m", secret={"v": 1}, mount_point=kv2)
    kv.create_or_update_secret("m", secret={"v": 2}, mount_point=kv2)
    meta = kv.read_secret_metadata("m", mount_point=kv2)["data"]
    assert (meta["current_version"], meta["oldest_version"], meta["max_versions"]) == (2, 0, 0)
    assert meta["cas_required"] is False and meta["delete_version_after"] == "0s"
    assert meta["custom_metadata"] is None and set(meta["versions"]) == {"1", "2"}
    assert meta["created_time"] == meta["versions"]["1"]["created_time"]
    assert meta["updated_time"] == meta["versions"]["2"]["created_time"]

    assert (
        kv.update_metadata(
            "m",
            max_versions=3,
            cas_required=True,
            delete_version_after="1h",
            custom_metadata={"owner": "ops", "tier": "1"},
            mount_point=kv2,
        ).status_code
        == 204
    )
    meta = kv.read_secret_metadata("m", mount_point=kv2)["data"]
    assert (meta["max_versions"], meta["cas_required"], meta["delete_version_after"]) == (3, True, "1h0m0s")
    assert meta["custom_metadata"] == {"owner": "ops", "tier": "1"}
    latest = kv.read_secret_version("m", mount_point=kv2, raise_on_deleted_version=True)["data"]["metadata"]
    assert latest["custom_metadata"] == {"owner": "ops", "tier": "1"}


def test_max_versions_prunes_oldest(vault, kv2):
    kv = vault.secrets.kv.v2
    kv.update_metadata("pruned", max_versions=2, mount_point=kv2)
    for value in range(1, 5):
        kv.create_or_update_secret("pruned", secret={"v": value}, mount_point=kv2)
    meta = kv.read_secret_metadata("pruned", mount_point=kv2)["data"]
    assert meta["current_version"] == 4 and meta["oldest_version"] == 3
    assert set(meta["versions"]) == {"3", "4"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        read_kv2(vault, "pruned", kv2, version=1)


def test_cas_required_by_metadata(vault, kv2):
    kv = vault.secrets.kv.v2
    kv.update_metadata("strict", cas_required=True, mount_point=kv2)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret("strict", secret={"a": "b"}, mount_point=kv2)
    assert kv.create_or_update_secret("strict", secret={"a": "b"}, cas=0, mount_point=kv2)["data"]["version"] == 1


def test_delete_version_after_expires_versions(vault, kv2):
    kv = vault.secrets.kv.v2
    kv.update_metadata("short", delete_version_after="1s", mount_point=kv2)
    written = kv.create_or_update_secret("short", secret={"a": "b"}, mount_point=kv2)["data"]
    assert written["deletion_time"] != ""  # scheduled at write time
    assert read_kv2(vault, "short", kv2) == {"a": "b"}

    def deleted() -> bool:
        try:
            read_kv2(vault, "short", kv2)
        except hvac.exceptions.InvalidPath:
            return True
        return False

    wait_until(deleted, 10.0, "the version to expire after 1s", interval=0.2)


def test_delete_metadata_and_all_versions(vault, kv2):
    kv = vault.secrets.kv.v2
    kv.create_or_update_secret("all", secret={"a": "b"}, mount_point=kv2)
    kv.create_or_update_secret("all", secret={"a": "c"}, mount_point=kv2)
    assert kv.delete_metadata_and_all_versions("all", mount_point=kv2).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata("all", mount_point=kv2)
    with pytest.raises(hvac.exceptions.InvalidPath):
        read_kv2(vault, "all", kv2, version=1)
    # The path starts over at version 1.
    assert kv.create_or_update_secret("all", secret={"a": "d"}, mount_point=kv2)["data"]["version"] == 1


def test_configure_and_read_configuration(vault, kv2):
    kv = vault.secrets.kv.v2
    assert (
        kv.configure(max_versions=4, cas_required=False, delete_version_after="2h", mount_point=kv2).status_code == 204
    )
    config = kv.read_configuration(mount_point=kv2)["data"]
    assert (config["max_versions"], config["cas_required"], config["delete_version_after"]) == (4, False, "2h0m0s")

    kv.configure(max_versions=0, cas_required=True, mount_point=kv2)
    assert kv.read_configuration(mount_point=kv2)["data"]["cas_required"] is True
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret("needs-cas", secret={"a": "b"}, mount_point=kv2)
    assert kv.create_or_update_secret("needs-cas", secret={"a": "b"}, cas=0, mount_point=kv2)["data"]["version"] == 1


def test_subkeys(vault, kv2):
    """hvac 2.4 has no subkeys method: GET <mount>/subkeys/<path> through its adapter."""
    vault.secrets.kv.v2.create_or_update_secret(
        "sub", secret={"a": "1", "nested": {"b": "2", "deeper": {"c": "3"}}}, mount_point=kv2
    )
    body = vault.adapter.get(f"/v1/{kv2}/subkeys/sub")
    assert body["data"]["subkeys"] == {"a": None, "nested": {"b": None, "deeper": {"c": None}}}
    assert body["data"]["metadata"]["version"] == 1
    shallow = vault.adapter.get(f"/v1/{kv2}/subkeys/sub", params={"depth": 1})
    assert shallow["data"]["subkeys"] == {"a": None, "nested": None}
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.adapter.get(f"/v1/{kv2}/subkeys/absent")


def test_bad_requests(vault, kv2):
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.adapter.post(f"/v1/{kv2}/data/bad", json={"data": "not-a-map"})
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.adapter.post(f"/v1/{kv2}/data/bad", json={})
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.adapter.get(f"/v1/{kv2}/data/bad", params={"version": "abc"})
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.adapter.post(f"/v1/{kv2}/delete/bad", json={"versions": []})
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.secrets.kv.v2.update_metadata("bad", max_versions="many", mount_point=kv2)
    with pytest.raises(hvac.exceptions.UnexpectedError) as listed:  # hvac has no class for 405
        vault.adapter.list(f"/v1/{kv2}/data/")
    assert "unsupported operation" in str(listed.value)
