"""The ``auth/token/`` endpoints: Vault's rules and response shapes (checked against OpenBao 2.7)."""

from __future__ import annotations

import re

import pytest

from strongroom.auth.token import display_name
from strongroom.errors import InvalidRequest, MethodNotAllowed, PermissionDenied, UnsupportedPath
from strongroom.fields import ttl_seconds as parse_ttl
from strongroom.sdk import logical
from strongroom.timefmt import rfc3339_timestamp as rfc3339

# Key sets of OpenBao 2.7.2's responses.
AUTH_KEYS = {
    "client_token",
    "accessor",
    "policies",
    "token_policies",
    "metadata",
    "lease_duration",
    "renewable",
    "entity_id",
    "token_type",
    "orphan",
    "mfa_requirement",
    "num_uses",
}
LOOKUP_KEYS = {
    "accessor",
    "creation_time",
    "creation_ttl",
    "display_name",
    "entity_id",
    "expire_time",
    "explicit_max_ttl",
    "id",
    "issue_time",
    "meta",
    "num_uses",
    "orphan",
    "path",
    "policies",
    "renewable",
    "ttl",
    "type",
}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
READ, LIST = logical.READ, logical.LIST


def create(call, token, **data):
    resp = call("create", token, **data)
    return resp.auth["client_token"], resp


def user(call, root_id, policies=("user", "shared"), **data):
    """A non-root token that may create children (the ACL is the core's business)."""
    token, _ = create(call, root_id, policies=list(policies), **data)
    return token


# --- create ------------------------------------------------------------------------------


def test_create_returns_vaults_auth_block(call, root):
    resp = call(
        "create", root[0], policies=["b", "a", "a"], meta={"x": "y"}, ttl="1h", display_name="My Name", num_uses=3
    )
    auth = resp.auth
    assert set(auth) == AUTH_KEYS
    assert re.fullmatch(r"hvs\.[0-9A-Za-z]{24}", auth["client_token"])
    assert auth["policies"] == auth["token_policies"] == ["a", "b", "default"]
    assert auth["metadata"] == {"x": "y"}
    assert auth["lease_duration"] == 3600 and auth["renewable"] is True
    assert auth["entity_id"] == "" and auth["token_type"] == "service"
    assert auth["orphan"] is False and auth["mfa_requirement"] is None and auth["num_uses"] == 3
    assert resp.data is None and resp.warnings == []


def test_create_defaults(call, root, store):
    token, resp = create(call, root[0], policies=["x"])
    assert resp.auth["lease_duration"] == 2764800
    assert resp.auth["metadata"] is None
    entry = store.lookup(token)
    assert entry.display_name == "token" and entry.path == "auth/token/create"
    assert entry.parent == root[1].salted_id


def test_root_parent_creates_root_child_without_ttl(call, root):
    resp = call("create", root[0])
    assert resp.auth["policies"] == ["root"]
    assert resp.auth["lease_duration"] == 0 and resp.auth["renewable"] is False


def test_empty_policy_list_omits_token_policies(call, root):
    resp = call("create", root[0], policies=["default"], no_default_policy=True)
    assert resp.auth["policies"] == []
    assert "token_policies" not in resp.auth


def test_root_may_choose_the_id_and_make_orphans(call, root, store):
    resp = call("create", root[0], id="my-token", policies=["x"], no_parent=True)
    assert resp.auth["client_token"] == "my-token"
    assert resp.auth["orphan"] is True
    assert store.lookup("my-token").orphan
    with pytest.raises(InvalidRequest, match="duplicate ID"):
        call("create", root[0], id="my-token")


def test_create_orphan_needs_no_sudo(call, root, store):
    token = user(call, root[0])
    resp = call("create-orphan", token, policies=["user"])
    assert resp.auth["orphan"] is True
    assert store.lookup(resp.auth["client_token"]).path == "auth/token/create-orphan"
    with pytest.raises(InvalidRequest, match="root or sudo privileges required to create orphan token"):
        call("create-orphan", token, policies=["user"], no_parent=True)  # Vault checks no_parent first


