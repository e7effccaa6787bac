"""The AppRole auth method through a unit node's HTTP surface.

Shapes and messages are Vault's (checked against ``bao server -dev`` 2.7.2).
"""

from __future__ import annotations

import pytest

from strongroom.core.core import Core
from strongroom.errors import ReadOnly
from strongroom.sdk import logical
from strongroom.sdk.logical import Request
from strongroom.storage import ReadOnlyView
from tests.helpers.unit_node import Node


@pytest.fixture
def ar(unsealed: Node) -> Node:
    """An unsealed node with AppRole at ``approle/`` and role r1 (policy p1, secret IDs for 10 minutes, 2 uses)."""
    assert unsealed.request("POST", "sys/auth/approle", json={"type": "approle"}).status_code == 204
    body = {"token_policies": "p1", "secret_id_ttl": "10m", "secret_id_num_uses": 2, "token_ttl": "1h"}
    result = unsealed.request("POST", "auth/approle/role/r1", json=body)
    assert result.status_code == 204, result.text
    return unsealed


def role_id(node: Node, role: str = "r1") -> str:
    return node.request("GET", f"auth/approle/role/{role}/role-id").json["data"]["role_id"]


def secret_id(node: Node, role: str = "r1", **body) -> dict:
    result = node.request("POST", f"auth/approle/role/{role}/secret-id", json=body)
    assert result.status_code == 200, result.text
    return result.json["data"]


def login(node: Node, rid: str, sid: str):
    return node.request("POST", "auth/approle/login", token="", json={"role_id": rid, "secret_id": sid})


def test_role_read_shape_and_list(ar):
    data = ar.request("GET", "auth/approle/role/r1").json["data"]
    assert data == {
        "bind_secret_id": True,
        "local_secret_ids": False,
        "secret_id_bound_cidrs": None,
        "secret_id_num_uses": 2,
        "secret_id_ttl": 600,
        "token_bound_cidrs": [],
        "token_explicit_max_ttl": 0,
        "token_max_ttl": 0,
        "token_no_default_policy": False,
        "token_num_uses": 0,
        "token_period": 0,
        "token_policies": ["p1"],
        "token_strictly_bind_ip": False,
        "token_ttl": 3600,
        "token_type": "default",
    }
    assert ar.request("LIST", "auth/approle/role").json["data"] == {"keys": ["r1"]}
    assert ar.request("GET", "auth/approle/role/nobody").status_code == 404


def test_secret_id_for_a_missing_role_is_vaults_404(ar):
    result = ar.request("POST", "auth/approle/role/nobody/secret-id")
    assert (result.status_code, result.json["errors"]) == (404, ['role "nobody" does not exist'])


def test_login_returns_vaults_auth_block_and_counts_uses(ar):
    rid, sid = role_id(ar), secret_id(ar)
    assert sid["secret_id_num_uses"] == 2 and sid["secret_id_ttl"] == 600
    first = login(ar, rid, sid["secret_id"])
    assert first.status_code == 200, first.text
    auth = first.json["auth"]
    assert (auth["policies"], auth["metadata"], auth["lease_duration"], auth["orphan"]) == (
        ["default", "p1"],
        {"role_name": "r1"},
        3600,
        True,
    )
    looked = ar.request("GET", "auth/token/lookup-self", token=auth["client_token"]).json["data"]
    assert (looked["display_name"], looked["path"]) == ("approle", "auth/approle/login")
    assert login(ar, rid, sid["secret_id"]).status_code == 200
    spent = login(ar, rid, sid["secret_id"])
    assert (spent.status_code, spent.json["errors"]) == (400, ["invalid role or secret ID"])


def test_bad_credentials_are_refused_alike(ar):
    rid, sid = role_id(ar), secret_id(ar)["secret_id"]
    for result in (login(ar, rid, "bad"), login(ar, "bad", sid), login(ar, "bad", "bad")):
        assert (result.status_code, result.json["errors"]) == (400, ["invalid role or secret ID"])
    result = ar.request("POST", "auth/approle/login", token="", json={})
    assert result.json["errors"] == ["missing role_id"]


def test_expired_secret_id_is_refused(ar):
    rid, sid = role_id(ar), secret_id(ar)["secret_id"]
    ar.clock.advance(601)
    assert login(ar, rid, sid).status_code == 400


