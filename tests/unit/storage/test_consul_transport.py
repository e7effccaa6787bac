"""The Consul transport's sockets: the check for a kept-alive connection
Consul has closed, and how an answer is framed on a connection.

Plain socket pairs stand for the two ends of a TCP connection: what is tested
is the socket level and HTTP/1.1 framing (answers cut anywhere, chunked,
closing, malformed), not anything Consul says; talking to Consul itself is
tested against a real agent in tests/integration/storage.
"""

from __future__ import annotations

import http.client
import socket
import threading

import consul
import pytest

from strongroom.storage.consul_client import endpoint_of
from strongroom.storage.consul_transport import Connection, Transport, _closed_by_peer


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    ours.settimeout(10.0)
    yield ours, theirs
    ours.close()
    theirs.close()


def test_an_open_quiet_connection_is_reusable(pair):
    ours, _ = pair
    assert not _closed_by_peer(ours)
    assert ours.gettimeout() == 10.0  # the check leaves the socket as it found it


def test_a_connection_the_peer_closed_is_not_reusable(pair):
    ours, theirs = pair
    theirs.close()
    assert _closed_by_peer(ours)
    assert ours.gettimeout() == 10.0


def test_stray_bytes_make_a_connection_unusable_and_stay_unread(pair):
    ours, theirs = pair
    theirs.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    assert _closed_by_peer(ours)
    assert ours.recv(8) == b"HTTP/1.1"  # peeked, not consumed


def test_a_closed_socket_is_not_reusable(pair):
    ours, _ = pair
    ours.close()
    assert _closed_by_peer(ours)


# -- framing an answer ----------------------------------------------------------------

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 42\r\n"
    b"X-Consul-Results-Filtered-By-Acls: true\r\nContent-Length: 7\r\n\r\n[1,2,3]"
)
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nX-Consul-Index: 7\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n4\r\n2,3]\r\n0\r\n\r\n"
)


def exchange(pair, answer: bytes, *, piecewise: bool = False, then_close: bool = False):
    """Send a request on ``ours``; ``theirs`` answers with ``answer`` (one byte
    at a time if ``piecewise``) and returns what it received."""
    ours, theirs = pair
    received = []

    def peer():
        received.append(theirs.recv(65536))
        if piecewise:
            for i in range(len(answer)):
                theirs.sendall(answer[i : i + 1])
        else:
            theirs.sendall(answer)
        if then_close:
            theirs.close()

    thread = threading.Thread(target=peer)
    thread.start()
    try:
        return Connection(ours).exchange(b"GET /v1/kv/k HTTP/1.1\r\nHost: x\r\n\r\n"), received
    finally:
        thread.join(10)


@pytest.mark.parametrize("piecewise", [False, True], ids=["whole", "a byte at a time"])
def test_an_answer_is_read_whole_wherever_it_is_cut(pair, piecewise):
    reply, received = exchange(pair, ANSWER, piecewise=piecewise)
    assert received == [b"GET /v1/kv/k HTTP/1.1\r\nHost: x\r\n\r\n"]
    assert (reply.status, reply.index, reply.filtered, b"".join(reply.body)) == (200, 42, True, b"[1,2,3]")
    assert reply.reusable


def test_a_chunked_answer_is_put_back_together(pair):
    reply, _ = exchange(pair, CHUNKED, piecewise=True)
    assert (reply.status, reply.index, reply.filtered, b"".join(reply.body)) == (200, 7, False, b"[1,2,3]")
    assert reply.reusable


@pytest.mark.parametrize(
    "answer",
    [
        ANSWER.replace(b"Content-Length", b"Connection: close\r\nContent-Length"),
        ANSWER.replace(b"HTTP/1.1", b"HTTP/1.0"),
        ANSWER + ANSWER,  # more than one answer to one request
    ],
    ids=["connection close", "HTTP/1.0", "a second answer"],
)
def test_a_connection_that_cannot_carry_another_request_is_not_kept(pair, answer):
    reply, _ = exchange(pair, answer)
    assert (reply.status, b"".join(reply.body)) == (200, b"[1,2,3]")
    assert not reply.reusable


def test_an_answer_cut_short_by_the_peer_is_an_error(pair):
    with pytest.raises(http.client.RemoteDisconnected):
        exchange(pair, ANSWER[:-3], then_close=True)


def test_a_malformed_answer_is_an_http_error(pair):
    with pytest.raises(http.client.HTTPException):
        exchange(pair, b"SPDY/9 banana\r\n\r\n")


def test_a_token_that_would_add_headers_is_refused_before_sending():
    client = consul.Consul(host="127.0.0.1", port=9, token="t\r\nX-Injected: 1")
    with pytest.raises(ValueError):
        Transport(endpoint_of(client)).request("GET", "/v1/kv/k", [])
