"""Finding 6 (high, fails open): a request for a wrapped response was answered unwrapped.

A client that asks for response wrapping (``X-Vault-Wrap-TTL``) wants only a
single-use wrapping token to cross the wire or land in a CI log.  Wrapping now
exists (core/wrapping.py): the answer carries ``wrap_info`` and nothing of the
secret; the secret comes back once, to whoever unwraps first.  ``wrap_ttl`` in a
token-create body, which Vault ignores (answering in plain text), is refused.
"""

from __future__ import annotations

import json
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


def test_a_wrapped_read_answers_a_wrapping_token_and_no_secret(sec_node, secret):
    """Finding 6: ``GET secret/data/x`` with ``X-Vault-Wrap-TTL`` returned the
    secret in plain text with ``wrap_info: null``."""
    name, value = secret
    answer = sec_node.send("GET", f"/v1/secret/data/{name}", headers=WRAP)
    assert answer.status == 200, answer
    assert value not in answer.text
    body = answer.json()
    assert body["data"] is None and body["wrap_info"]["ttl"] == 60
    token = body["wrap_info"]["token"]
    first = sec_node.send("POST", "/v1/sys/wrapping/unwrap", body={"token": token}, token=sec_node.root_token)
    assert first.status == 200 and first.json()["data"]["data"] == {"password": value}
    second = sec_node.send("POST", "/v1/sys/wrapping/unwrap", body={"token": token}, token=sec_node.root_token)
    assert second.status == 400 and value not in second.text


def test_a_wrapped_token_create_hides_the_token(sec_node):
    """Finding 6: ``auth/token/create`` with ``X-Vault-Wrap-TTL`` returned the token in plain text."""
    body = {"policies": ["default"], "ttl": "10m"}
    answer = sec_node.send("POST", "/v1/auth/token/create", body=body, headers=WRAP)
    assert answer.status == 200, answer
    assert '"client_token"' not in answer.text
    wrap_info = answer.json()["wrap_info"]
    assert wrap_info["wrapped_accessor"] and wrap_info["creation_path"] == "auth/token/create"
    unwrapped = sec_node.send("POST", "/v1/sys/wrapping/unwrap", token=wrap_info["token"])
    assert unwrapped.status == 200 and unwrapped.json()["auth"]["accessor"] == wrap_info["wrapped_accessor"]


def test_wrap_ttl_in_a_token_create_body_is_refused_and_creates_no_token(sec_node):
    before = _accessors(sec_node)
    answer = sec_node.send("POST", "/v1/auth/token/create", body={"policies": ["default"], "wrap_ttl": "60s"})
    assert answer.status == 400, answer
    assert '"client_token"' not in answer.text
    assert _accessors(sec_node) == before


def test_bao_kv_get_with_wrap_ttl_prints_no_secret_and_bao_unwrap_round_trips(sec_node, secret, tmp_path):
    """Finding 6, as a user meets it: ``bao kv get -wrap-ttl=60s`` printed the secret."""
    name, value = secret
    home = str(tmp_path)
    wrapped = bao(
        sec_node.url, sec_node.root_token, "kv", "get", "-wrap-ttl=60s", "-format=json", f"secret/{name}", home=home
    )
    assert wrapped.returncode == 0, wrapped.stderr
    assert value not in wrapped.stdout and value not in wrapped.stderr
    token = json.loads(wrapped.stdout)["wrap_info"]["token"]
    assert token.startswith("hvs.")
    unwrapped = bao(sec_node.url, sec_node.root_token, "unwrap", "-format=json", token, home=home)
    assert unwrapped.returncode == 0, unwrapped.stderr
    assert json.loads(unwrapped.stdout)["data"]["data"] == {"password": value}
    again = bao(sec_node.url, sec_node.root_token, "unwrap", token, home=home)
    assert again.returncode != 0 and value not in again.stdout
