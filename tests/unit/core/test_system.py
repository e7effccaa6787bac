"""The system backend's paths (core/system.py) through the HTTP API.

https://developer.hashicorp.com/vault/api-docs/system

Every ``sys/`` endpoint the backend serves, each HTTP method it answers and
each it refuses with 405, and the paths it does not serve (404 with Vault's
"no handler for route" message).  The tests speak HTTP only, so they pin the
behaviour whatever the routing inside the backend looks like.
"""

from __future__ import annotations

import pytest

UNSUPPORTED = {"errors": ["unsupported operation"]}
METHODS = ("GET", "LIST", "POST", "PUT", "PATCH", "DELETE")
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}

#: Every endpoint of the system backend and the methods it answers (anything
#: else is a 405).  ``secret/`` is a KV mount the ``node`` fixture below adds.
#: POST and PUT are the same operation (update), as in Vault.
ENDPOINTS = {
    "mounts": {"GET"},
    "mounts/secret": {"GET", "POST", "PUT", "DELETE"},
    "mounts/secret/tune": {"GET", "POST", "PUT"},
    "auth": {"GET"},
    "auth/token": {"GET", "POST", "PUT", "DELETE"},
    "auth/token/tune": {"GET", "POST", "PUT"},
    "policy": {"GET", "LIST"},
    "policy/default": {"GET", "POST", "PUT", "DELETE"},
    "policies/acl": {"GET", "LIST"},
    "policies/acl/default": {"GET", "POST", "PUT", "DELETE"},
    "audit": {"GET"},
    "audit/file": {"POST", "PUT", "DELETE"},
    "audit-hash/file": {"POST", "PUT"},
    "key-status": {"GET"},
    "rotate": {"POST", "PUT"},
    "seal": {"POST", "PUT"},
    "step-down": {"POST", "PUT"},
    "ha-status": {"GET"},
    "capabilities-self": {"POST", "PUT"},
    "capabilities": {"POST", "PUT"},
    "capabilities-accessor": {"POST", "PUT"},
    "internal/ui/mounts": {"GET"},
    "internal/ui/resultant-acl": {"GET"},
    "internal/ui/mounts/secret": {"GET"},
}

REFUSED = [(path, method) for path, allowed in ENDPOINTS.items() for method in METHODS if method not in allowed]

#: Paths under ``sys/`` that no handler serves: near misses of real endpoints included.
UNKNOWN = [
    "nope",
    "mounts-x",
    "policies",
    "policyx",
    "policies/aclx",
    "internal",
    "internal/ui",
    "internal/ui/mountsx",
    "key-status/extra",
    "rotate/extra",
    "seal/extra",
    "step-down/extra",
    "ha-status/extra",
    "capabilities-self/extra",
    "audit-hashx",
]


@pytest.fixture
def node(unsealed):
    """An unsealed node with a KV v1 mount at ``secret/``."""
    assert unsealed.request("POST", "sys/mounts/secret", json={"type": "kv"}).status_code == 204
    return unsealed


def send(node, method: str, path: str, **kwargs):
    """One request on ``sys/<path>``; a body-carrying method sends ``{}`` unless told."""
    if method == "PATCH":
        kwargs.setdefault("body", "{}")
        kwargs.setdefault("headers", MERGE_PATCH)
    elif method in ("POST", "PUT") and "json" not in kwargs:
        kwargs["json"] = {}
    return node.request(method, "sys/" + path, **kwargs)


@pytest.mark.parametrize(("path", "method"), REFUSED, ids=[f"{m}-{p}" for p, m in REFUSED])
def test_an_operation_the_endpoint_does_not_support_is_405(node, path, method):
    stored = node.snapshot()
    result = send(node, method, path)
    assert result.status_code == 405, result.text
    assert result.json == UNSUPPORTED
    assert node.snapshot() == stored
    assert not node.seal.status()["sealed"]


