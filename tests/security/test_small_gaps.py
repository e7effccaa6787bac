"""Finding 7 (low): small leaks and gaps.

* a 413 named the storage key (the mount's UUID and the SHA-256 of the secret path);
* a client-sent ``X-Strongroom-Forwarded`` header went through HAProxy and broke
  that client's forwarded requests (the standby took it for its own loop guard);
* a node reached directly never timed out a client sending its headers one byte
  at a time (slowloris).
"""

from __future__ import annotations

import select
import socket
import time
import uuid

from tests.security.conftest import READ_HEADER_TIMEOUT
from tests.security.support import HEX64, host_port, send

CONSUL_VALUE_LIMIT = 512 * 1024


def test_an_oversized_secret_gets_a_413_that_names_no_storage_key(sec_node, unique):
    """Finding 7: the 413 for a value over Consul's 512 KiB limit showed the
    storage key: ``logical/<mount uuid>/blobs/<sha-256 of the path>/1``."""
    mount_uuid = sec_node.ok("GET", "sys/mounts").json()["secret/"]["uuid"]
    name = unique("big")
    # Over Consul's limit, under max_request_size and max_json_string_value_length (1 MiB).
    value = "x" * (CONSUL_VALUE_LIMIT + 100 * 1024)
    answer = sec_node.send("PUT", f"/v1/secret/data/{name}", body={"data": {"blob": value}}, timeout=30)
    assert answer.status == 413, answer
    message = " ".join(answer.errors())
    assert mount_uuid not in message, message
    assert not HEX64.search(message), message
    assert "logical/" not in message, message
    assert sec_node.send("GET", f"/v1/secret/data/{name}").status == 404


def test_a_client_cannot_forge_the_forwarding_mark_through_haproxy(sec_cluster):
    """Finding 7: ``X-Strongroom-Forwarded: evil`` from a client reached the
    standby, which then refused to forward that client's request (503)."""
    front = sec_cluster.front
    name, value = f"fwd-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    front.ok("PUT", "sys/policies/acl/fwd-reader", {"policy": 'path "secret/data/*" { capabilities = ["read"] }'})
    front.ok("PUT", f"secret/data/{name}", {"data": {"v": value}})
    # A limited-use token: a performance standby cannot count its use locally
    # (that is a storage write), so it forwards the read to the active node.
    token = front.ok("POST", "auth/token/create", {"policies": ["fwd-reader"], "num_uses": 100, "ttl": "10m"}).json()[
        "auth"
    ]["client_token"]
    standby_names = {n.config_path.stem for n in sec_cluster.nodes.standbys()}
    assert standby_names

    def reads(headers: dict) -> list[tuple[int, str, str]]:
        seen = []
        for _ in range(8):
            answer = front.send("GET", f"/v1/secret/data/{name}", token=token, headers=headers)
            served_by = answer.headers.get("x-strongroom-route", "").split("/")[-1]
            seen.append((answer.status, served_by, answer.text[:200]))
            assert answer.status != 200 or answer.json()["data"]["data"] == {"v": value}
        return seen

    honest = reads({})
    assert all(status == 200 for status, _, _ in honest), honest
    assert any(server in standby_names for _, server, _ in honest), f"no read reached a standby: {honest}"

    forged = reads({"X-Strongroom-Forwarded": "evil"})
    assert any(server in standby_names for _, server, _ in forged), f"no read reached a standby: {forged}"
    assert all(status == 200 for status, _, _ in forged), forged


def test_a_node_closes_a_connection_whose_headers_trickle_in(sec_node):
    """Finding 7 (slowloris): a client sending one header byte every 300 ms was
    never timed out by a node reached directly; now the node closes it within
    ``http_read_header_timeout`` (1 s here) + 2 s, and answers others meanwhile."""
    host, port = host_port(sec_node.url)
    deadline_after = READ_HEADER_TIMEOUT + 2.0
    trickle = b"X-Slow: " + b"a" * 1000
    slow = socket.create_connection((host, port), timeout=5)
    closed_after = None
    others: list[tuple[int, float]] = []
    try:
        started = time.monotonic()
        slow.sendall(b"GET /v1/sys/health HTTP/1.1\r\n")
        for byte in trickle:
            elapsed = time.monotonic() - started
            if elapsed > deadline_after:
                break
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                closed_after = elapsed
                break
            readable, _, _ = select.select([slow], [], [], 0.3)
            if readable:
                # Closed (b"") or answered (408/400, then closed): either way the node gave up on it.
                try:
                    slow.recv(65536)
                except OSError:
                    pass
                closed_after = time.monotonic() - started
                break
            answer = send(sec_node.url, "GET", "/v1/sys/health", timeout=2)
            others.append((answer.status, answer.elapsed))
    finally:
        slow.close()
    assert closed_after is not None, f"the connection was still open after {deadline_after:.1f} s"
    assert closed_after <= deadline_after
    assert all(status == 200 and elapsed < 1.0 for status, elapsed in others), others
