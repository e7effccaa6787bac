"""``GET /v1/<path>?help=1``: Vault's path-help, generated from the path tables.

https://developer.hashicorp.com/vault/api-docs#help

Any valid token may read the help of any path (Vault's ACL fast-paths the
help operation, sudo included); the body is ``{"help", "see_also",
"openapi"}`` at the top level; an unmounted path is the router's 404.
Checked against OpenBao 2.7.2.
"""

from __future__ import annotations

import pytest

NARROW = 'path "secret/data/app/*" { capabilities = ["read"] }'


@pytest.fixture
def node(unsealed):
    body = {"type": "kv", "options": {"version": "2"}}
    assert unsealed.request("POST", "sys/mounts/secret", json=body).status_code == 204
    return unsealed


@pytest.fixture
def narrow(node) -> str:
    assert node.request("PUT", "sys/policies/acl/narrow", json={"policy": NARROW}).status_code == 204
    return node.request("POST", "auth/token/create", json={"policies": ["narrow"]}).json["auth"]["client_token"]


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("secret/data/x", "^data/(?P<path>.*)$"),
        ("secret/zzz", "^.*$"),
        ("sys/mounts", "^mounts/?$"),
        ("sys/seal", "^seal$"),
        ("auth/token/lookup-self", None),
    ],
)
def test_any_token_reads_the_help_of_any_path(node, narrow, path, route):
    result = node.request("GET", path + "?help=1", token=narrow)
    assert result.status_code == 200, result.text
    assert set(result.json) == {"help", "see_also", "openapi"}
    assert result.json["help"].startswith("Request:        ")
    if route is not None:
        assert f"Matching Route: {route}\n" in result.json["help"]
    assert result.json["openapi"]["openapi"].startswith("3.")


def test_help_of_an_unmounted_path_is_404(node, narrow):
    result = node.request("GET", "nope/x?help=1", token=narrow)
    assert result.status_code == 404
    assert result.json == {"errors": ['no handler for route "nope/x". route entry not found.']}


def test_help_needs_a_valid_token(node):
    assert node.request("GET", "secret/data/x?help=1", token="").status_code == 403


def test_help_writes_nothing(node):
    stored = node.snapshot()
    assert node.request("POST", "secret/data/x?help=1", json={"data": {"a": 1}}).status_code == 200
    assert node.snapshot() == stored
