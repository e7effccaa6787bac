"""sys/leases over the only leases Strongroom issues, its tokens' (core/sys_leases.py, auth/token_leases.py).

Compared request by request with OpenBao 2.7.2 (``bao server -dev``): a token
with a TTL has the lease ``<creation path>/<salted id>``, listed under its
path by ``LIST sys/leases/lookup/<prefix>`` (sudo); ``sys/leases/lookup``
answers id, issue/expire/last renewal times, ttl, renewable and path, "invalid
lease" otherwise; a token lease is not renewed here ("tokens cannot be renewed
through this endpoint"); revoking an unknown lease is a 204; revoke-prefix on
a role's path revokes that role's tokens.  OpenBao dropped Vault's
``sys/renew``/``sys/revoke*`` spellings; Strongroom serves them as Vault does.
"""

from __future__ import annotations

import pytest

from tests.helpers.unit_node import Node

LEASE_KEYS = {"id", "issue_time", "expire_time", "last_renewal", "renewable", "ttl", "path"}


@pytest.fixture
def node() -> Node:
    n = Node()
    n.init(1, 1)
    n.unseal()
    return n


def create(node: Node, path: str = "auth/token/create", token: str | None = None, **body) -> dict:
    answer = node.request("POST", path, token=token, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json["auth"]


def keys(node: Node, prefix: str, token: str | None = None) -> list[str]:
    answer = node.request("LIST", "sys/leases/lookup/" + prefix, token=token)
    if answer.status_code == 404:
        assert answer.json == {"errors": []}
        return []
    assert answer.status_code == 200, answer.text
    return answer.json["data"]["keys"]


def lease_of(node: Node, folder: str) -> str:
    """The one lease id under ``folder`` (a creation path)."""
    (name,) = keys(node, folder + "/")
    return f"{folder}/{name}"


def lookup(node: Node, lease: str, token: str | None = None):
    return node.request("PUT", "sys/leases/lookup", token=token, json={"lease_id": lease})


def alive(node: Node, token: str) -> bool:
    return node.request("GET", "auth/token/lookup-self", token=token).status_code == 200


def test_a_tokens_lease_is_listed_under_its_creation_path(node):
    assert keys(node, "") == []  # the root token never expires: no lease
    create(node, ttl="1h")
    assert keys(node, "") == ["auth/"]
    assert keys(node, "auth/") == ["token/"]
    assert keys(node, "auth/token") == ["create/"]  # no trailing slash: the folder of that name
    (name,) = keys(node, "auth/token/create/")
    assert len(name) == 64 and all(c in "0123456789abcdef" for c in name)
    assert keys(node, "auth/token/create/" + name) == []  # a lease is no folder
    assert keys(node, "nothing/") == []


def test_lookup_shape_and_values(node):
    auth = create(node, ttl="1h")
    lease = lease_of(node, "auth/token/create")
    answer = lookup(node, lease)
    assert answer.status_code == 200, answer.text
    data = answer.json["data"]
    assert set(data) == LEASE_KEYS
    assert data["id"] == lease and data["path"] == "auth/token/create"
    assert data["ttl"] == 3600 and data["renewable"] is True and data["last_renewal"] is None
    assert data["issue_time"] == "2026-01-02T03:04:05Z" and data["expire_time"] == "2026-01-02T04:04:05Z"
    node.clock.advance(600)
    assert node.request("PUT", "auth/token/renew-self", token=auth["client_token"]).status_code == 200
    data = lookup(node, lease).json["data"]
    assert data["last_renewal"] == "2026-01-02T03:14:05Z" and data["ttl"] == 3600
    assert data["expire_time"] == "2026-01-02T04:14:05Z"


@pytest.mark.parametrize(
    "lease", ["auth/token/create/nope", "auth/token/create/../../salt", "nothing", "auth/token/root/" + "0" * 64]
)
def test_lookup_of_no_lease(node, lease):
    answer = lookup(node, lease)
    assert (answer.status_code, answer.json) == (400, {"errors": ["invalid lease"]})


def test_a_lease_id_names_its_path_exactly(node):
    create(node, ttl="1h")
    name = keys(node, "auth/token/create/")[0]
    assert lookup(node, "auth/token/create-orphan/" + name).status_code == 400
    assert lookup(node, "auth/token/create/" + name).status_code == 200


def test_missing_lease_id_and_wrong_method(node):
    for path in ("sys/leases/lookup", "sys/leases/renew", "sys/leases/revoke"):
        answer = node.request("PUT", path, json={})
        assert (answer.status_code, answer.json) == (400, {"errors": ["lease_id must be specified"]})
    assert node.request("GET", "sys/leases/lookup").status_code == 405


def test_token_leases_are_renewed_only_through_auth_token(node):
    create(node, ttl="1h")
    lease = lease_of(node, "auth/token/create")
    for path, body in (
        ("sys/leases/renew", {"lease_id": lease, "increment": "10m"}),
        ("sys/renew", {"lease_id": lease}),
        ("sys/renew/" + lease, {}),
        ("sys/leases/renew/" + lease, {}),
    ):
        answer = node.request("PUT", path, json=body)
        assert (answer.status_code, answer.json) == (
            400,
            {"errors": ["tokens cannot be renewed through this endpoint"]},
        )
    answer = node.request("PUT", "sys/leases/renew", json={"lease_id": "auth/token/create/nope"})
    assert (answer.status_code, answer.json) == (400, {"errors": ["lease not found"]})
    create(node, "auth/token/create-orphan", ttl="1h", renewable=False)
    fixed = lease_of(node, "auth/token/create-orphan")
    answer = node.request("PUT", "sys/leases/renew", json={"lease_id": fixed})
    assert (answer.status_code, answer.json) == (400, {"errors": ["lease is not renewable"]})
    assert lookup(node, fixed).json["data"]["renewable"] is False


@pytest.mark.parametrize("spelling", ["body", "url", "old body", "old url"])
def test_revoke_revokes_the_token_and_its_children(node, spelling):
    parent = create(node, ttl="1h")["client_token"]
    child = create(node, token=parent, ttl="30m")["client_token"]
    leases = [f"auth/token/create/{name}" for name in keys(node, "auth/token/create/")]
    assert len(leases) == 2
    (parent_lease,) = [lease for lease in leases if lookup(node, lease).json["data"]["ttl"] == 3600]
    path, body = {
        "body": ("sys/leases/revoke", {"lease_id": parent_lease}),
        "url": ("sys/leases/revoke/" + parent_lease, {}),
        "old body": ("sys/revoke", {"lease_id": parent_lease}),
        "old url": ("sys/revoke/" + parent_lease, {}),
    }[spelling]
    assert node.request("PUT", path, json=body).status_code == 204
    assert not alive(node, parent) and not alive(node, child)
    assert keys(node, "auth/token/create/") == []


def test_revoking_an_unknown_lease_is_a_204_and_sync_false_a_202(node):
    assert node.request("PUT", "sys/leases/revoke", json={"lease_id": "auth/token/create/nope"}).status_code == 204
    token = create(node, ttl="1h")["client_token"]
    lease = lease_of(node, "auth/token/create")
    assert node.request("PUT", "sys/leases/revoke", json={"lease_id": lease, "sync": False}).status_code == 202
    assert not alive(node, token)


def test_revoke_prefix_revokes_one_roles_tokens(node):
    assert node.request("POST", "auth/token/roles/app", json={"path_suffix": "rev1"}).status_code == 204
    assert node.request("POST", "auth/token/roles/other").status_code == 204
    app = [create(node, "auth/token/create/app", ttl="1h")["client_token"] for _ in range(3)]
    other = create(node, "auth/token/create/other", ttl="1h")["client_token"]
    plain = create(node, ttl="1h")["client_token"]
    listed = keys(node, "auth/token/create/")
    # The plain token's lease (a 64-hex salted id) sorts among the folders by its first digit.
    folders = [k for k in listed if k.endswith("/")]
    assert listed == sorted(listed) and folders == ["app/", "other/"] and len(listed) == 3
    assert len(keys(node, "auth/token/create/app/rev1/")) == 3
    answer = node.request("PUT", "sys/leases/revoke-prefix/auth/token/create/app")
    assert answer.status_code == 204
    assert not any(alive(node, t) for t in app)
    assert alive(node, other) and alive(node, plain)
    # The old spelling, and one lease named exactly.
    lease = lease_of(node, "auth/token/create/other")
    assert node.request("PUT", "sys/revoke-prefix/" + lease).status_code == 204
    assert not alive(node, other) and alive(node, plain)
    assert node.request("PUT", "sys/leases/revoke-force/auth/token").status_code == 204
    assert not alive(node, plain)
    assert node.request("PUT", "sys/leases/revoke-prefix/nothing/here").status_code == 204


def test_login_tokens_have_leases_under_their_login_path(node):
    assert node.request("POST", "sys/auth/userpass", json={"type": "userpass"}).status_code == 204
    user = {"password": "correct horse", "token_policies": "default"}
    assert node.request("POST", "auth/userpass/users/alice", json=user).status_code == 204
    login = node.request("POST", "auth/userpass/login/alice", token="", json={"password": "correct horse"})
    assert login.status_code == 200, login.text
    lease = lease_of(node, "auth/userpass/login/alice")
    assert lookup(node, lease).json["data"]["path"] == "auth/userpass/login/alice"
    assert node.request("PUT", "sys/leases/revoke-prefix/auth/userpass/").status_code == 204
    assert not alive(node, login.json["auth"]["client_token"])


def write_policy(node: Node, name: str, text: str) -> None:
    assert node.request("PUT", f"sys/policies/acl/{name}", json={"policy": text}).status_code == 204


def test_listing_and_prefix_revocation_need_sudo(node):
    create(node, ttl="1h")
    lease = lease_of(node, "auth/token/create")
    write_policy(
        node,
        "leases",
        'path "sys/leases/*" { capabilities = ["update", "list"] }\n'
        'path "sys/revoke-prefix/*" { capabilities = ["update"] }\n',
    )
    write_policy(
        node,
        "leases-sudo",
        'path "sys/leases/*" { capabilities = ["update", "list", "sudo"] }\n',
    )
    plain = create(node, policies=["leases"], ttl="1h")["client_token"]
    sudo = create(node, policies=["leases-sudo"], ttl="1h")["client_token"]
    assert node.request("LIST", "sys/leases/lookup/auth/token/create/", token=plain).status_code == 403
    assert node.request("PUT", "sys/leases/revoke-prefix/auth/token/create", token=plain).status_code == 403
    assert node.request("PUT", "sys/revoke-prefix/auth/token/create", token=plain).status_code == 403
    assert node.request("PUT", "sys/leases/revoke-force/auth/token/create", token=plain).status_code == 403
    # Lookup itself needs no sudo, as in Vault.
    assert lookup(node, lease, token=plain).status_code == 200
    assert len(keys(node, "auth/token/create/", token=sudo)) == 3
    # Vault's default policy allows a lookup; without it and any rule on sys/leases, nothing.
    assert lookup(node, lease, token=create(node, policies=["default"], ttl="1h")["client_token"]).status_code == 200
    nobody = create(node, policies=["leases"], no_default_policy=True, ttl="1h")["client_token"]
    assert node.request("LIST", "sys/leases/lookup/", token=nobody).status_code == 403
    stranger = create(node, policies=["nothing"], no_default_policy=True, ttl="1h")["client_token"]
    assert lookup(node, lease, token=stranger).status_code == 403


def test_tidy_answers_202(node):
    answer = node.request("PUT", "sys/leases/tidy")
    assert answer.status_code == 202 and answer.json["warnings"]
