"""hvac's token role calls and its sys/leases calls on token leases, against a real node on Consul.

https://developer.hashicorp.com/vault/api-docs/auth/token#create-update-token-role
https://developer.hashicorp.com/vault/api-docs/system/leases
"""

from __future__ import annotations

import hvac
import pytest


def _role_token(vault: hvac.Client, unique, policies: list[str]) -> str:
    """A token whose only right is creating tokens against roles (and its default policy)."""
    name = unique("role-user")
    vault.sys.create_or_update_acl_policy(name, 'path "auth/token/create/*" { capabilities = ["update"] }\n')
    return vault.auth.token.create(policies=[name, *policies], ttl="1h")["auth"]["client_token"]


def test_role_create_read_list_delete(vault, unique):
    role = unique("app")
    vault.auth.token.create_or_update_role(
        role,
        allowed_policies=["reader", "writer"],
        disallowed_policies=["admin"],
        orphan=True,
        renewable=False,
        path_suffix="rev1",
        allowed_entity_aliases=["Alice"],
        token_period="1h",
        token_explicit_max_ttl="4h",
    )
    data = vault.auth.token.read_role(role)["data"]
    assert data["name"] == role and data["allowed_policies"] == ["reader", "writer"]
    assert data["disallowed_policies"] == ["admin"] and data["allowed_entity_aliases"] == ["alice"]
    assert (data["orphan"], data["renewable"], data["path_suffix"]) == (True, False, "rev1")
    assert (data["token_period"], data["token_explicit_max_ttl"], data["token_type"]) == (
        3600,
        14400,
        "default-service",
    )
    assert role in vault.auth.token.list_roles()["data"]["keys"]

    vault.auth.token.create_or_update_role(role, allowed_policies="reader")
    assert vault.auth.token.read_role(role)["data"]["allowed_policies"] == ["reader"]

    vault.auth.token.delete_role(role)
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.auth.token.read_role(role)
    try:
        remaining = vault.auth.token.list_roles()["data"]["keys"]
    except hvac.exceptions.InvalidPath:  # no role left at all: Vault's empty list is a 404
        remaining = []
    assert role not in remaining


def test_refused_role_settings(vault, unique):
    role = unique("bad")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="service tokens only"):
        vault.write(f"auth/token/roles/{role}", token_type="batch", orphan=True, renewable=False)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="token_bound_cidrs is not supported"):
        vault.write(f"auth/token/roles/{role}", token_bound_cidrs=["10.0.0.0/8"])
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.auth.token.read_role(role)


def test_create_against_a_role_as_a_narrow_token(vault, unique):
    role, policy = unique("ops"), unique("ops-policy")
    vault.sys.create_or_update_acl_policy(policy, 'path "secret/data/ops" { capabilities = ["read"] }\n')
    vault.auth.token.create_or_update_role(role, allowed_policies=[policy], orphan=True, path_suffix="rev2")
    narrow = hvac.Client(url=vault.url, token=_role_token(vault, unique, []), timeout=15)
    try:
        auth = narrow.auth.token.create(role_name=role, ttl="30m")["auth"]
        assert auth["policies"] == ["default", policy] and auth["orphan"] is True and auth["lease_duration"] == 1800
        data = vault.auth.token.lookup(auth["client_token"])["data"]
        assert data["role"] == role and data["path"] == f"auth/token/create/{role}/rev2"
        with pytest.raises(hvac.exceptions.InvalidRequest, match="must be subset of the role's allowed policies"):
            narrow.auth.token.create(role_name=role, policies=["root"])
        with pytest.raises(hvac.exceptions.Forbidden):  # its policy names the role paths only
            narrow.auth.token.create(policies=[policy])
        with pytest.raises(hvac.exceptions.InvalidRequest, match=f"unknown role {role}-x"):
            narrow.auth.token.create(role_name=role + "-x")
    finally:
        narrow.adapter.close()
        vault.auth.token.delete_role(role)


def test_token_leases_list_read_renew_revoke(vault, unique):
    role = unique("leased")
    vault.auth.token.create_or_update_role(role, path_suffix="rev3")
    tokens = [vault.auth.token.create(role_name=role, ttl="1h")["auth"]["client_token"] for _ in range(2)]
    folder = f"auth/token/create/{role}/rev3/"
    names = vault.sys.list_leases(folder)["data"]["keys"]
    assert len(names) == 2
    lease = folder + names[0]
    data = vault.sys.read_lease(lease)["data"]
    assert data["id"] == lease and 3590 <= data["ttl"] <= 3600 and data["renewable"] is True
    with pytest.raises(hvac.exceptions.InvalidRequest, match="tokens cannot be renewed through this endpoint"):
        vault.sys.renew_lease(lease, increment=60)
    vault.sys.revoke_lease(lease)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid lease"):
        vault.sys.read_lease(lease)
    assert len(vault.sys.list_leases(folder)["data"]["keys"]) == 1
    vault.sys.revoke_prefix(f"auth/token/create/{role}")
    for token in tokens:
        with pytest.raises(hvac.exceptions.Forbidden):
            vault.auth.token.lookup(token)
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.sys.list_leases(folder)
    vault.auth.token.delete_role(role)


def test_listing_leases_needs_sudo(vault, unique):
    name = unique("leases")
    vault.sys.create_or_update_acl_policy(name, 'path "sys/leases/*" { capabilities = ["update", "list"] }\n')
    client = hvac.Client(url=vault.url, token=vault.auth.token.create(policies=[name])["auth"]["client_token"])
    try:
        with pytest.raises(hvac.exceptions.Forbidden):
            client.sys.list_leases("auth/token/")
        with pytest.raises(hvac.exceptions.Forbidden):
            client.sys.revoke_prefix("auth/token/create/nothing")
    finally:
        client.adapter.close()
