"""Token roles (auth/token_roles.py, path_token_roles.py) and token creation against a role (path_token.py).

Shapes, messages and rules compared request by request with OpenBao 2.7.2
(``bao server -dev``): a role read carries exactly Vault's keys
(``token_num_uses`` only when set), ``token_period`` clears the deprecated
``period`` while ``period`` alone sets both, a create against a role takes its
policies from the role's allowed set (``default`` added), refuses a
disallowed one, ignores ``no_parent``, and records
``auth/token/create/<role>/<suffix>`` as the token's path.
"""

from __future__ import annotations

import re

import pytest

from strongroom.auth.token_roles import ROLES_PREFIX, TokenRole, TokenRoles
from strongroom.errors import InvalidRequest, MethodNotAllowed, UnsupportedPath
from strongroom.sdk import logical
from strongroom.sdk.framework import Backend
from strongroom.sdk.logical import Request
from tests.helpers.unit_node import Node

READ_KEYS = {
    "allowed_entity_aliases",
    "allowed_policies",
    "allowed_policies_glob",
    "disallowed_policies",
    "disallowed_policies_glob",
    "explicit_max_ttl",
    "name",
    "orphan",
    "path_suffix",
    "period",
    "renewable",
    "token_explicit_max_ttl",
    "token_no_default_policy",
    "token_period",
    "token_type",
}


@pytest.fixture
def root_id(root) -> str:
    return root[0]


def write(call, root_id, name: str, **fields):
    return call(f"roles/{name}", root_id, logical.UPDATE, **fields)


def read(call, root_id, name: str) -> dict:
    resp = call(f"roles/{name}", root_id, logical.READ)
    assert resp is not None, f"role {name} missing"
    return resp.data


def narrow_token(store, root, policies=("narrow",)) -> str:
    """A child of root with only ``policies`` (and default): no sudo, not root."""
    token_id, _ = store.create(policies=list(policies), parent=root[1], ttl=3600)
    return token_id


# --- roles/<name>: write, read, list, delete ------------------------------------------------


def test_a_new_role_reads_back_with_vaults_keys_and_defaults(call, root_id):
    resp = write(call, root_id, "plain")
    assert resp.status == 204 and not resp.warnings
    data = read(call, root_id, "plain")
    assert set(data) == READ_KEYS
    assert data["name"] == "plain" and data["renewable"] is True and data["orphan"] is False
    assert data["token_type"] == "default-service" and data["allowed_entity_aliases"] is None
    assert data["allowed_policies"] == [] and data["period"] == 0 and data["token_period"] == 0


def test_every_field_is_stored_and_shown(call, root_id):
    write(
        call,
        root_id,
        "full",
        allowed_policies="b, A ,a",
        disallowed_policies=["X", "y"],
        allowed_policies_glob="app-*",
        disallowed_policies_glob="app-secret*",
        orphan=True,
        renewable=False,
        path_suffix="v1.2",
        token_period="1h",
        token_explicit_max_ttl=7200,
        token_type="service",
        token_no_default_policy=True,
        token_num_uses=3,
        allowed_entity_aliases="Alice,bob",
    )
    data = read(call, root_id, "full")
    assert set(data) == READ_KEYS | {"token_num_uses"}
    assert data["allowed_policies"] == ["a", "b"] and data["disallowed_policies"] == ["x", "y"]
    assert data["allowed_policies_glob"] == ["app-*"] and data["disallowed_policies_glob"] == ["app-secret*"]
    assert (data["orphan"], data["renewable"], data["path_suffix"]) == (True, False, "v1.2")
    assert (data["token_period"], data["period"]) == (3600, 0)
    assert (data["token_explicit_max_ttl"], data["explicit_max_ttl"]) == (7200, 0)
    assert data["token_type"] == "service" and data["token_no_default_policy"] is True
    assert data["token_num_uses"] == 3 and data["allowed_entity_aliases"] == ["alice", "bob"]


