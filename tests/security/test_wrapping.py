"""Finding 6 (high, fails open): a request for a wrapped response was answered unwrapped.

A client that asks for response wrapping (``X-Vault-Wrap-TTL``, or ``wrap_ttl``
on token create) wants only a single-use wrapping token to cross the wire or
land in a CI log.  Until wrapping exists, such a request is refused with 400:
no secret in the answer, no token created.
"""

from __future__ import annotations

import uuid

import pytest

from tests.security.support import bao

WRAP = {"X-Vault-Wrap-TTL": "60s"}


@pytest.fixture
def secret(sec_node, unique) -> tuple[str, str]:
    """A KV v2 secret at ``secret/<name>`` and its value."""
    name, value = unique("wrapped"), f"s3cr3t-{uuid.uuid4().hex}"
    sec_node.ok("PUT", f"secret/data/{name}", {"data": {"password": value}})
    return name, value


def _accessors(sec_node) -> set[str]:
    return set(sec_node.ok("LIST", "auth/token/accessors").json()["data"]["keys"])


def test_a_wrapped_read_is_refused_not_answered_in_plain_text(sec_node, secret):
    """Finding 6: ``GET secret/data/x`` with ``X-Vault-Wrap-TTL`` returned the
    secret in plain text with ``wrap_info: null``."""
    name, value = secret
    answer = sec_node.send("GET", f"/v1/secret/data/{name}", headers=WRAP)
    assert answer.status == 400, answer
    assert answer.errors()
    assert value not in answer.text


@pytest.mark.parametrize("how", ["header", "body"])
def test_a_wrapped_token_create_is_refused_and_creates_no_token(sec_node, how):
    """Finding 6: ``auth/token/create`` with ``X-Vault-Wrap-TTL`` (or ``wrap_ttl``
    in the body) created the token and returned it in plain text."""
    before = _accessors(sec_node)
    body = {"policies": ["default"], "ttl": "10m"}
    if how == "body":
        answer = sec_node.send("POST", "/v1/auth/token/create", body={**body, "wrap_ttl": "60s"})
    else:
        answer = sec_node.send("POST", "/v1/auth/token/create", body=body, headers=WRAP)
    assert answer.status == 400, answer
    assert answer.errors()
    assert '"client_token"' not in answer.text
    assert _accessors(sec_node) == before


def test_bao_kv_get_with_wrap_ttl_fails_and_prints_no_secret(sec_node, secret, tmp_path):
    """Finding 6, as a user meets it: ``bao kv get -wrap-ttl=60s`` printed the secret."""
    name, value = secret
    result = bao(sec_node.url, sec_node.root_token, "kv", "get", "-wrap-ttl=60s", f"secret/{name}", home=str(tmp_path))
    assert result.returncode != 0, result.stdout
    assert value not in result.stdout and value not in result.stderr
    # The same command without wrapping works: the failure above is the refusal, not a broken CLI.
    plain = bao(sec_node.url, sec_node.root_token, "kv", "get", f"secret/{name}", home=str(tmp_path))
    assert plain.returncode == 0 and value in plain.stdout, plain.stderr