@pytest.mark.parametrize(
    "data, message",
    [
        ({"policies": ["user", "other"]}, "child policies must be subset of parent"),
        ({"policies": ["root"]}, "child policies must be subset of parent"),
        ({"policies": ["user"], "no_parent": True}, "root or sudo privileges required to create orphan token"),
        ({"policies": ["user"], "id": "abc"}, "root or sudo privileges required to specify token id"),
        ({"policies": ["user"], "period": "1h"}, "root or sudo privileges required to create periodic token"),
    ],
)
def test_non_root_callers_are_limited(call, root, data, message):
    token = user(call, root[0])
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        call("create", token, **data)


def test_subset_ignores_default_and_inherits_it_from_the_parent(call, root, store):
    token = user(call, root[0])
    assert call("create", token, policies=["user"]).auth["policies"] == ["default", "user"]
    assert call("create", token, policies=["user"], no_default_policy=True).auth["policies"] == ["user"]
    assert call("create", token).auth["policies"] == ["default", "shared", "user"]
    bare = user(call, root[0], policies=["user"], no_default_policy=True)
    assert call("create", bare, policies=["USER "]).auth["policies"] == ["user"]
    with pytest.raises(InvalidRequest, match="subset"):
        call("create", bare, policies=["default"])


def test_sudo_holders_skip_the_subset_rule_but_cannot_mint_root(caller_for, root):
    call = caller_for(has_sudo=lambda req: True)
    token = user(call, root[0])
    assert call("create", token, policies=["other"]).auth["policies"] == ["default", "other"]
    assert call("create", token, policies=["x"], no_parent=True).auth["orphan"] is True
    with pytest.raises(InvalidRequest, match="root tokens may not be created without parent token being root"):
        call("create", token, policies=["root"])


def test_limited_use_tokens_cannot_create_children(call, root):
    token, _ = create(call, root[0], policies=["root"], num_uses=3)
    with pytest.raises(InvalidRequest, match="restricted use token cannot generate child tokens"):
        call("create", token, policies=["x"])
    last, _ = create(call, root[0], policies=["root"], num_uses=1)
    with pytest.raises(InvalidRequest, match="parent token lookup failed: no parent found"):
        call("create", last, policies=["x"])


@pytest.mark.parametrize(
    "given, shown",
    [
        ("", "token"),
        ("token", "token-token"),
        ("My Name", "token-My-Name"),
        ("a b_c.d--", "token-a-b-c-d-"),
        ("token-foo", "token-token-foo"),
        ("é", "token-"),
    ],
)
def test_display_names_are_sanitised_like_vault(given, shown):
    assert display_name(given) == shown


def test_display_name_on_create(call, root, store):
    token, _ = create(call, root[0], policies=["x"], display_name="web server")
    assert store.lookup(token).display_name == "token-web-server"


@pytest.mark.parametrize(
    "meta, stored",
    [
        ({"a": 1, "b": True, "c": "x"}, {"a": "1", "b": "1", "c": "x"}),
        ({"a": None, "b": 1.5}, {"a": "", "b": "1.5"}),
        ("a=b,c=d", {"a": "b,c=d"}),
        (["a=b", " c = d "], {"a": "b", " c ": " d "}),
        ({}, {}),
    ],
)
def test_meta_forms(call, root, meta, stored):
    assert call("create", root[0], policies=["x"], meta=meta).auth["metadata"] == stored


@pytest.mark.parametrize(
    "data, message",
    [
        ({"num_uses": -1}, "number of uses cannot be negative"),
        ({"type": "bogus"}, "invalid 'token_type' value"),
        ({"type": "batch"}, "batch tokens are not supported"),
        ({"ttl": "-5s"}, "ttl must be positive"),
        ({"ttl": "abc"}, 'time: invalid duration "abc"'),
        ({"explicit_max_ttl": -1}, "explicit_max_ttl must be positive"),
        ({"period": "-1m"}, "period must be positive"),
        ({"policies": ["response-wrapping"]}, 'cannot assign policy "response-wrapping"'),
        ({"id": "a.b"}, "custom token ID cannot have a '.' in the value"),
        ({"meta": "novalue"}, 'invalid key pair at index 0 in field "meta"'),
        ({"renewable": "maybe"}, 'error converting input for field "renewable"'),
        ({"num_uses": "x"}, 'error converting input for field "num_uses"'),
        ({"policies": {"a": 1}}, 'invalid value for "policies"'),
    ],
)
def test_create_rejects_bad_parameters(call, root, data, message):
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        call("create", root[0], **data)


