"""A node's TLS listener under the same deadlines as a plain one, and a clean
stop with TLS clients connected (a real node with a certificate of a test CA)."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from tests.helpers.pki import CertificateAuthority
from tests.helpers.procs import StrongroomServerWithListener, free_port

HEADER_TIMEOUT = 1.0
SLACK = 0.8


@pytest.fixture
def tls_node(tmp_path):
    ca = CertificateAuthority(tmp_path / "ca")
    cert, key = ca.issue("node", ["127.0.0.1", "localhost"])
    server = StrongroomServerWithListener(
        tmp_path / "node",
        None,
        free_port(),
        workers=1,
        node_id="tls-listener",
        storage='storage "inmem" {}\n',
        tls=(str(cert), str(key)),
        listener_options={"http_read_header_timeout": f"{HEADER_TIMEOUT:g}s", "http_read_timeout": "2s"},
    )
    server.verify = str(ca.ca_file)
    with server:
        yield server


def test_a_client_that_never_starts_the_handshake_is_hung_up_on(tls_node):
    """The handshake is part of the first request's header time: a client
    that connects and sends nothing cannot hold a TLS connection for good."""
    with socket.create_connection((tls_node.host, tls_node.port), timeout=10) as silent:
        started = time.monotonic()
        assert silent.recv(1024) == b""
        took = time.monotonic() - started
    assert HEADER_TIMEOUT - 0.1 <= took <= HEADER_TIMEOUT + SLACK, took
    assert requests.get(tls_node.url + "/v1/sys/seal-status", verify=tls_node.verify, timeout=5).status_code == 200


def test_plain_http_on_the_tls_port_is_refused_without_a_traceback(tls_node):
    with socket.create_connection((tls_node.host, tls_node.port), timeout=10) as plain:
        plain.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: node\r\n\r\n")
        try:
            while plain.recv(1024):
                pass  # a TLS alert at most, then the end
        except ConnectionResetError:
            pass  # closed with the request unread: the kernel resets
    assert "Traceback" not in tls_node.log_path.read_text()


def test_sigterm_with_an_idle_tls_connection_stops_cleanly(tls_node):
    """The worker hangs up on kept-alive TLS connections between requests
    (it cannot peek into a TLS stream as into a plain one) and exits normally."""
    session = requests.Session()
    assert session.get(tls_node.url + "/v1/sys/seal-status", verify=tls_node.verify, timeout=5).status_code == 200
    started = time.monotonic()
    tls_node.stop()
    assert time.monotonic() - started < 5.0
    log = tls_node.log_path.read_text()
    assert "Traceback" not in log and "exited with code" not in log, log[-2000:]
    session.close()
