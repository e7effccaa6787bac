"""hvac's secrets-engine calls: enable, list, read, tune, disable.

https://developer.hashicorp.com/vault/api-docs/system/mounts
"""

from __future__ import annotations

import hvac
import pytest


def test_enable_list_read_disable(vault, unique):
    path = unique("kv")
    assert (
        vault.sys.enable_secrets_engine("kv", path=path, description="compat kv", options={"version": "2"}).status_code
        == 204
    )

    mounts = vault.sys.list_mounted_secrets_engines()
    entry = mounts["data"][f"{path}/"]
    assert entry["type"] == "kv" and entry["description"] == "compat kv"
    assert entry["options"] == {"version": "2"}
    assert entry["accessor"].startswith("kv_") and entry["uuid"]
    assert mounts[f"{path}/"] == entry  # Vault repeats the listing at the top level
    assert mounts["data"]["sys/"]["type"] == "system"

    assert vault.sys.disable_secrets_engine(path).status_code == 204
    assert f"{path}/" not in vault.sys.list_mounted_secrets_engines()["data"]
    # The mount's data went with it: writing there now has no route.
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.secrets.kv.v2.create_or_update_secret("x", secret={"a": "b"}, mount_point=path)


def test_read_secrets_engine(vault, unique):
    """GET sys/mounts/:path (hvac has no method for it): Vault puts the entry in
    ``data`` and, as for other sys reads, at the top level."""
    path = unique("kv")
    vault.sys.enable_secrets_engine("kv", path=path, options={"version": "1"})
    body = vault.adapter.get(f"/v1/sys/mounts/{path}")
    assert body["data"]["type"] == "kv" and body["data"]["options"] == {"version": "1"}
    assert body["type"] == "kv"


def test_kv_v2_mount_via_type_alias(vault, unique):
    path = unique("kv2")
    vault.sys.enable_secrets_engine("kv-v2", path=path)
    assert vault.sys.list_mounted_secrets_engines()["data"][f"{path}/"]["options"] == {"version": "2"}
    assert vault.sys.retrieve_mount_option(path, "version") == "2"


def test_tune_and_read_configuration(vault, unique):
    path = unique("kv")
    vault.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    config = vault.sys.read_mount_configuration(path)
    assert config["data"]["default_lease_ttl"] > 0 and config["data"]["max_lease_ttl"] > 0
    assert config["data"]["force_no_cache"] is False

    response = vault.sys.tune_mount_configuration(
        path, default_lease_ttl="1h", max_lease_ttl="2h", description="tuned", listing_visibility="unauth"
    )
    assert response.status_code == 204
    config = vault.sys.read_mount_configuration(path)
    assert (config["data"]["default_lease_ttl"], config["data"]["max_lease_ttl"]) == (3600, 7200)
    assert config["data"]["description"] == "tuned"
    assert config["default_lease_ttl"] == 3600  # top level too, as Vault does
    assert vault.sys.list_mounted_secrets_engines()["data"][f"{path}/"]["description"] == "tuned"


def test_tune_cannot_downgrade_kv2(vault, unique):
    path = unique("kv")
    vault.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.tune_mount_configuration(path, options={"version": "1"})


def test_enable_errors(vault, unique):
    path = unique("kv")
    vault.sys.enable_secrets_engine("kv", path=path)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.enable_secrets_engine("kv", path=path)  # path already in use
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.enable_secrets_engine("no-such-engine", path=unique("bad"))
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.enable_secrets_engine("kv", path="sys")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.read_mount_configuration(unique("never"))


def test_disable_unknown_mount_is_noop(vault, unique):
    assert vault.sys.disable_secrets_engine(unique("never")).status_code == 204


def test_list_auth_methods(vault):
    methods = vault.sys.list_auth_methods()
    assert methods["data"]["token/"]["type"] == "token"
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.disable_auth_method("token")