@pytest.mark.parametrize("path", UNKNOWN)
@pytest.mark.parametrize("method", METHODS)
def test_an_unknown_sys_path_is_404_with_vaults_message(node, path, method):
    result = send(node, method, path)
    assert result.status_code == 404, result.text
    assert result.json == {"errors": [f'no handler for route "sys/{path}". route entry not found.']}


@pytest.mark.parametrize("path", ["", "/"])
def test_sys_itself_is_404(node, path):
    result = node.request("GET", "sys" + path)
    assert result.status_code == 404
    assert result.json == {"errors": ['no handler for route "sys/". route entry not found.']}


def test_an_unknown_sys_path_without_a_token_is_403_before_404(node):
    result = node.request("GET", "sys/nope", token="")
    assert result.status_code == 403
    assert result.json == {"errors": ["permission denied"]}


#: Vault's unauthenticated listing: anyone sees the mounts tuned to listing_visibility "unauth"
#: (tests/unit/core/test_ui_mounts.py).
OPEN_ENDPOINTS = {"internal/ui/mounts"}


@pytest.mark.parametrize("path", sorted(set(ENDPOINTS) - OPEN_ENDPOINTS))
def test_every_endpoint_needs_a_token(node, path):
    method = sorted(ENDPOINTS[path])[0]
    stored = node.snapshot()
    result = send(node, method, path, token="")
    assert result.status_code == 403, result.text
    assert node.snapshot() == stored
    assert not node.seal.status()["sealed"]


# --- sys/mounts ---------------------------------------------------------------


def test_mounts_lists_every_engine_and_sys(node):
    listing = node.request("GET", "sys/mounts").json
    assert listing["secret/"]["type"] == "kv"
    assert listing["sys/"]["type"] == "system"
    assert listing["data"]["secret/"] == listing["secret/"]


def test_mount_enable_read_and_disable(node):
    assert send(node, "PUT", "mounts/other", json={"type": "kv", "description": "d"}).status_code == 204
    read = node.request("GET", "sys/mounts/other")
    assert read.status_code == 200
    assert (read.json["type"], read.json["description"]) == ("kv", "d")
    assert "other/" in node.request("GET", "sys/mounts").json
    assert node.request("DELETE", "sys/mounts/other").status_code == 204
    assert "other/" not in node.request("GET", "sys/mounts").json
    missing = node.request("GET", "sys/mounts/other")
    assert missing.status_code == 400
    assert missing.json == {"errors": ["No secret engine mount at other/"]}


def test_mount_enable_needs_a_type(node):
    result = send(node, "POST", "mounts/other")
    assert result.status_code == 400
    assert result.json == {"errors": ["missing required field 'type'"]}


def test_disabling_a_missing_mount_is_204(node):
    stored = node.snapshot()
    assert node.request("DELETE", "sys/mounts/never").status_code == 204
    assert node.snapshot() == stored


def test_mount_tune_read_and_write(node):
    assert send(node, "POST", "mounts/secret/tune", json={"description": "tuned"}).status_code == 204
    tune = node.request("GET", "sys/mounts/secret/tune")
    assert tune.status_code == 200
    assert tune.json["description"] == "tuned"
    assert tune.json["default_lease_ttl"] == node.core.config.default_lease_ttl
    assert node.request("GET", "sys/mounts/secret").json["description"] == "tuned"


def test_tuning_a_missing_mount_is_400(node):
    for method in ("GET", "POST"):
        result = send(node, method, "mounts/never/tune")
        assert result.status_code == 400
        assert result.json == {"errors": ['cannot fetch sysview for path "never/"']}


# --- sys/auth -----------------------------------------------------------------


def test_auth_lists_the_token_method(node):
    listing = node.request("GET", "sys/auth").json
    assert listing["token/"]["type"] == "token"


def test_auth_enable_refuses_what_it_cannot_mount(node):
    token = send(node, "POST", "auth/token", json={"type": "token"})
    assert token.status_code == 400
    assert token.json == {"errors": ["token credential backend cannot be instantiated"]}
    other = send(node, "POST", "auth/other", json={"type": "no-such-method"})
    assert other.status_code == 400
    assert other.json == {"errors": ["plugin not found in the catalog: no-such-method"]}


