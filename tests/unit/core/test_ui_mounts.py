"""``sys/internal/ui/mounts`` and ``sys/internal/ui/mounts/<path>`` as Vault serves them.

https://developer.hashicorp.com/vault/api-docs/system/internal-ui-mounts

No ACL on the paths themselves: the listing shows the mounts tuned to
``listing_visibility = "unauth"`` to anyone and, to a token, the mounts it has
any capability under; the lookup answers a token with any capability under
the mount (Vault's ``hasMountAccess``), else Vault's preflight 403.  The vault
CLI asks the lookup before every ``kv`` command with the user's own token.
Answers checked against OpenBao 2.7.2 (``bao server -dev``).
"""

from __future__ import annotations

import pytest

from strongroom.core.policy_acl import ACL
from strongroom.core.policy_parser import parse_policy

NARROW = """
path "secret/data/app/*" { capabilities = ["read", "list"] }
path "secret/data/app/w" { capabilities = ["create", "update"] }
"""


def preflight(path: str) -> dict:
    return {
        "errors": [
            f'preflight capability check returned 403, please ensure client\'s policies grant access to path "{path}"'
        ]
    }


@pytest.fixture
def node(unsealed):
    """An unsealed node with KV mounts ``secret/``, ``other/`` and ``pub/`` (listing_visibility unauth)."""
    for path, config in (("secret", {}), ("other", {}), ("pub", {"listing_visibility": "unauth"})):
        body = {"type": "kv", "options": {"version": "2"}, "config": config, "description": path}
        assert unsealed.request("POST", f"sys/mounts/{path}", json=body).status_code == 204
    return unsealed


def token_with(node, rules: str) -> str:
    assert node.request("PUT", "sys/policies/acl/narrow", json={"policy": rules}).status_code == 204
    created = node.request("POST", "auth/token/create", json={"policies": ["narrow"]})
    assert created.status_code == 200, created.text
    return created.json["auth"]["client_token"]


def test_a_narrow_token_looks_up_the_mount_it_has_a_capability_under(node):
    token = token_with(node, NARROW)
    result = node.request("GET", "sys/internal/ui/mounts/secret/app/x", token=token)
    assert result.status_code == 200, result.text
    data = result.json["data"]
    assert (data["path"], data["type"], data["options"]) == ("secret/", "kv", {"version": "2"})


@pytest.mark.parametrize("path", ["other/app/x", "pub/x", "never/x"])
def test_a_mount_without_capability_or_unmounted_is_the_preflight_403(node, path):
    token = token_with(node, NARROW)
    result = node.request("GET", f"sys/internal/ui/mounts/{path}", token=token)
    assert result.status_code == 403
    assert result.json == preflight(path + "/")


@pytest.mark.parametrize("token", ["", "s.bogus"])
def test_the_lookup_without_a_valid_token_is_permission_denied(node, token):
    result = node.request("GET", "sys/internal/ui/mounts/secret/x", token=token)
    assert result.status_code == 403
    assert result.json == {"errors": ["permission denied"]}


def test_the_listing_for_a_narrow_token_shows_what_it_may_see(node):
    token = token_with(node, NARROW)
    result = node.request("GET", "sys/internal/ui/mounts", token=token)
    assert result.status_code == 200, result.text
    secret = result.json["data"]["secret"]
    assert "secret/" in secret and "pub/" in secret and "other/" not in secret
    # the default policy's rules under sys/ and auth/token/ show those mounts, as in Vault
    assert "sys/" in secret
    assert "token/" in result.json["data"]["auth"]
    assert secret["secret/"]["accessor"]


def test_the_listing_without_a_token_shows_only_unauth_mounts_in_short(node):
    result = node.request("GET", "sys/internal/ui/mounts", token="")
    assert result.status_code == 200, result.text
    assert result.json["data"] == {
        "secret": {"pub/": {"type": "kv", "description": "pub", "options": {"version": "2"}}},
        "auth": {},
    }


