"""Bad input gets a clear 4xx in Vault's envelope, never a 5xx, never a partial write."""

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.helpers.unit_node import Node


def test_malformed_json_is_400(unsealed):
    unsealed.request("POST", "sys/mounts/kv", json={"type": "kv"})
    before = unsealed.snapshot()
    for body in (b"{bad", b"[1, 2]", b'"string"', b"\xff\xfe"):
        result = unsealed.request("PUT", "kv/x", body=body)
        assert result.status_code == 400, body
        assert result.json["errors"][0].startswith("failed to decode JSON input")
    assert unsealed.snapshot() == before


def test_oversized_body_is_413_and_writes_nothing():
    node = Node(max_request_size=1024)
    node.init(1, 1)
    node.unseal()
    node.request("POST", "sys/mounts/kv", json={"type": "kv"})
    before = node.snapshot()
    result = node.request("PUT", "kv/big", body=json.dumps({"v": "x" * 2048}))
    assert result.status_code == 413 and result.json["errors"]
    assert node.snapshot() == before


def test_wrong_method_is_405(unsealed):
    result = unsealed.client.simulate_request(method="OPTIONS", path="/v1/sys/mounts",
                                              headers={"X-Vault-Token": unsealed.root_token})
    assert 400 <= result.status_code < 500


def test_list_verb_and_list_query_are_the_same(unsealed):
    unsealed.request("POST", "sys/mounts/kv", json={"type": "kv"})
    unsealed.request("PUT", "kv/a/b", json={"x": "1"})
    unsealed.request("PUT", "kv/c", json={"x": "1"})
    verb = unsealed.request("LIST", "kv/")
    query = unsealed.request("GET", "kv/", params={"list": "true"})
    assert verb.status_code == query.status_code == 200
    assert verb.json["data"]["keys"] == query.json["data"]["keys"] == ["a/", "c"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
paths = st.sampled_from([
    "sys/mounts/kv", "sys/mounts/new", "sys/mounts/kv/tune", "sys/policy/p", "sys/policies/acl/p", "sys/audit/f",
    "sys/audit-hash/f", "sys/capabilities-self", "sys/rotate", "sys/seal", "kv/a", "kv2/data/a", "kv2/metadata/a",
    "kv2/config", "kv2/delete/a", "kv2/undelete/a", "kv2/destroy/a", "auth/token/create", "auth/token/lookup",
    "auth/token/renew-self", "auth/token/revoke", "sys/init", "sys/unseal", "nowhere/x", "sys/health",
]) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz/._-%", max_size=30)
methods = st.sampled_from(["GET", "PUT", "POST", "PATCH", "DELETE", "LIST"])
bodies = json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=methods, path=paths.filter(lambda p: "seal" not in p), body=bodies, as_root=st.booleans())
def test_fuzz_never_5xx_and_rejections_change_nothing(fuzz_node, method, path, body, as_root):
    before = fuzz_node.snapshot()
    token = fuzz_node.root_token if as_root else fuzz_node.reader_token
    result = fuzz_node.request(method, path, body=body, token=token)
    assert result.status_code < 500, (method, path, body, result.text)
    if result.status_code >= 400:
        # Vault's only error without an envelope: a KV v2 read of a deleted version (404 with its metadata).
        assert isinstance(result.json.get("errors"), list) or (result.status_code == 404 and "data" in result.json)
        assert fuzz_node.snapshot() == before


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def fuzz_node():
    """A node with a KV v1 and v2 mount, its root token and a read-only token."""
    node = Node()
    node.init(1, 1)
    node.unseal()
    node.request("POST", "sys/mounts/kv", json={"type": "kv"})
    node.request("POST", "sys/mounts/kv2", json={"type": "kv-v2"})
    node.request("PUT", "sys/policy/fuzz", json={"policy": 'path "kv/*" { capabilities = ["read", "list"] }\n'
                                                           'path "kv2/*" { capabilities = ["read", "list"] }'})
    node.reader_token = node.request("POST", "auth/token/create", json={"policies": ["fuzz"]}).json["auth"]["client_token"]
    return node