def test_string_parameters_are_coerced(call, root):
    auth = call("create", root[0], renewable="false", num_uses="2", ttl=60).auth
    assert auth["renewable"] is False and auth["num_uses"] == 2 and auth["lease_duration"] == 60


def test_ttl_is_capped_with_vaults_warnings(call, root):
    resp = call("create", root[0], policies=["x"], ttl=99999999)
    assert resp.auth["lease_duration"] == 2764800
    assert resp.warnings == [
        'TTL of "27777h46m39s" exceeded the effective max_ttl of "768h"; TTL value is capped accordingly'
    ]
    resp = call("create", root[0], policies=["x"], ttl="2h", explicit_max_ttl="1h")
    assert resp.auth["lease_duration"] == 3600
    assert resp.warnings == ['TTL of "2h" exceeded the effective max_ttl of "1h"; TTL value is capped accordingly']


def test_periodic_token_gets_its_period(call, root, store):
    token, resp = create(call, root[0], policies=["x"], period="1h", ttl="5m", explicit_max_ttl="3h")
    assert resp.auth["lease_duration"] == 3600
    data = call("lookup", root[0], token=token).data
    assert data["period"] == 3600 and data["explicit_max_ttl"] == 10800 and data["creation_ttl"] == 3600


def test_root_tokens_are_bound_by_explicit_max_ttl(call, root):
    auth = call("create", root[0], policies=["root"], explicit_max_ttl="1h").auth
    assert auth["lease_duration"] == 3600 and auth["renewable"] is True


def test_expiring_root_tokens_cannot_create_eternal_ones(call, root):
    token, _ = create(call, root[0], policies=["root"], ttl="1h")
    with pytest.raises(InvalidRequest, match="expiring root tokens cannot create non-expiring root tokens"):
        call("create", token, policies=["root"])
    assert call("create", token, policies=["x"]).auth["lease_duration"] == 2764800


def test_missing_policy_warnings_when_the_core_can_tell(caller_for, root):
    call = caller_for(policy_exists=lambda name: name in ("default", "known"))
    resp = call("create", root[0], policies=["known", "b", "a"])
    assert resp.warnings == ['Policy "a" does not exist', 'Policy "b" does not exist']


# --- lookup ------------------------------------------------------------------------------------


def test_lookup_returns_vaults_data_block(call, root, clock):
    token, resp = create(call, root[0], policies=["a"], meta={"x": "y"}, ttl="1h", display_name="My Name", num_uses=3)
    clock.advance(3)
    data = call("lookup", root[0], token=token).data
    assert set(data) == LOOKUP_KEYS
    assert data["id"] == token and data["accessor"] == resp.auth["accessor"]
    assert data["creation_time"] == int(clock().timestamp()) - 3
    assert data["creation_ttl"] == 3600 and data["ttl"] == 3597
    assert data["display_name"] == "token-My-Name"
    assert data["entity_id"] == "" and data["explicit_max_ttl"] == 0
    assert data["expire_time"] == rfc3339(clock().timestamp() + 3597)
    assert RFC3339.fullmatch(data["expire_time"]) and RFC3339.fullmatch(data["issue_time"])
    assert data["meta"] == {"x": "y"} and data["num_uses"] == 3
    assert data["orphan"] is False and data["path"] == "auth/token/create"
    assert data["policies"] == ["a", "default"] and data["renewable"] is True and data["type"] == "service"


def test_lookup_of_a_root_token(call, root):
    data = call("lookup-self", root[0], READ).data
    assert data["expire_time"] is None and data["ttl"] == 0 and data["creation_ttl"] == 0
    assert data["renewable"] is False and data["orphan"] is True and data["policies"] == ["root"]
    assert data["path"] == "auth/token/root" and data["display_name"] == "root" and data["meta"] is None


def test_lookup_self_get_and_post_and_lookup_without_token(call, root):
    token = user(call, root[0])
    for op in (READ, logical.UPDATE):
        assert call("lookup-self", token, op).data["id"] == token
    assert call("lookup", token).data["id"] == token
    assert call("lookup", token, READ).data["id"] == token


