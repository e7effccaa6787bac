"""A real node holds clients to its listener's read deadlines (server/worker.py):
``http_read_header_timeout`` and ``http_read_timeout`` (Vault's names), and a
malformed chunked body is a 400 in Vault's envelope, never gunicorn's 500 and
traceback (issue 10, findings 4 and 7).

The node runs one gevent worker on in-memory storage, so the connection that
keeps being served during a slow client's trickle is served by the same worker.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time

import pytest
import requests

from tests.helpers.procs import StrongroomServerWithListener, free_port

HEADER_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
TRICKLE = 0.3  # seconds between the slow client's bytes
SLACK = 0.8


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    server = StrongroomServerWithListener(
        tmp_path_factory.mktemp("timeouts"),
        None,
        free_port(),
        workers=1,
        node_id="timeouts",
        storage='storage "inmem" {}\n',
        listener_options={
            "http_read_header_timeout": f"{HEADER_TIMEOUT:g}s",
            "http_read_timeout": f"{READ_TIMEOUT:g}s",
        },
    )
    with server:
        init = server.init(1, 1)
        server.unseal(init["keys"])
        server.root_token = init["root_token"]
        assert (
            server.api(
                "POST", "sys/mounts/secret", token=server.root_token, json={"type": "kv", "options": {"version": "2"}}
            ).status_code
            == 204
        )
        yield server


def connect(node) -> socket.socket:
    return socket.create_connection((node.host, node.port), timeout=10)


def trickle_until_closed(sock: socket.socket, data: bytes, limit: float) -> tuple[float, bytes]:
    """Send ``data`` a byte every TRICKLE seconds until the node answers or
    closes; returns (seconds from the first byte, what the node sent)."""
    started = time.monotonic()
    received = b""
    for byte in data:
        if time.monotonic() - started > limit:
            break
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        readable, _, _ = select.select([sock], [], [], TRICKLE)
        if readable:
            break
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return time.monotonic() - started, received


class Prober:
    """Requests on another kept-alive connection, all through the trickle: each
    must be answered, and quickly."""

    def __init__(self, node):
        self.node, self.latencies, self.failures = node, [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        session = requests.Session()
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                answer = session.get(f"{self.node.url}/v1/sys/seal-status", timeout=5)
                if answer.status_code != 200:
                    self.failures.append(answer.status_code)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.monotonic() - started)
            self.stop.wait(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def test_a_client_trickling_its_headers_is_cut_at_the_header_timeout(node):
    request = b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: node\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    with Prober(node) as prober, connect(node) as slow:
        took, answer = trickle_until_closed(slow, request, limit=10)
    # held no longer than the header timeout (and not cut before it)
    assert HEADER_TIMEOUT - 0.1 <= took <= HEADER_TIMEOUT + SLACK, took
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["errors"]
    assert prober.failures == [] and len(prober.latencies) >= 5
    assert max(prober.latencies) < 0.5, prober.latencies


def test_a_client_that_connects_and_says_nothing_is_hung_up_on(node):
    with connect(node) as silent:
        started = time.monotonic()
        assert silent.recv(1024) == b""  # closed, nothing sent: no request, no answer
        took = time.monotonic() - started
    assert HEADER_TIMEOUT - 0.1 <= took <= HEADER_TIMEOUT + SLACK, took


def test_a_client_trickling_its_body_is_cut_at_the_read_timeout(node):
    body = json.dumps({"key": "x" * 100}).encode()
    head = (
        f"PUT /v1/sys/unseal HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with Prober(node) as prober, connect(node) as slow:
        slow.sendall(head)
        took, answer = trickle_until_closed(slow, body, limit=10)
    assert READ_TIMEOUT - 0.1 <= took <= READ_TIMEOUT + SLACK, took
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert "http_read_timeout" in json.loads(rest.split(b"\r\n\r\n", 1)[1])["errors"][0]
    assert prober.failures == [] and max(prober.latencies) < 0.5, prober.latencies


def test_idle_time_between_requests_does_not_count_towards_the_next_headers(node):
    """A kept-alive connection (HAProxy's pool) idle for longer than the header
    timeout still carries its next request, as it did before the deadlines."""
    with connect(node) as kept:
        request = b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: node\r\n\r\n"
        for _ in range(2):
            kept.sendall(request)
            assert kept.recv(65536).startswith(b"HTTP/1.1 200 ")
            # the stimulus: idle longer than the header timeout, on the same connection
            time.sleep(HEADER_TIMEOUT + 0.8)
        kept.sendall(request)
        assert kept.recv(65536).startswith(b"HTTP/1.1 200 ")


def _chunked(node, method: str, path: str, body: bytes) -> bytes:
    with connect(node) as sock:
        sock.sendall(
            (
                f"{method} {path} HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
                f"X-Vault-Token: {node.root_token}\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
            + body
        )
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received  # the node closed the connection after its answer
            received += chunk


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # not a hex size
        b"-5\r\n{}\r\n0\r\n\r\n",  # negative
        b"2\r\n{}XX0\r\n\r\n",  # chunk without its CRLF terminator
        b"ffffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",  # absurdly large
    ],
)
@pytest.mark.parametrize("path", ["/v1/sys/unseal", "/v1/secret/data/x"])
def test_a_malformed_chunked_body_is_a_400_and_no_traceback(node, body, path):
    answer = _chunked(node, "PUT", path, body)
    status = answer.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1  # one answer, then the connection closes
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["errors"]
    log = node.log()
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]


def test_a_malformed_chunked_body_the_app_did_not_read_ends_the_connection_quietly(node):
    answer = _chunked(node, "GET", "/v1/sys/seal-status", b"zz\r\n{}\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 ") == 1, answer[:300]
    log = node.log()
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]
