"""hvac's token auth method calls: create, lookup, renew, revoke, list.

https://developer.hashicorp.com/vault/api-docs/auth/token
"""

from __future__ import annotations

import hvac
import pytest

from tests.helpers.procs import wait_until

MAKER = 'path "auth/token/create" { capabilities = ["update"] }\n'


@pytest.fixture
def maker_policy(vault, unique) -> str:
    """A policy that may create child tokens (and nothing else)."""
    name = unique("maker")
    vault.sys.create_or_update_acl_policy(name, MAKER)
    return name


def _gone(client: hvac.Client) -> bool:
    """True once the client's token is no longer accepted."""
    try:
        client.auth.token.lookup_self()
    except hvac.exceptions.Forbidden:
        return True
    return False


def test_create_with_every_parameter(vault, maker_policy):
    created = vault.auth.token.create(
        policies=[maker_policy],
        ttl="1h",
        explicit_max_ttl="2h",
        num_uses=5,
        renewable=True,
        display_name="compat app",
        meta={"team": "ops"},
    )
    auth = created["auth"]
    assert auth["policies"] == ["default", maker_policy] and auth["token_policies"] == ["default", maker_policy]
    assert auth["metadata"] == {"team": "ops"}
    assert (auth["lease_duration"], auth["renewable"], auth["orphan"]) == (3600, True, False)
    assert auth["token_type"] == "service" and auth["num_uses"] == 5
    assert auth["client_token"] and auth["accessor"] and auth["client_token"] != auth["accessor"]

    data = vault.auth.token.lookup(auth["client_token"])["data"]
    assert data["id"] == auth["client_token"] and data["accessor"] == auth["accessor"]
    assert data["display_name"] == "token-compat-app"
    assert data["meta"] == {"team": "ops"}
    assert (data["num_uses"], data["explicit_max_ttl"], data["creation_ttl"]) == (5, 7200, 3600)
    assert 3590 <= data["ttl"] <= 3600 and data["renewable"] is True
    assert data["policies"] == ["default", maker_policy]
    assert data["path"] == "auth/token/create" and data["orphan"] is False and data["type"] == "service"
    assert data["expire_time"] and data["issue_time"]


def test_create_orphan_and_no_parent(vault):
    orphan = vault.auth.token.create_orphan(policies=["default"], ttl="10m")["auth"]
    assert orphan["orphan"] is True
    assert vault.auth.token.lookup(orphan["client_token"])["data"]["path"] == "auth/token/create-orphan"
    no_parent = vault.auth.token.create(policies=["default"], ttl="10m", no_parent=True)["auth"]
    assert vault.auth.token.lookup(no_parent["client_token"])["data"]["orphan"] is True


def test_lookup_self_and_accessor(compat_node, vault):
    auth = vault.auth.token.create(policies=["default"], ttl="10m")["auth"]
    own = compat_node.client(auth["client_token"]).auth.token.lookup_self()["data"]
    assert own["id"] == auth["client_token"] and own["policies"] == ["default"]
    by_accessor = vault.auth.token.lookup_accessor(auth["accessor"])["data"]
    assert by_accessor["accessor"] == auth["accessor"] and by_accessor["id"] == ""  # never the token itself
    assert auth["accessor"] in vault.auth.token.list_accessors()["data"]["keys"]


def test_renew_and_renew_self(compat_node, vault):
    auth = vault.auth.token.create(policies=["default"], ttl="1h", explicit_max_ttl="90m")["auth"]
    renewed = vault.auth.token.renew(auth["client_token"], increment="30m")["auth"]
    assert renewed["lease_duration"] == 1800 and renewed["client_token"] == auth["client_token"]
    capped = vault.auth.token.renew(auth["client_token"], increment="5h")
    assert 5300 <= capped["auth"]["lease_duration"] <= 5400  # explicit_max_ttl caps it
    assert capped["warnings"]
    own = compat_node.client(auth["client_token"]).auth.token.renew_self(increment="20m")["auth"]
    assert own["lease_duration"] == 1200
    assert vault.auth.token.renew_accessor(auth["accessor"], increment="25m")["auth"]["lease_duration"] == 1500