def test_lookup_destroy_and_accessors(ar):
    issued = secret_id(ar, metadata='{"a": "b"}')
    looked = ar.request("POST", "auth/approle/role/r1/secret-id/lookup", json={"secret_id": issued["secret_id"]})
    data = looked.json["data"]
    assert data["metadata"] == {"a": "b"}
    assert data["secret_id_accessor"] == issued["secret_id_accessor"]
    assert issued["secret_id"] not in looked.text
    keys = ar.request("LIST", "auth/approle/role/r1/secret-id").json["data"]["keys"]
    assert keys == [issued["secret_id_accessor"]]
    by_accessor = ar.request(
        "POST",
        "auth/approle/role/r1/secret-id-accessor/lookup",
        json={"secret_id_accessor": issued["secret_id_accessor"]},
    )
    assert by_accessor.json["data"]["secret_id_num_uses"] == 2
    destroy = ar.request("POST", "auth/approle/role/r1/secret-id/destroy", json={"secret_id": issued["secret_id"]})
    assert destroy.status_code == 204
    gone = ar.request("POST", "auth/approle/role/r1/secret-id/lookup", json={"secret_id": issued["secret_id"]})
    assert gone.status_code == 204
    assert login(ar, role_id(ar), issued["secret_id"]).status_code == 400
    missing = ar.request("POST", "auth/approle/role/r1/secret-id-accessor/lookup", json={"secret_id_accessor": "nope"})
    assert missing.status_code == 404


def test_custom_secret_id_and_role_id(ar):
    custom = ar.request("POST", "auth/approle/role/r1/custom-secret-id", json={"secret_id": "mine-123"})
    assert custom.json["data"]["secret_id"] == "mine-123"
    again = ar.request("POST", "auth/approle/role/r1/custom-secret-id", json={"secret_id": "mine-123"})
    assert again.status_code == 400
    assert ar.request("POST", "auth/approle/role/r1/role-id", json={"role_id": "custom-role"}).status_code == 204
    assert role_id(ar) == "custom-role"
    assert login(ar, "custom-role", "mine-123").status_code == 200


def test_ids_are_stored_only_hashed(ar):
    rid, issued = role_id(ar), secret_id(ar)
    uuid = ar.request("GET", "sys/auth/approle").json["data"]["uuid"]
    keys = [k for k in ar.backend._data if k.startswith(f"auth/{uuid}/")]
    assert not any(issued["secret_id"] in k or rid in k for k in keys)


def test_delete_role_removes_its_ids(ar):
    rid, sid = role_id(ar), secret_id(ar)["secret_id"]
    assert ar.request("DELETE", "auth/approle/role/r1").status_code == 204
    assert login(ar, rid, sid).status_code == 400
    assert ar.request("LIST", "auth/approle/role").status_code == 404


def test_unbound_role_needs_a_constraint(ar):
    result = ar.request("POST", "auth/approle/role/open", json={"bind_secret_id": False})
    assert result.json["errors"] == ["at least one constraint should be enabled on the role"]


def test_login_on_a_performance_standby_raises_read_only_and_spends_nothing(ar):
    rid, sid = role_id(ar), secret_id(ar)["secret_id"]
    standby = Core(ReadOnlyView(ar.backend), ar.seal, backends=ar.backends, auth_backends=ar.auth_backends)
    before = ar.snapshot()
    req = Request(operation=logical.UPDATE, path="auth/approle/login", data={"role_id": rid, "secret_id": sid})
    with pytest.raises(ReadOnly):
        standby.handle(req)
    assert ar.snapshot() == before


def test_audit_entries_never_hold_the_ids_or_the_token(tmp_path):
    from tests.unit.auth.test_userpass import AuditedNode

    node = AuditedNode(tmp_path)
    node.request("POST", "sys/auth/approle", json={"type": "approle"})
    node.request("POST", "auth/approle/role/r1", json={"token_policies": "p1"})
    rid, sid = role_id(node), secret_id(node)["secret_id"]
    token = login(node, rid, sid).json["auth"]["client_token"]
    text = node.log.read_text()
    assert "auth/approle/login" in text
    for secret in (rid, sid, token):
        assert secret not in text


def test_secret_id_bound_cidrs_are_enforced_before_a_use_is_spent(ar):
    ar.request("POST", "auth/approle/role/r1", json={"secret_id_bound_cidrs": "10.0.0.0/8"})
    rid, issued = role_id(ar), secret_id(ar)
    refused = login(ar, rid, issued["secret_id"])
    assert refused.status_code == 400
    assert "unauthorized through CIDR restrictions" in refused.json["errors"][0]
    looked = ar.request("POST", "auth/approle/role/r1/secret-id/lookup", json={"secret_id": issued["secret_id"]})
    assert looked.json["data"]["secret_id_num_uses"] == 2
    assert looked.json["data"]["cidr_list"] == ["10.0.0.0/8"]
    bad = ar.request("POST", "auth/approle/role/r1", json={"secret_id_bound_cidrs": "not-a-cidr"})
    assert bad.status_code == 400
