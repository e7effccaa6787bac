"""hvac's KV v1 calls.

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1
"""

from __future__ import annotations

import hvac
import pytest


@pytest.fixture
def kv1(vault, unique) -> str:
    mount = unique("kv1")
    vault.sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    return mount


def test_round_trip(vault, kv1):
    secret = {"user": "app", "password": "s3cret", "nested": {"n": 1, "list": [1, "two", None]}, "flag": True}
    assert vault.secrets.kv.v1.create_or_update_secret("app/db", secret=secret, mount_point=kv1).status_code == 204
    read = vault.secrets.kv.v1.read_secret("app/db", mount_point=kv1)
    assert read["data"] == secret
    assert read["lease_duration"] > 0 and read["renewable"] is False  # Vault's ttl hint for KV v1

    vault.secrets.kv.v1.create_or_update_secret("app/db", secret={"only": "this"}, mount_point=kv1)
    assert vault.secrets.kv.v1.read_secret("app/db", mount_point=kv1)["data"] == {"only": "this"}


def test_ttl_key_sets_lease_duration(vault, kv1):
    vault.secrets.kv.v1.create_or_update_secret("leased", secret={"ttl": "30m", "v": "x"}, mount_point=kv1)
    read = vault.secrets.kv.v1.read_secret("leased", mount_point=kv1)
    assert read["lease_duration"] == 1800 and read["data"] == {"ttl": "30m", "v": "x"}


def test_list_secrets(vault, kv1):
    for path in ("a", "b/c", "b/d/e"):
        vault.secrets.kv.v1.create_or_update_secret(path, secret={"x": "1"}, mount_point=kv1)
    assert vault.secrets.kv.v1.list_secrets("", mount_point=kv1)["data"]["keys"] == ["a", "b/"]
    assert vault.secrets.kv.v1.list_secrets("b", mount_point=kv1)["data"]["keys"] == ["c", "d/"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.secrets.kv.v1.list_secrets("nothing", mount_point=kv1)


def test_delete_secret(vault, kv1):
    vault.secrets.kv.v1.create_or_update_secret("gone", secret={"x": "1"}, mount_point=kv1)
    assert vault.secrets.kv.v1.delete_secret("gone", mount_point=kv1).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.secrets.kv.v1.read_secret("gone", mount_point=kv1)
    assert vault.secrets.kv.v1.delete_secret("never", mount_point=kv1).status_code == 204


def test_read_missing_is_invalid_path(vault, kv1):
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.secrets.kv.v1.read_secret("missing", mount_point=kv1)