def test_the_listing_with_an_invalid_token_is_403(node):
    result = node.request("GET", "sys/internal/ui/mounts", token="s.bogus")
    assert result.status_code == 403


def test_the_listing_for_root_shows_every_mount(node):
    result = node.request("GET", "sys/internal/ui/mounts")
    assert {"secret/", "other/", "pub/", "sys/"} <= set(result.json["data"]["secret"])


def test_the_lookup_does_not_spend_a_use_of_the_token(node):
    assert node.request("PUT", "sys/policies/acl/narrow", json={"policy": NARROW}).status_code == 204
    created = node.request("POST", "auth/token/create", json={"policies": ["narrow"], "num_uses": 1})
    token = created.json["auth"]["client_token"]
    for _ in range(3):
        assert node.request("GET", "sys/internal/ui/mounts/secret/app/x", token=token).status_code == 200
    assert node.request("GET", "secret/data/app/x", token=token).status_code == 404


@pytest.mark.parametrize(
    ("rules", "mount", "expected"),
    [
        ('path "secret/data/app/*" { capabilities = ["read"] }', "secret/", True),
        ('path "secret/data/app" { capabilities = ["list"] }', "secret/", True),
        ('path "secret/*" { capabilities = ["deny"] }', "secret/", False),
        ('path "secret/x" { capabilities = ["deny"] }', "secret/", False),
        ('path "+/data/*" { capabilities = ["read"] }', "secret/", True),
        ('path "sec+/data/*" { capabilities = ["read"] }', "secret/", False),
        ('path "secret/+/x" { capabilities = ["read"] }', "secret/", True),
        ('path "other/+/x" { capabilities = ["read"] }', "secret/", False),
        ('path "se*" { capabilities = ["read"] }', "secret/", True),
        ('path "*" { capabilities = ["read"] }', "a/b/", True),
        ('path "a/+/c" { capabilities = ["read"] }', "a/b/", True),
        ('path "secretx/*" { capabilities = ["read"] }', "secret/", False),
    ],
)
def test_has_mount_access_is_vaults(rules, mount, expected):
    assert ACL([parse_policy("p", rules)]).has_mount_access(mount) is expected


# --- sys/internal/ui/resultant-acl ----------------------------------------------


def test_resultant_acl_of_a_narrow_token_is_vaults_shape(node):
    token = token_with(node, NARROW)
    result = node.request("GET", "sys/internal/ui/resultant-acl", token=token)
    assert result.status_code == 200, result.text
    data = result.json["data"]
    assert data["root"] is False
    assert data["glob_paths"]["secret/data/app/"] == {"capabilities": ["list", "read"]}
    assert data["exact_paths"]["secret/data/app/w"] == {"capabilities": ["create", "update"]}
    # from the default policy, as OpenBao shows it
    assert data["exact_paths"]["sys/internal/ui/resultant-acl"] == {"capabilities": ["read"]}


def test_resultant_acl_of_root_and_of_nobody(node):
    assert node.request("GET", "sys/internal/ui/resultant-acl").json["data"] == {"root": True}
    assert node.request("GET", "sys/internal/ui/resultant-acl", token="").status_code == 403


@pytest.mark.parametrize(
    ("path", "mount", "mount_type"),
    [("auth/token/x", "token/", "token"), ("auth/token", "token/", "token"), ("sys/x", "sys/", "system")],
)
def test_the_lookup_finds_auth_and_system_mounts(node, path, mount, mount_type):
    # the default policy grants rules under auth/token/ and sys/, so the narrow token sees both, as in OpenBao
    token = token_with(node, NARROW)
    result = node.request("GET", f"sys/internal/ui/mounts/{path}", token=token)
    assert result.status_code == 200, result.text
    assert (result.json["data"]["path"], result.json["data"]["type"]) == (mount, mount_type)


def test_an_unmounted_auth_path_is_the_preflight_403(node):
    result = node.request("GET", "sys/internal/ui/mounts/auth/nope/x")
    assert result.status_code == 403
    assert result.json == preflight("auth/nope/x/")