def test_lookup_of_unknown_token_is_bad_token(call, root):
    with pytest.raises(PermissionDenied, match="bad token"):
        call("lookup", root[0], token="hvs.nope")


def test_lookup_self_counts_uses_like_vault(call, root):
    token, _ = create(call, root[0], policies=["x"], num_uses=3)
    assert [call("lookup-self", token, READ).data["num_uses"] for _ in range(3)] == [2, 1, -1]
    with pytest.raises(AssertionError):  # the core would now answer 403
        call("lookup-self", token, READ)


def test_lookup_accessor_hides_the_id(call, root):
    token, resp = create(call, root[0], policies=["x"])
    data = call("lookup-accessor", root[0], accessor=resp.auth["accessor"]).data
    assert set(data) == LOOKUP_KEYS
    assert data["id"] == "" and data["accessor"] == resp.auth["accessor"]
    with pytest.raises(InvalidRequest, match="invalid accessor"):
        call("lookup-accessor", root[0], accessor="nope")
    with pytest.raises(InvalidRequest, match="missing accessor"):
        call("lookup-accessor", root[0])


def test_expired_token_is_gone(call, root, clock):
    token, _ = create(call, root[0], policies=["x"], ttl="10s")
    clock.advance(10)
    with pytest.raises(PermissionDenied, match="bad token"):
        call("lookup", root[0], token=token)


# --- renew -------------------------------------------------------------------------------------------


def test_renew_endpoints(call, root, clock):
    token, resp = create(call, root[0], policies=["x"], ttl="1h")
    accessor = resp.auth["accessor"]
    clock.advance(2)
    renewed = call("renew", root[0], token=token)
    assert set(renewed.auth) == AUTH_KEYS and renewed.auth["lease_duration"] == 3600
    assert renewed.auth["client_token"] == token
    assert call("renew", root[0], token=token, increment="10m").auth["lease_duration"] == 600
    assert call("renew", root[0], token=token).auth["lease_duration"] == 600
    assert call("renew-self", token, increment="20s").auth["lease_duration"] == 20
    by_accessor = call("renew-accessor", root[0], accessor=accessor, increment=30)
    assert by_accessor.auth["client_token"] == "" and by_accessor.auth["lease_duration"] == 30
    data = call("lookup", root[0], token=token).data
    assert data["creation_ttl"] == 3600 and data["ttl"] == 30
    assert data["last_renewal_time"] == int(clock().timestamp()) and RFC3339.fullmatch(data["last_renewal"])


def test_renew_caps_at_max_ttl_with_a_warning(call, root, clock):
    token, _ = create(call, root[0], policies=["x"], ttl="1h")
    clock.advance(2)
    resp = call("renew", root[0], token=token, increment=99999999)
    assert resp.auth["lease_duration"] == 2764798
    assert resp.warnings == [
        'TTL of "27777h46m39s" exceeded the effective max_ttl of "767h59m58s"; TTL value is capped accordingly'
    ]


def test_renew_errors(call, root):
    with pytest.raises(InvalidRequest, match="lease is not renewable"):
        call("renew-self", root[0])
    token, _ = create(call, root[0], policies=["x"], renewable=False)
    with pytest.raises(InvalidRequest, match="lease is not renewable"):
        call("renew", root[0], token=token)
    with pytest.raises(InvalidRequest, match="missing token ID"):
        call("renew", root[0])
    with pytest.raises(InvalidRequest, match="token not found"):
        call("renew", root[0], token="hvs.nope")
    with pytest.raises(InvalidRequest, match="invalid accessor"):
        call("renew-accessor", root[0], accessor="nope")
    last, _ = create(call, root[0], policies=["x"], num_uses=1)
    with pytest.raises(InvalidRequest, match="token not found"):
        call("renew-self", last)
    with pytest.raises(InvalidRequest, match='error converting input for field "increment": time: invalid duration'):
        call("renew", root[0], token=token, increment="soon")


# --- revoke ----------------------------------------------------------------------------------------------


