"""hvac's policy calls, old (``sys/policy``) and new (``sys/policies/acl``).

https://developer.hashicorp.com/vault/api-docs/system/policy
https://developer.hashicorp.com/vault/api-docs/system/policies
"""

from __future__ import annotations

import hvac
import pytest

HCL = 'path "secret/data/compat/*" {\n  capabilities = ["read", "list"]\n}\n'
AS_DICT = {"path": {"secret/data/compat/*": {"capabilities": ["create", "update"]}}}


def test_legacy_policy_round_trip(vault, unique):
    name = unique("pol")
    assert vault.sys.create_or_update_policy(name, HCL).status_code == 204
    read = vault.sys.read_policy(name)
    assert read["data"]["rules"] == HCL and read["data"]["name"] == name
    assert read["rules"] == HCL  # sys/policy answers at the top level too
    listing = vault.sys.list_policies()
    assert name in listing["data"]["policies"] and {"root", "default"} <= set(listing["data"]["policies"])
    assert name in listing["data"]["keys"]

    assert vault.sys.delete_policy(name).status_code == 204
    assert name not in vault.sys.list_policies()["data"]["policies"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.sys.read_policy(name)


def test_acl_policy_round_trip(vault, unique):
    name = unique("acl")
    assert vault.sys.create_or_update_acl_policy(name, HCL).status_code == 204
    read = vault.sys.read_acl_policy(name)
    assert read["data"] == {**read["data"], "name": name, "policy": HCL}
    assert name in vault.sys.list_acl_policies()["data"]["keys"]

    updated = HCL.replace('"list"', '"list", "create"')
    vault.sys.create_or_update_acl_policy(name, updated)
    assert vault.sys.read_acl_policy(name)["data"]["policy"] == updated

    assert vault.sys.delete_acl_policy(name).status_code == 204
    assert name not in vault.sys.list_acl_policies()["data"]["keys"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.sys.read_acl_policy(name)


def test_policy_given_as_dict_is_json_hcl(vault, unique):
    """hvac serialises a dict policy to JSON, which Vault parses as HCL."""
    name = unique("json")
    vault.sys.create_or_update_acl_policy(name, AS_DICT)
    token = vault.auth.token.create(policies=[name], ttl="5m")["auth"]["client_token"]
    caps = vault.sys.get_capabilities(["secret/data/compat/x"], token=token)
    assert sorted(caps["capabilities"]) == ["create", "update"]


def test_policy_names_are_case_insensitive(vault, unique):
    name = unique("Mixed")
    vault.sys.create_or_update_acl_policy(name, HCL)
    assert name.lower() in vault.sys.list_acl_policies()["data"]["keys"]
    assert vault.sys.read_acl_policy(name.lower())["data"]["policy"] == HCL


def test_bad_policies_are_invalid_requests(vault, unique):
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.create_or_update_acl_policy(unique("bad"), 'path "x" { capabilities = ')
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.create_or_update_acl_policy(unique("bad"), 'path "x" { capabilities = ["fly"] }')
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.create_or_update_acl_policy("root", HCL)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.delete_acl_policy("default")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.delete_policy("root")