def test_the_deprecated_durations_set_both_spellings_and_lose_to_the_new_ones(call, root_id):
    write(call, root_id, "legacy", period="2h", explicit_max_ttl="3h")
    data = read(call, root_id, "legacy")
    assert (data["period"], data["token_period"], data["explicit_max_ttl"], data["token_explicit_max_ttl"]) == (
        7200,
        7200,
        10800,
        10800,
    )
    resp = write(call, root_id, "legacy", token_period="1h", period="5h")
    assert resp.warnings == [
        "Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value"
    ]
    data = read(call, root_id, "legacy")
    assert (data["period"], data["token_period"], data["token_explicit_max_ttl"]) == (0, 3600, 10800)


def test_an_update_changes_only_the_fields_given(call, root_id):
    write(call, root_id, "upd", allowed_policies="a", orphan=True, renewable=False)
    write(call, root_id, "upd", path_suffix="v22")
    data = read(call, root_id, "upd")
    assert (data["allowed_policies"], data["orphan"], data["renewable"], data["path_suffix"]) == (
        ["a"],
        True,
        False,
        "v22",
    )


def test_list_and_delete(call, root_id):
    assert call("roles", root_id, logical.LIST).status == 404  # Vault: an empty list is a 404
    write(call, root_id, "one")
    write(call, root_id, "Two")
    assert sorted(call("roles/", root_id, logical.LIST).data["keys"]) == ["Two", "one"]
    assert call("roles/two", root_id, logical.READ) is None  # names are case-sensitive, as in Vault
    assert call("roles/one", root_id, logical.DELETE).status == 204
    assert call("roles/one", root_id, logical.DELETE).status == 204  # deleting nothing is fine
    assert call("roles", root_id, logical.LIST).data["keys"] == ["Two"]
    assert call("roles/one", root_id, logical.READ) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"token_type": "batch"}, "Strongroom issues service tokens only"),
        ({"token_type": "default-batch"}, "Strongroom issues service tokens only"),
        ({"token_type": "nope"}, "invalid 'token_type' value \"nope\""),
        ({"token_type": None}, "Invalid 'token_type' value: null"),
        ({"token_bound_cidrs": "10.0.0.0/8"}, "token_bound_cidrs is not supported"),
        ({"bound_cidrs": ["10.0.0.0/8"]}, "bound_cidrs is not supported"),
        ({"path_suffix": "a/b"}, "given role path suffix contains invalid characters"),
        ({"path_suffix": "../x"}, "given role path suffix contains invalid characters"),
        ({"path_suffix": "v1"}, r"must match \w[\w-.]+\w"),  # Vault's pattern needs 3 characters
        ({"path_suffix": "r\u00e9v"}, "given role path suffix contains invalid characters"),
        ({"token_num_uses": -1}, "'token_num_uses' cannot be negative"),
        ({"period": "xx"}, 'error converting input for field "period"'),
        ({"token_explicit_max_ttl": -5}, "token_explicit_max_ttl"),
        ({"orphan": "maybe"}, "orphan"),
    ],
)
def test_refused_fields_store_nothing(call, root_id, store, fields, message):
    write(call, root_id, "kept", allowed_policies="a")
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        write(call, root_id, "kept", **fields)
    with pytest.raises(InvalidRequest):
        write(call, root_id, "fresh", **fields)
    assert call("roles/fresh", root_id, logical.READ) is None
    assert read(call, root_id, "kept")["allowed_policies"] == ["a"]


def test_empty_token_bound_cidrs_and_service_types_are_accepted(call, root_id):
    for token_type, shown in (
        ("default", "default-service"),
        ("service", "service"),
        ("default-service", "default-service"),
    ):
        write(call, root_id, "t", token_type=token_type, token_bound_cidrs=[])
        assert read(call, root_id, "t")["token_type"] == shown


def test_role_names_follow_vaults_name_pattern(call, root_id):
    with pytest.raises(UnsupportedPath):
        write(call, root_id, "-bad")
    with pytest.raises(UnsupportedPath):
        write(call, root_id, "a/b")
    with pytest.raises(UnsupportedPath):
        write(call, root_id, "caf\u00e9")  # Go's \w is ASCII
    with pytest.raises(MethodNotAllowed):
        call("roles", root_id, logical.READ)


