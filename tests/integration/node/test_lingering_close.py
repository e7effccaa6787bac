"""A body refused before it is read is still answered (server/linger.py; issue 15, item 6).

A client that sends its whole body before reading (Python's urllib) used to
get a connection reset instead of the node's 413: the worker closed the
connection with the rest of the body unread.  Now the worker shuts its write
side down and discards what still arrives, within ``LingerLimits`` (5 s, 2 s
idle, 64 MiB, 32 lingering connections per worker), then closes.

The node is a real one (Consul storage, two workers, node core), also behind
the real HAProxy; the bounds are checked on a one-worker node so the
connections that count against a worker's cap all land on the same worker.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from strongroom.server.linger import DRAIN_LIMIT, LingerLimits
from tests.helpers.procs import HAProxyProcess, StrongroomServer, free_port, wait_until

BIG = 33 * 1024 * 1024  # over the default max_request_size (32 MiB)
LIMITS = LingerLimits()
# A node's start waits for its workers to boot: generous, the machine may be shared.
START_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def node(consul_agent, tmp_path_factory):
    server = StrongroomServer(
        tmp_path_factory.mktemp("linger"),
        consul_agent.address,
        free_port(),
        workers=2,
        prefix=f"sr-linger-{free_port()}/",
        node_id="linger",
    )
    server.start(timeout=START_TIMEOUT)
    try:
        init = server.init(1, 1)
        server.unseal(init["keys"])
        server.root_token = init["root_token"]
        wait_until(lambda: server.api("GET", "sys/health").status_code == 200, 30, "the node active")
        mount = server.api(
            "POST", "sys/mounts/secret", server.root_token, json={"type": "kv", "options": {"version": "2"}}
        )
        assert mount.status_code == 204, mount.text
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def single_worker(tmp_path_factory):
    server = StrongroomServer(
        tmp_path_factory.mktemp("linger1"),
        None,
        free_port(),
        workers=1,
        node_id="linger1",
        storage='storage "inmem" {}\n',
    )
    server.start(timeout=START_TIMEOUT)
    try:
        init = server.init(1, 1)
        server.unseal(init["keys"])
        yield server
    finally:
        server.stop()


def post_with_urllib(url: str, size: int, token: str | None = None) -> tuple[int, dict]:
    """POST ``size`` bytes with urllib (the whole body is sent before the answer is read)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Vault-Token"] = token
    request = urllib.request.Request(url, data=b"{" + b" " * (size - 2) + b"}", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_urllib_gets_the_413_of_a_body_over_max_request_size(node):
    status, body = post_with_urllib(f"{node.url}/v1/secret/data/big", BIG, node.root_token)
    assert status == 413
    assert body == {"errors": ["http: request body too large (limit 33554432 bytes)"]}


def test_urllib_gets_the_413_of_an_unauthenticated_body_over_its_limit(node):
    status, body = post_with_urllib(f"{node.url}/v1/sys/unseal", BIG)
    assert status == 413
    assert body["errors"] and "too large" in body["errors"][0]


def test_urllib_gets_the_413_through_haproxy(node):
    with HAProxyProcess([{"name": "linger", "address": f"{node.host}:{node.port}"}]) as haproxy:
        haproxy.wait_servers_up("strongroom_write", {"linger"})
        status, body = post_with_urllib(f"{haproxy.url}/v1/secret/data/big", BIG, node.root_token)
    assert status == 413
    assert body == {"errors": ["http: request body too large (limit 33554432 bytes)"]}


def head_and_body(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length, read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection ended before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, rest[:length]


def post_head(path: str, length: int, token: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: node\r\nX-Vault-Token: {token}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_kept_alive_client_is_told_the_connection_closes_and_gets_a_clean_end(node):
    with socket.create_connection((node.host, node.port), timeout=10) as sock:
        sock.sendall(post_head("/v1/secret/data/big", BIG, node.root_token))
        head, body = head_and_body(sock)
        assert head.startswith(b"HTTP/1.1 413") and b"Connection: close" in head, head
        assert json.loads(body)["errors"]
        sock.sendall(b" " * BIG)  # the node discards it: sendall returns
        assert sock.recv(1) == b""  # then a clean end, not a reset


def test_a_small_unread_body_keeps_the_connection(node):
    """A body refused (a bad token) but within ``DRAIN_LIMIT`` is read after the
    answer, and the connection serves the next request."""
    connection = http.client.HTTPConnection(node.host, node.port, timeout=10)
    try:
        connection.request("POST", "/v1/secret/data/x", body=b" " * DRAIN_LIMIT, headers={"X-Vault-Token": "bad"})
        refused = connection.getresponse()
        assert refused.status == 403 and refused.getheader("Connection") != "close"
        refused.read()
        first = connection.sock
        connection.request("GET", "/v1/sys/health")
        assert connection.getresponse().status == 200
        assert connection.sock is first  # the same connection
    finally:
        connection.close()


def send_until_cut(sock: socket.socket, pause: float, chunk: int) -> tuple[int, float]:
    """Send ``chunk`` bytes every ``pause`` seconds until the node cuts the
    connection; (bytes sent, seconds)."""
    started, sent = time.monotonic(), 0
    data = b" " * chunk
    try:
        while time.monotonic() - started < 60:
            sock.sendall(data)
            sent += chunk
            if pause:
                time.sleep(pause)
    except OSError:
        return sent, time.monotonic() - started
    raise AssertionError("the node was still reading 60 s later")


def answered_and_lingering(node) -> socket.socket:
    """A connection whose request (a body far over the limit) was answered and
    which now lingers: the answer is read, the end of the stream is there."""
    sock = socket.create_connection((node.host, node.port), timeout=30)
    sock.sendall(post_head("/v1/sys/unseal", 1 << 40))
    head, _ = head_and_body(sock)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert sock.recv(1) == b""  # the node shut its side down
    return sock


def test_a_client_sending_forever_is_cut_off_by_size(single_worker):
    with answered_and_lingering(single_worker) as sock:
        sent, _ = send_until_cut(sock, 0, 1024 * 1024)
    # What the node discarded, plus what fits in the two sockets' buffers.
    assert sent <= LIMITS.size + 16 * 1024 * 1024, sent


def test_a_slow_client_is_cut_off_by_time(single_worker):
    """1 KiB every 0.2 s: never idle for ``LIMITS.idle``, far below the size:
    the node stops at ``LIMITS.time``."""
    with answered_and_lingering(single_worker) as sock:
        _, seconds = send_until_cut(sock, 0.2, 1024)
    assert LIMITS.time - 1 <= seconds <= LIMITS.time + 2, seconds


def test_a_silent_client_is_cut_off_when_idle(single_worker):
    """Silent for longer than ``LIMITS.idle`` (well within ``LIMITS.time``):
    the node has closed, so what the client sends next is answered with a
    reset.  (Any probe sent earlier would itself end the silence.)"""
    with answered_and_lingering(single_worker) as sock:
        sock.sendall(b" " * 1024)
        time.sleep(LIMITS.idle + 0.5)  # the bound under test, not a guess at a duration
        wait_until(lambda: _send_fails(sock), 2.0, "a reset from the node that stopped lingering")


def _send_fails(sock: socket.socket) -> bool:
    try:
        sock.sendall(b" ")
    except OSError:
        return True
    return False


def test_lingering_connections_are_capped_per_worker(single_worker):
    """Past ``LIMITS.connections`` lingering at once, a worker closes at once."""
    stop = threading.Event()
    held = [answered_and_lingering(single_worker) for _ in range(LIMITS.connections)]

    def keep_sending(sock: socket.socket) -> None:
        while not stop.is_set():
            try:
                sock.sendall(b" " * 256)
            except OSError:
                return
            stop.wait(0.1)

    feeders = [threading.Thread(target=keep_sending, args=(sock,), daemon=True) for sock in held]
    for feeder in feeders:
        feeder.start()
    try:
        with answered_and_lingering(single_worker) as extra:
            _, seconds = send_until_cut(extra, 0.05, 256)
        assert seconds < LIMITS.idle, f"the connection past the cap lingered {seconds:.1f}s"
        assert all(feeder.is_alive() for feeder in feeders), "a capped connection was closed early"
    finally:
        stop.set()
        for sock in held:
            sock.close()


@pytest.mark.parametrize(
    ("extra_headers", "status", "message"),
    [
        (b"X-Big: " + b"a" * 9000 + b"\r\n", 431, "request headers too large"),
        (b"".join(b"X-H%d: v\r\n" % i for i in range(120)), 431, "request headers too large"),
        (b"Not a header\r\n", 400, "malformed request: invalid header"),
    ],
    ids=["field-too-large", "too-many-fields", "malformed"],
)
def test_refused_headers_are_answered_in_vaults_envelope_while_the_body_is_sent(node, extra_headers, status, message):
    """gunicorn refuses these before the app runs; the client sending its
    8 MiB body meanwhile reads the answer and a clean end, no reset."""
    size = 8 * 1024 * 1024
    with socket.create_connection((node.host, node.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/sys/unseal HTTP/1.1\r\nHost: node\r\nContent-Length: %d\r\n" % size + extra_headers + b"\r\n"
        )
        sender = threading.Thread(target=sock.sendall, args=(b" " * size,), daemon=True)
        sender.start()
        head, body = head_and_body(sock)
        assert sock.recv(1) == b""
        sender.join(30)
        assert not sender.is_alive()
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert b"Connection: close" in head
    assert json.loads(body) == {"errors": [message]}
