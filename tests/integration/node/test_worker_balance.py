"""Long-lived connections spread evenly over a node's workers (server/balance.py;
issue 15, item 3).

With ``SO_REUSEPORT`` the kernel hashed connections to workers: with 16
connections over the workers one got none about one run in 25.  Now each
worker accepts only while it holds no more connections than the least loaded
one, so any set of connections opened together ends up within one of even.
The counts are read from the node itself (``strongroom_worker_connections``,
one series per worker pid), through one of the connections being counted.
"""

from __future__ import annotations

import re
import socket

import pytest

from tests.helpers.procs import wait_until


def response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length, read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the node closed the connection"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the node closed the connection"
        rest += chunk
    return head, rest[:length]


def get(sock: socket.socket, path: str, token: str = "") -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: node\r\nX-Vault-Token: {token}\r\n\r\n".encode())
    head, body = response(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    return body


def worker_connections(sock: socket.socket, token: str) -> dict[str, int]:
    """``{pid: open connections}`` of every worker, as the node reports them."""
    text = get(sock, "/v1/sys/metrics?format=prometheus", token).decode()
    return {
        pid: int(float(value))
        for pid, value in re.findall(r'^strongroom_worker_connections\{pid="(\d+)"\} (\S+)$', text, re.M)
    }


@pytest.fixture(params=[2, 4], ids=lambda workers: f"{workers}-workers")
def node(request, make_node):
    server = make_node(workers=request.param)
    init = server.init(1, 1)
    server.unseal(init["keys"])
    server.root_token = init["root_token"]
    server.workers = request.param
    return server


def test_long_lived_connections_spread_over_the_workers(node):
    # The observer stays open throughout (a connection is only uncounted once
    # its worker has seen it close): it reads the counts, and is counted.
    with socket.create_connection((node.host, node.port), timeout=10) as observer:
        wait_until(lambda: len(worker_connections(observer, node.root_token)) == node.workers, 30, "every worker")
        for connections in (16, 4, 16, 4):  # counts come back down, and the next set spreads again
            held = [socket.create_connection((node.host, node.port), timeout=10) for _ in range(connections)]
            try:
                for sock in held:
                    get(sock, "/v1/sys/health")  # each is accepted and served by some worker
                counts = worker_connections(observer, node.root_token)
                assert len(counts) == node.workers, counts
                assert sum(counts.values()) == connections + 1, counts
                assert max(counts.values()) - min(counts.values()) <= 1, (connections, counts)
            finally:
                for sock in held:
                    sock.close()
            wait_until(
                lambda: sum(worker_connections(observer, node.root_token).values()) == 1,
                10,
                "the closed connections uncounted",
            )