def test_non_renewable_token_cannot_be_renewed(vault):
    auth = vault.auth.token.create(policies=["default"], ttl="10m", renewable=False)["auth"]
    assert auth["renewable"] is False
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.auth.token.renew(auth["client_token"])


def test_revoke_revoke_self_revoke_accessor(compat_node, vault):
    first, second, third = (vault.auth.token.create(policies=["default"], ttl="10m")["auth"] for _ in range(3))
    assert vault.auth.token.revoke(first["client_token"]).status_code == 204
    assert _gone(compat_node.client(first["client_token"]))
    with pytest.raises(hvac.exceptions.Forbidden):
        vault.auth.token.lookup(first["client_token"])

    assert compat_node.client(second["client_token"]).auth.token.revoke_self().status_code == 204
    assert _gone(compat_node.client(second["client_token"]))

    assert vault.auth.token.revoke_accessor(third["accessor"]).status_code == 204
    assert _gone(compat_node.client(third["client_token"]))
    assert third["accessor"] not in vault.auth.token.list_accessors()["data"]["keys"]


def test_children_are_revoked_with_their_parent(compat_node, vault, maker_policy):
    parent = vault.auth.token.create(policies=[maker_policy], ttl="10m")["auth"]["client_token"]
    child = compat_node.client(parent).auth.token.create(policies=[maker_policy], ttl="10m")["auth"]["client_token"]
    grandchild = compat_node.client(child).auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    assert vault.auth.token.lookup(child)["data"]["orphan"] is False

    vault.auth.token.revoke(parent)
    for token in (parent, child, grandchild):
        assert _gone(compat_node.client(token)), token


def test_revoke_and_orphan_children(compat_node, vault, maker_policy):
    parent = vault.auth.token.create(policies=[maker_policy], ttl="10m")["auth"]["client_token"]
    child = compat_node.client(parent).auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    assert vault.auth.token.revoke_and_orphan_children(parent).status_code == 204
    assert _gone(compat_node.client(parent))
    assert compat_node.client(child).auth.token.lookup_self()["data"]["orphan"] is True


def test_child_policies_must_be_a_subset(compat_node, vault, maker_policy):
    parent = vault.auth.token.create(policies=[maker_policy], ttl="10m")["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        compat_node.client(parent).auth.token.create(policies=["root"])
    with pytest.raises(hvac.exceptions.Forbidden):
        compat_node.client(parent).auth.token.create_orphan(policies=[maker_policy])


def test_num_uses_are_exhausted(compat_node, vault):
    token = vault.auth.token.create(policies=["default"], num_uses=2, ttl="10m")["auth"]["client_token"]
    limited = compat_node.client(token)
    assert limited.auth.token.lookup_self()["data"]["num_uses"] == 1  # this lookup was the first use
    limited.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        vault.auth.token.lookup(token)


def test_short_ttl_token_expires(compat_node, vault):
    token = vault.auth.token.create(policies=["default"], ttl="2s")["auth"]["client_token"]
    client = compat_node.client(token)
    assert client.auth.token.lookup_self()["data"]["ttl"] <= 2
    wait_until(lambda: _gone(client), 15.0, "a 2s token to expire", interval=0.2)
    with pytest.raises(hvac.exceptions.Forbidden):
        vault.auth.token.lookup(token)


def test_bad_parameters(vault):
    for kwargs in ({"ttl": "soon"}, {"num_uses": -1}, {"explicit_max_ttl": "soon"}, {"meta": "x"}):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            vault.auth.token.create(**kwargs)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.auth.token.revoke("")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.auth.token.lookup_accessor("no-such-accessor")
    with pytest.raises(hvac.exceptions.Forbidden):
        vault.auth.token.lookup("no-such-token")