def test_the_token_method_cannot_be_disabled(node):
    result = node.request("DELETE", "sys/auth/token")
    assert result.status_code == 400
    assert result.json == {"errors": ["token credential backend cannot be disabled"]}
    assert "token/" in node.request("GET", "sys/auth").json


def test_auth_tune_read_and_write(node):
    assert send(node, "PUT", "auth/token/tune", json={"description": "tokens"}).status_code == 204
    assert node.request("GET", "sys/auth/token/tune").json["description"] == "tokens"


# --- sys/policy and sys/policies/acl ------------------------------------------


@pytest.mark.parametrize("method", ["LIST", "GET"])
def test_policies_acl_lists_names(node, method):
    path = "sys/policies/acl" if method == "LIST" else "sys/policies/acl?list=true"
    result = node.request(method, path)
    assert result.status_code == 200
    assert result.json["data"] == {"keys": ["default", "root"]}


def test_legacy_policy_lists_names_at_the_top_level(node):
    result = node.request("GET", "sys/policy")
    assert result.json["policies"] == ["default", "root"]
    assert result.json["keys"] == ["default", "root"]
    assert node.request("LIST", "sys/policy").json["policies"] == ["default", "root"]


@pytest.mark.parametrize(("prefix", "key"), [("policies/acl", "policy"), ("policy", "rules")])
def test_policy_write_read_delete(node, prefix, key):
    rules = 'path "secret/*" { capabilities = ["read"] }'
    assert send(node, "PUT", f"{prefix}/reader", json={key: rules}).status_code == 204
    read = node.request("GET", f"sys/{prefix}/reader")
    assert read.status_code == 200
    assert read.json["data"] == {"name": "reader", key: rules}
    if prefix == "policy":  # the legacy endpoint also answers at the top level, as Vault does
        assert (read.json["name"], read.json["rules"]) == ("reader", rules)
    assert "reader" in node.request("LIST", f"sys/{prefix}").json["data"]["keys"]
    assert node.request("DELETE", f"sys/{prefix}/reader").status_code == 204
    gone = node.request("GET", f"sys/{prefix}/reader")
    assert gone.status_code == 404
    assert gone.json == {"errors": []}


def test_policy_names_are_canonical(node):
    rules = 'path "secret/*" { capabilities = ["read"] }'
    assert send(node, "PUT", "policies/acl/MixedCase", json={"policy": rules}).status_code == 204
    assert node.request("GET", "sys/policies/acl/mixedcase").json["data"]["name"] == "mixedcase"


def test_the_default_policy_cannot_be_deleted(node):
    result = node.request("DELETE", "sys/policies/acl/default")
    assert result.status_code == 400
    assert result.json == {"errors": ["cannot delete default policy"]}


# --- sys/audit and sys/audit-hash ---------------------------------------------


def test_audit_lists_devices(node):
    result = node.request("GET", "sys/audit")
    assert result.status_code == 200
    assert result.json["data"] == {}


def test_audit_devices_cannot_be_created_through_the_api(node):
    result = send(node, "PUT", "audit/file", json={"type": "file", "options": {"file_path": "/tmp/x"}})
    assert result.status_code == 400
    assert result.json["errors"][0].startswith("cannot enable audit device via API")
    assert node.request("GET", "sys/audit").json["data"] == {}


def test_audit_hash_of_an_unknown_device_is_400(node):
    result = send(node, "POST", "audit-hash/never", json={"input": "x"})
    assert result.status_code == 400
    assert result.json == {"errors": ['unknown audit backend "never/"']}


# --- key-status, rotate, seal, step-down, ha-status ---------------------------