def test_revoke_cascades_to_children(call, root, store):
    parent, _ = create(call, root[0], policies=["root"])
    kid, _ = create(call, parent, policies=["x"])
    resp = call("revoke", root[0], token=parent)
    assert resp.status == 204 and resp.data is None
    assert store.lookup(parent) is None and store.lookup(kid) is None
    assert call("revoke", root[0], token="hvs.unknown").status == 204
    with pytest.raises(InvalidRequest, match="missing token ID"):
        call("revoke", root[0])


def test_revoke_self(call, root, store):
    token = user(call, root[0])
    kid, _ = create(call, token, policies=["user"])
    assert call("revoke-self", token).status == 204
    assert store.lookup(token) is None and store.lookup(kid) is None
    last, _ = create(call, root[0], policies=["x"], num_uses=1)
    assert call("revoke-self", last).status == 204


def test_revoke_accessor(call, root, store):
    token, resp = create(call, root[0], policies=["x"])
    assert call("revoke-accessor", root[0], accessor=resp.auth["accessor"]).status == 204
    assert store.lookup(token) is None
    unknown = call("revoke-accessor", root[0], accessor="nope")
    assert unknown.status is None and unknown.warnings == ["No token found with this accessor"]
    with pytest.raises(InvalidRequest, match="missing accessor"):
        call("revoke-accessor", root[0])


def test_revoke_orphan(call, root, store):
    parent, _ = create(call, root[0], policies=["root"])
    kid, _ = create(call, parent, policies=["x"])
    assert call("revoke-orphan", root[0], token=parent).status == 204
    assert store.lookup(parent) is None
    assert call("lookup", root[0], token=kid).data["orphan"] is True
    with pytest.raises(InvalidRequest, match="token to revoke not found"):
        call("revoke-orphan", root[0], token=parent)
    with pytest.raises(InvalidRequest, match="missing token ID"):
        call("revoke-orphan", root[0])
    with pytest.raises(InvalidRequest, match="root or sudo privileges required to revoke and orphan"):
        call("revoke-orphan", user(call, root[0]), token=kid)


@pytest.mark.parametrize("path", ["revoke", "revoke-orphan"])
def test_revoke_handlers_read_the_token_entry_once(call, root, store, view, path):
    parent, _ = create(call, root[0], policies=["x"])
    create(call, parent, policies=["x"])
    key = "id/" + store.lookup(parent).salted_id
    view.reads.clear()
    assert call(path, root[0], token=parent).status == 204
    assert view.reads[key] == 1


# --- accessors, tidy, routing ----------------------------------------------------------------------------


def test_list_accessors_needs_sudo(call, root):
    _, resp = create(call, root[0], policies=["x"])
    for path in ("accessors", "accessors/"):
        keys = call(path, root[0], LIST).data["keys"]
        assert sorted(keys) == sorted([root[1].accessor, resp.auth["accessor"]])
    with pytest.raises(PermissionDenied):
        call("accessors", user(call, root[0]), LIST)


def test_tidy_answers_202(call, root, clock, store):
    token, _ = create(call, root[0], policies=["x"], ttl=5)
    clock.advance(6)
    resp = call("tidy", root[0])
    assert resp.status == 202 and resp.warnings
    assert store.list_accessors() == [root[1].accessor]


def test_routing(call, root, backend):
    with pytest.raises(UnsupportedPath):
        call("bogus", root[0])
    with pytest.raises(UnsupportedPath):
        call("lookup/" + root[0], root[0], READ)  # OpenBao dropped the token-in-URL form
    with pytest.raises(MethodNotAllowed):
        call("create", root[0], READ)
    with pytest.raises(MethodNotAllowed):
        call("accessors", root[0], READ)
    assert backend.unauthenticated_paths() == []
    # No existence checks: every write is an update for the ACL, as in Vault.
    for path in ("create", "revoke", "bogus"):
        write = logical.Request(operation=logical.UPDATE, path="auth/token/" + path, relative_path=path)
        assert backend.exists(write) is None


@pytest.mark.parametrize(
    "value, seconds",
    [
        (None, 0),
        ("", 0),
        (60, 60),
        ("60", 60),
        ("10s", 10),
        ("30m", 1800),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1.9s", 1),
        ("7d", 604800),
    ],
)
def test_parse_ttl(value, seconds):
    assert parse_ttl(value) == seconds