def test_roles_are_stored_under_roles_in_the_token_view(call, root_id, view):
    write(call, root_id, "stored", allowed_policies="a")
    assert view.get(ROLES_PREFIX + "stored") is not None
    assert TokenRoles(view).get("stored") == TokenRole("stored", allowed_policies=("a",))


def test_the_existence_check_tells_create_from_update(backend, call, root_id, store, root):
    def exists(name: str) -> bool | None:
        req = Request(operation=logical.UPDATE, path=f"auth/token/roles/{name}", relative_path=f"roles/{name}")
        return Backend.exists(backend, req)

    assert exists("later") is False
    write(call, root_id, "later")
    assert exists("later") is True


# --- create/<role> ----------------------------------------------------------------------------


def create(call, token: str, role: str, **data):
    return call(f"create/{role}", token, logical.UPDATE, **data)


def test_create_against_a_role_takes_the_roles_policies_path_and_name(call, root_id, store):
    write(call, root_id, "app", allowed_policies="a,b", path_suffix="rev1")
    auth = create(call, root_id, "app").auth
    assert auth["policies"] == ["a", "b", "default"] and auth["orphan"] is False
    entry = store.lookup(auth["client_token"])
    assert entry.path == "auth/token/create/app/rev1" and entry.role == "app"
    lookup = call("lookup", root_id, logical.UPDATE, token=auth["client_token"]).data
    assert lookup["role"] == "app" and lookup["path"] == "auth/token/create/app/rev1"


def test_requested_policies_must_be_allowed_by_the_role(call, root_id):
    write(call, root_id, "app", allowed_policies="a,b")
    assert create(call, root_id, "app", policies=["a"]).auth["policies"] == ["a", "default"]
    assert create(call, root_id, "app", policies="a,b").auth["policies"] == ["a", "b", "default"]
    with pytest.raises(InvalidRequest) as refused:
        create(call, root_id, "app", policies=["c"])
    assert str(refused.value) == (
        'token policies (["c" "default"]) must be subset of the role\'s allowed policies '
        '(["a" "b" "default"]) or glob policies ([])'
    )
    assert create(call, root_id, "app", policies=["a"], no_default_policy=True).auth["policies"] == ["a"]


def test_globs_and_disallowed_policies(call, root_id):
    write(call, root_id, "g", allowed_policies_glob="app-*", disallowed_policies="app-secret")
    assert create(call, root_id, "g", policies="app-one").auth["policies"] == ["app-one", "default"]
    with pytest.raises(InvalidRequest, match='token policy "app-secret" is disallowed by this role'):
        create(call, root_id, "g", policies="app-secret")
    with pytest.raises(InvalidRequest, match="must be subset"):
        create(call, root_id, "g", policies="other")
    # Only disallowed rules: the parent's policies by default, "default" added.
    write(call, root_id, "d", disallowed_policies_glob="adm*")
    assert create(call, root_id, "d", policies="ops").auth["policies"] == ["default", "ops"]
    with pytest.raises(InvalidRequest, match='token policy "admin" is disallowed'):
        create(call, root_id, "d", policies="admin")


def test_a_disallowed_default_is_not_added(call, root_id):
    write(call, root_id, "nodef", allowed_policies="a", disallowed_policies="default")
    assert create(call, root_id, "nodef").auth["policies"] == ["a"]
    write(call, root_id, "nodef2", allowed_policies="a", token_no_default_policy=True)
    assert create(call, root_id, "nodef2").auth["policies"] == ["a"]


def test_a_narrow_token_gets_the_roles_policies_it_does_not_hold(call, root_id, store, root):
    """The point of roles: the role, not the parent, bounds the policies (Vault's escalation by design)."""
    write(call, root_id, "ops", allowed_policies="ops", orphan=True, token_period="1h")
    narrow = narrow_token(store, root)
    auth = create(call, narrow, "ops").auth
    assert auth["policies"] == ["default", "ops"] and auth["orphan"] is True
    assert auth["lease_duration"] == 3600  # periodic without sudo: the role grants it
    # Outside a role the same token gets only a subset of its own.
    with pytest.raises(InvalidRequest, match="child policies must be subset of parent"):
        call("create", narrow, logical.UPDATE, policies=["ops"])
    # A period asked in the request still needs sudo.
    with pytest.raises(InvalidRequest, match="root or sudo privileges required to create periodic token"):
        create(call, narrow, "ops", period="2h")