def test_key_status_and_rotate(node):
    before = node.request("GET", "sys/key-status")
    assert before.status_code == 200
    assert before.json["term"] == 1
    assert before.json["install_time"] == "2026-01-02T03:04:05Z"
    assert send(node, "POST", "rotate").status_code == 204
    assert node.request("GET", "sys/key-status").json["term"] == 2


def test_seal_seals_the_node(node):
    assert send(node, "PUT", "seal").status_code == 204
    assert node.seal.status()["sealed"]
    assert node.request("GET", "sys/mounts").status_code == 503


def test_step_down_without_ha_is_a_no_op(node):
    assert send(node, "POST", "step-down").status_code == 204
    assert not node.seal.status()["sealed"]
    assert node.request("GET", "sys/mounts").status_code == 200


def test_ha_status_without_ha_lists_no_nodes(node):
    result = node.request("GET", "sys/ha-status")
    assert result.status_code == 200
    assert result.json["data"] == {"nodes": []}


# --- sys/capabilities* ---------------------------------------------------------


@pytest.mark.parametrize("path", ["capabilities-self", "capabilities", "capabilities-accessor"])
def test_capabilities_needs_paths(node, path):
    result = send(node, "POST", path)
    assert result.status_code == 400
    assert result.json == {"errors": ["paths must be supplied"]}  # Vault's words


def test_capabilities_of_self_token_and_accessor(node):
    rules = 'path "secret/*" { capabilities = ["read", "list"] }'
    assert send(node, "PUT", "policies/acl/reader", json={"policy": rules}).status_code == 204
    created = node.request("POST", "auth/token/create", json={"policies": ["reader"]})
    assert created.status_code == 200, created.text
    token, accessor = created.json["auth"]["client_token"], created.json["auth"]["accessor"]
    expected = {"secret/x": ["list", "read"], "capabilities": ["list", "read"]}
    self_caps = send(node, "POST", "capabilities-self", token=token, json={"paths": ["secret/x"]})
    assert self_caps.status_code == 200, self_caps.text
    assert self_caps.json["data"] == expected
    by_token = send(node, "POST", "capabilities", json={"token": token, "paths": "secret/x"})
    assert by_token.json["data"] == expected
    by_accessor = send(node, "PUT", "capabilities-accessor", json={"accessor": accessor, "paths": ["secret/x"]})
    assert by_accessor.json["data"] == expected
    denied = send(node, "POST", "capabilities", json={"token": token, "paths": ["other/x", "secret/y"]})
    assert denied.json["data"] == {"other/x": ["deny"], "secret/y": ["list", "read"]}


def test_capabilities_of_an_unknown_token_is_400(node):
    result = send(node, "POST", "capabilities", json={"token": "s.nope", "paths": ["secret/x"]})
    assert result.status_code == 400
    assert result.json == {"errors": ["invalid token"]}


def test_capabilities_of_an_unknown_accessor_is_400(node):
    result = send(node, "POST", "capabilities-accessor", json={"accessor": "nope", "paths": ["secret/x"]})
    assert result.status_code == 400
    assert result.json == {"errors": ["invalid accessor"]}  # Vault's words


# --- sys/internal/ui/mounts ---------------------------------------------------


def test_ui_mounts_lists_secret_and_auth_mounts(node):
    result = node.request("GET", "sys/internal/ui/mounts")
    assert result.status_code == 200
    assert "secret/" in result.json["data"]["secret"]
    assert "token/" in result.json["data"]["auth"]


def test_ui_mounts_finds_the_mount_of_a_path(node):
    result = node.request("GET", "sys/internal/ui/mounts/secret/deep/key")
    assert result.status_code == 200
    assert (result.json["data"]["path"], result.json["data"]["type"]) == ("secret/", "kv")


def test_ui_mounts_of_an_unmounted_path_is_vaults_403(node):
    result = node.request("GET", "sys/internal/ui/mounts/never")
    assert result.status_code == 403
    assert result.json == {
        "errors": [
            'preflight capability check returned 403, please ensure client\'s policies grant access to path "never/"'
        ]
    }
