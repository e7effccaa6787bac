"""Finding 4 (medium): hostile values got a 5xx, or were stored.

Each case below, sent with the root token, is a 4xx in Vault's
``{"errors": [...]}`` envelope, prints no traceback in the node's output and
stores nothing.
"""

from __future__ import annotations

import pytest

from tests.security.conftest import SecNode, Target
from tests.security.support import bao, exchange, status_of


@pytest.fixture
def clean_log(sec_node: SecNode):
    """Fails the test (in its teardown) if the node printed a new traceback while it ran."""
    before = sec_node.log().count("Traceback")
    yield
    after = sec_node.log()
    new = after.count("Traceback") - before
    assert new == 0, f"{new} new traceback(s) in the node's output; its end:\n{after[-3000:]}"


def _refused(answer, status: int = 400) -> None:
    assert answer.status == status, answer
    assert answer.errors()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(r'"\ud800"', id="lone-surrogate"),
        pytest.param("NaN", id="NaN"),
        pytest.param("Infinity", id="Infinity"),
        pytest.param("-Infinity", id="minus-Infinity"),
    ],
)
def test_a_value_json_cannot_carry_is_refused_and_not_stored(sec_node, clean_log, unique, value):
    """Finding 4: a lone surrogate gave 500; NaN and Infinity were stored and served
    back as invalid JSON (then ``bao kv get`` failed for everyone reading it)."""
    name = unique("hostile")
    _refused(sec_node.send("PUT", f"/v1/secret/data/{name}", body=f'{{"data": {{"a": {value}}}}}'))
    assert sec_node.send("GET", f"/v1/secret/data/{name}").status == 404
    _refused(sec_node.send("PUT", f"/v1/kv1/{name}", body=f'{{"a": {value}}}'))
    assert sec_node.send("GET", f"/v1/kv1/{name}").status == 404


@pytest.mark.parametrize("field", ["default_lease_ttl", "max_lease_ttl"])
def test_a_mount_tune_ttl_of_1e30_is_refused(sec_node, clean_log, unique, tmp_path, field):
    """Finding 4: ``default_lease_ttl = 1e30`` on a mount tune was accepted, and
    then ``bao secrets list`` broke."""
    mount = unique("tuned")
    sec_node.ok("POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": "1"}})
    tuned_before = sec_node.ok("GET", f"sys/mounts/{mount}/tune").json()[field]
    listed_before = sec_node.ok("GET", "sys/mounts").json()[f"{mount}/"]["config"][field]
    _refused(sec_node.send("POST", f"/v1/sys/mounts/{mount}/tune", body=f'{{"{field}": 1e30}}'))
    assert sec_node.ok("GET", f"sys/mounts/{mount}/tune").json()[field] == tuned_before
    assert sec_node.ok("GET", "sys/mounts").json()[f"{mount}/"]["config"][field] == listed_before
    listed = bao(sec_node.url, sec_node.root_token, "secrets", "list", home=str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert f"{mount}/" in listed.stdout


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("1e30", id="1e30"),
        pytest.param("1" + "0" * 30, id="10**30"),
        pytest.param('"1' + "0" * 30 + '"', id="10**30-as-text"),
    ],
)
@pytest.mark.parametrize("endpoint", ["config", "metadata/app"])
def test_a_kv_max_versions_of_1e30_is_refused(sec_node, clean_log, unique, endpoint, number):
    """Finding 4: KV v2 ``max_versions = 1e30`` was accepted (mount config and key
    metadata); Vault's fields are int64, so 10**30 however spelled is out of range."""
    mount = unique("kv2")
    sec_node.ok("POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}})
    sec_node.ok("POST", f"{mount}/data/app", {"data": {"v": "1"}})
    before = sec_node.ok("GET", f"{mount}/{endpoint}").json()["data"]["max_versions"]
    _refused(sec_node.send("POST", f"/v1/{mount}/{endpoint}", body=f'{{"max_versions": {number}}}'))
    assert sec_node.ok("GET", f"{mount}/{endpoint}").json()["data"]["max_versions"] == before


def test_reading_version_minus_one_is_refused(sec_node, clean_log, unique):
    """Finding 4: ``GET secret/data/x?version=-1`` read the latest version."""
    name = unique("versioned")
    sec_node.ok("PUT", f"secret/data/{name}", {"data": {"v": "1"}})
    sec_node.ok("PUT", f"secret/data/{name}", {"data": {"v": "2"}})
    answer = sec_node.send("GET", f"/v1/secret/data/{name}?version=-1")
    _refused(answer)
    assert '"v": "2"' not in answer.text and '"v":"2"' not in answer.text


@pytest.mark.parametrize("spelling", ["//", "/./"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_kv1_paths_with_empty_or_dot_segments_are_refused(sec_node, clean_log, unique, spelling, method):
    """Finding 4: KV v1 paths with ``//`` or ``/./`` answered 503 "consul answered
    a read with HTTP 301"."""
    name = unique("kv1")
    body = {"a": "b"} if method == "PUT" else None
    _refused(sec_node.send(method, f"/v1/kv1{spelling}{name}", body=body))
    assert sec_node.send("GET", f"/v1/kv1/{name}").status == 404


def test_a_malformed_chunked_body_is_a_400_or_a_closed_connection(sec_node, clean_log, unique):
    """Finding 4: a malformed chunked body straight to a node got 500 with a gunicorn traceback."""
    name = unique("chunked")
    request = (
        f"PUT /v1/secret/data/{name} HTTP/1.1\r\nHost: strongroom\r\nX-Vault-Token: {sec_node.root_token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    ).encode()
    received, closed = exchange(sec_node.url, request, timeout=6, until_answered=True)
    if received:
        assert status_of(received) == 400, received[:300]
    else:
        assert closed, "the node neither answered nor closed the connection within 6 s"
    assert sec_node.send("GET", f"/v1/secret/data/{name}").status == 404


def test_a_1xx_health_code_is_refused(target: Target):
    """Finding 4: ``sys/health?activecode=100`` sent ``100 Continue`` as the final
    answer (HAProxy turned it into a 502)."""
    request = b"GET /v1/sys/health?activecode=100 HTTP/1.1\r\nHost: strongroom\r\nConnection: close\r\n\r\n"
    received, _ = exchange(target.url, request, timeout=5)
    assert status_of(received) == 400, received[:300]
    assert b" 100 Continue" not in received
