"""Bad requests over plain HTTP: Vault's status codes and ``{"errors": [...]}``
envelope, never a 5xx, never a partial write."""

from __future__ import annotations

import json
import uuid

import hvac
import pytest
import requests

from tests.compat.support import MAX_REQUEST_SIZE, read_kv2, wait_active
from tests.helpers.procs import StrongroomServer, free_port, wait_until


@pytest.fixture
def kv2(vault, unique) -> str:
    mount = unique("bad")
    vault.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    return mount


def _request(compat_node, method: str, path: str, token: str | None = "root", **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    token = compat_node.root_token if token == "root" else token
    if token:
        headers["X-Vault-Token"] = token
    return requests.request(method, f"{compat_node.url}/v1/{path}", headers=headers, timeout=15, **kwargs)


def _errors(response: requests.Response) -> list:
    body = response.json()
    assert set(body) == {"errors"} and isinstance(body["errors"], list), body
    return body["errors"]


@pytest.mark.parametrize("body", [b"{not json", b'{"data": ', b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_json_is_400(compat_node, kv2, body):
    response = _request(compat_node, "POST", f"{kv2}/data/x", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert _errors(response)
    with pytest.raises(hvac.exceptions.InvalidPath):
        read_kv2(compat_node.client(), "x", kv2)


def test_oversized_body_is_413_and_writes_nothing(compat_node, kv2):
    big = json.dumps({"data": {"blob": "x" * (MAX_REQUEST_SIZE + 1)}})
    response = _request(compat_node, "POST", f"{kv2}/data/big", data=big)
    assert response.status_code == 413
    assert _errors(response)

    def chunks():  # no Content-Length: the limit must hold while reading
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192].encode()

    response = _request(compat_node, "POST", f"{kv2}/data/big", data=chunks())
    assert response.status_code == 413
    with pytest.raises(hvac.exceptions.InvalidPath):
        read_kv2(compat_node.client(), "big", kv2)

    fits = json.dumps({"data": {"blob": "y" * (MAX_REQUEST_SIZE // 2)}})
    assert _request(compat_node, "POST", f"{kv2}/data/fits", data=fits).status_code == 200


def test_chunked_body_is_read(compat_node, kv2):
    """A body sent with Transfer-Encoding: chunked (no Content-Length) is a body."""
    pieces = [b'{"data": ', b'{"user": "u", ', b'"password": "p"}}']
    response = _request(
        compat_node, "POST", f"{kv2}/data/chunked", data=iter(pieces), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert read_kv2(compat_node.client(), "chunked", kv2) == {"user": "u", "password": "p"}


def test_unknown_paths_are_404(compat_node):
    for path in ("no-such-mount/x", "sys/no-such-endpoint"):
        response = _request(compat_node, "GET", path)
        assert response.status_code == 404, path
        assert _errors(response)


def test_wrong_method_is_405(compat_node):
    response = _request(compat_node, "PUT", "sys/seal-status", json={})
    assert response.status_code == 405
    assert "errors" in response.json()


def test_token_problems_are_403(compat_node, vault, kv2):
    vault.secrets.kv.v2.create_or_update_secret("t", secret={"a": "b"}, mount_point=kv2)
    expiring = vault.auth.token.create(policies=["default"], ttl="1s")["auth"]["client_token"]
    wait_until(
        lambda: _request(compat_node, "GET", "auth/token/lookup-self", token=expiring).status_code == 403,
        15.0,
        "a 1s token to expire",
        interval=0.2,
    )
    for token in (None, "not-a-token", expiring):
        response = _request(compat_node, "GET", f"{kv2}/data/t", token=token)
        assert response.status_code == 403, token
        assert _errors(response) == ["permission denied"]
    bearer = _request(
        compat_node, "GET", f"{kv2}/data/t", token=None, headers={"Authorization": f"Bearer {compat_node.root_token}"}
    )
    assert bearer.status_code == 200


def test_secret_over_consul_value_limit_is_refused_cleanly(consul_agent, tmp_path):
    """DESIGN.md: Consul stores at most 512 KiB per value; a larger secret (within
    the default 32 MiB request limit) gets a clear 413, or is chunked and
    reads back whole; never a 5xx and never a half-written version."""
    prefix = f"compat-big-{uuid.uuid4().hex[:8]}/"
    node = StrongroomServer(
        tmp_path / "big-node", consul_agent.address, free_port(), workers=1, prefix=prefix, node_id="big"
    )
    try:
        node.start()
        init = node.init(shares=1, threshold=1)
        node.unseal(init["keys"])
        client = hvac.Client(url=node.url, token=init["root_token"], timeout=30)
        wait_active(node.url)
        client.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
        blob = "z" * (600 * 1024)
        response = node.api("POST", "kv/data/huge", token=init["root_token"], json={"data": {"blob": blob}})
        assert response.status_code in (200, 413), response.text[:300]
        if response.status_code == 413:
            assert response.json()["errors"]
            with pytest.raises(hvac.exceptions.InvalidPath):
                client.secrets.kv.v2.read_secret_metadata("huge", mount_point="kv")
        else:
            assert read_kv2(client, "huge", "kv") == {"blob": blob}
    finally:
        node.stop()
        consul_agent.client().kv.delete(prefix, recurse=True)