def test_a_role_without_policy_rules_keeps_the_parents_rules(call, root_id, store, root):
    write(call, root_id, "free")
    narrow = narrow_token(store, root)
    assert create(call, narrow, "free").auth["policies"] == ["default", "narrow"]
    with pytest.raises(InvalidRequest, match="child policies must be subset of parent"):
        create(call, narrow, "free", policies=["other"])


def test_orphan_comes_from_the_role_and_no_parent_is_ignored(call, root_id, store, root):
    write(call, root_id, "kids")
    narrow = narrow_token(store, root)
    auth = create(call, narrow, "kids", no_parent=True).auth
    assert auth["orphan"] is False  # Vault ignores no_parent with a role (and needs no sudo for it)
    child = store.lookup(auth["client_token"])
    assert child.parent == store.lookup(narrow).salted_id
    call("revoke-self", narrow, logical.UPDATE)
    assert store.lookup(auth["client_token"]) is None  # a child dies with its parent


def test_renewable_num_uses_and_explicit_max_ttl_from_the_role(call, root_id):
    write(call, root_id, "lim", renewable=False, token_num_uses=3, token_explicit_max_ttl="2h")
    resp = create(call, root_id, "lim", renewable=True, num_uses=5, ttl="3h")
    auth = resp.auth
    assert auth["renewable"] is False and auth["num_uses"] == 3 and auth["lease_duration"] == 7200
    resp = create(call, root_id, "lim", num_uses=2, explicit_max_ttl="1h")
    assert resp.auth["num_uses"] == 2 and resp.auth["lease_duration"] == 3600
    assert (
        "Explicit max TTL specified both during creation call and in role; using the lesser value of 3600 seconds"
        in resp.warnings
    )


def test_the_lesser_period_wins_with_a_warning(call, root_id):
    write(call, root_id, "per", token_period="2h")
    resp = create(call, root_id, "per", period="1h")
    assert resp.auth["lease_duration"] == 3600
    assert "Period specified both during creation call and in role; using the lesser value of 3600 seconds" in (
        resp.warnings
    )


def test_unknown_role_batch_type_and_entity_alias_are_refused(call, root_id):
    with pytest.raises(InvalidRequest, match="^unknown role nope$"):
        create(call, root_id, "nope")
    write(call, root_id, "svc", token_type="service")
    write(call, root_id, "ds")
    with pytest.raises(InvalidRequest, match="batch tokens are not supported"):
        create(call, root_id, "ds", type="batch")
    assert create(call, root_id, "svc", type="batch").auth["token_type"] == "service"  # the role fixes the type
    with pytest.raises(InvalidRequest, match="no identity store"):
        create(call, root_id, "ds", entity_alias="alice")
    with pytest.raises(InvalidRequest, match="only allowed in combination with token role"):
        call("create", root_id, logical.UPDATE, entity_alias="alice")


def test_a_role_change_applies_to_the_next_create(call, root_id):
    write(call, root_id, "live", allowed_policies="a")
    assert create(call, root_id, "live").auth["policies"] == ["a", "default"]
    write(call, root_id, "live", allowed_policies="b")
    assert create(call, root_id, "live").auth["policies"] == ["b", "default"]
    call("roles/live", root_id, logical.DELETE)
    with pytest.raises(InvalidRequest, match="unknown role live"):
        create(call, root_id, "live")


def test_a_role_is_stored_through_the_barrier():
    """On a whole node the role lives under the token store's view, encrypted like every value."""
    node = Node()
    node.init(1, 1)
    node.unseal()
    body = {"allowed_policies": "distinctive-policy-name", "path_suffix": "distinctive-suffix"}
    assert node.request("POST", "auth/token/roles/app", json=body).status_code == 204
    stored = node.snapshot()
    assert "sys/token/roles/app" in stored
    assert not any(b"distinctive" in value for value in stored.values())
    assert node.request("GET", "auth/token/roles/app").json["data"]["path_suffix"] == "distinctive-suffix"
