"""The worker's HTTP front (server/front.py) on real socket pairs: what reaches
the app of each request, exact request boundaries (pipelining, Vault's LIST),
bodies by length and by chunks, every refusal in Vault's envelope, and when a
connection is kept."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable

import pytest

from strongroom.errors import InvalidRequest
from strongroom.server.deadlines import ReadLimits
from strongroom.server.front import MAX_HEADER_FIELDS, MAX_REQUEST_LINE, Connection, base_environ
from strongroom.server.linger import DRAIN_LIMIT, Lingerer, LingerLimits
from strongroom.server.worker import CoalescingSocket


class App:
    """A WSGI app that records each request's environ and body, and answers
    with ``answer(environ)`` (status, body) after reading ``read`` bytes of the
    body (-1: all, None: none)."""

    def __init__(self, read: int | None = -1, answer: Callable[[dict], tuple[str, bytes]] | None = None):
        self.read = read
        self.answer = answer or (lambda environ: ("200 OK", b'{"ok":true}'))
        self.seen: list[tuple[dict, bytes | Exception]] = []

    def __call__(self, environ, start_response):
        body: bytes | Exception = b""
        if self.read is not None:
            try:
                body = environ["wsgi.input"].read(self.read)
            except InvalidRequest as exc:
                body = exc
        self.seen.append((dict(environ), body))
        if isinstance(body, Exception):
            status, data = "400 Bad Request", b'{"errors":["bad body"]}'
        else:
            status, data = self.answer(environ)
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def serve(app: App, requests: bytes, *, limits: ReadLimits | None = None) -> bytes:
    """Send ``requests`` on a fresh connection served by the front, then end
    the client's side; what the client read until the server closed."""
    ours, theirs = socket.socketpair()
    sock = CoalescingSocket(ours, limits or ReadLimits(header=2.0, request=2.0, idle=0.5))
    connection = Connection(
        sock,
        app,
        base_environ(("127.0.0.1", 8200), ("127.0.0.9", 5555), "http", True),
        lambda: True,
        Lingerer(LingerLimits(time=1.0, idle=0.3)),
    )

    def run() -> None:
        try:
            connection.serve()
        finally:
            sock.close()

    server = threading.Thread(target=run, daemon=True)
    server.start()
    sender = threading.Thread(target=theirs.sendall, args=(requests,), daemon=True)
    sender.start()
    sender.join(5)
    theirs.shutdown(socket.SHUT_WR)  # a lingering close then ends at once
    theirs.settimeout(5)
    received = bytearray()
    try:
        while chunk := theirs.recv(65536):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    server.join(5)
    theirs.close()
    return bytes(received)


def answers(raw: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """The responses in ``raw``: (status line, headers by lower-case name, body)."""
    found = []
    while raw:
        head, _, raw = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:])}
        if lines[0].split(" ")[1] == "100":
            found.append((lines[0], headers, b""))
            continue
        size = int(headers.get("content-length", "0"))
        found.append((lines[0], headers, raw[:size]))
        raw = raw[size:]
    return found


def test_what_reaches_the_app():
    app = App()
    raw = serve(
        app,
        b"GET /v1/sys/policies/acl/%2Fdeleg?list=true HTTP/1.1\r\nHost: node:8200\r\n"
        b"X-Vault-Token: s.abc  \r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n"
        b"X_Vault_Token: smuggled\r\nConnection: close\r\n\r\n",
    )
    (status, headers, body), *_ = answers(raw)
    assert status == "HTTP/1.1 200 OK" and body == b'{"ok":true}' and headers["connection"] == "close"
    environ, _ = app.seen[0]
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["PATH_INFO"] == "/v1/sys/policies/acl//deleg"  # decoded, as the ACL must judge it
    assert environ["RAW_URI"] == "/v1/sys/policies/acl/%2Fdeleg?list=true"
    assert environ["QUERY_STRING"] == "list=true"
    assert environ["HTTP_X_VAULT_TOKEN"] == "s.abc"  # the underscore spelling was dropped, not joined
    assert environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1,10.0.0.2"
    assert environ["HTTP_HOST"] == "node:8200"
    assert (environ["REMOTE_ADDR"], environ["SERVER_PORT"], environ["SERVER_PROTOCOL"]) == (
        "127.0.0.9",
        "8200",
        "HTTP/1.1",
    )


def test_pipelined_requests_keep_their_boundaries_and_vaults_list_method():
    chunked = b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n"
    app = App()
    raw = serve(
        app,
        b"POST /v1/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        b"PUT /v1/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked
        + b"LIST /v1/secret/metadata/ HTTP/1.1\r\n\r\n"
        b"GET /v1/c HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    assert [status for status, _, _ in answers(raw)] == ["HTTP/1.1 200 OK"] * 4
    assert [(environ["REQUEST_METHOD"], environ["PATH_INFO"], body) for environ, body in app.seen] == [
        ("POST", "/v1/a", b"hello"),
        ("PUT", "/v1/b", b"abcdefg"),
        ("LIST", "/v1/secret/metadata/", b""),
        ("GET", "/v1/c", b""),
    ]


@pytest.mark.parametrize(
    "body",
    [b"zz\r\nab\r\n0\r\n\r\n", b"2\r\nabXX0\r\n\r\n", b"2 \r\nab\r\n0\r\n\r\n", b"5\r\nab"],
    ids=["bad-size", "no-terminator", "space-in-size", "cut-short"],
)
def test_a_malformed_chunked_body_is_an_invalid_request_and_ends_the_connection(body):
    app = App()
    raw = serve(
        app, b"POST /v1/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"GET /v1/b HTTP/1.1\r\n\r\n"
    )
    (status, headers, _), *more = answers(raw)
    assert status == "HTTP/1.1 400 Bad Request" and headers["connection"] == "close" and not more
    assert isinstance(app.seen[0][1], InvalidRequest) and len(app.seen) == 1
    assert "zz" not in str(app.seen[0][1]) and "XX" not in str(app.seen[0][1])  # the client's bytes are not echoed


REFUSED = [
    (b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n", 414, "request line too long"),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "request headers too large"),
    (
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADER_FIELDS + 1)) + b"\r\n",
        431,
        "request headers too large",
    ),
    (b"GET / HTTP/1.1\r\nNot a header\r\n\r\n", 400, "malformed request: invalid header"),
    (b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "malformed request: obsolete header line folding"),
    (b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n", 400, "malformed request: invalid header"),
    (b"get / HTTP/1.1\r\n\r\n", 400, "malformed request: invalid method"),
    (b"GET / HTTP/1.2\r\n\r\n", 400, "malformed request: invalid HTTP version"),
    (b"GET / HTTP/2.0\r\n\r\n", 400, "malformed request: invalid HTTP version"),
    (b"GET /a b HTTP/1.1\r\n\r\n", 400, "malformed request: invalid request line"),
    (b"GET /\x01 HTTP/1.1\r\n\r\n", 400, "malformed request: invalid request line"),
    (b"GET / HTTP/1.1\nHost: a\n\n", 414, "request line too long"),  # no CRLF: never a complete line
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer coding"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported transfer coding"),
    (
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
        400,
        "malformed request: invalid header",
    ),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400, "malformed request: invalid header"),
    (b"POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\nabc", 400, "malformed request: invalid header"),
]


@pytest.mark.parametrize(("request_bytes", "status", "message"), REFUSED)
def test_refusals_are_answered_in_vaults_envelope_and_close(request_bytes, status, message):
    app = App()
    if status == 414 and b"\n\n" in request_bytes:
        request_bytes += b"x" * MAX_REQUEST_LINE
    raw = serve(app, request_bytes + b"GET /v1/next HTTP/1.1\r\n\r\n")
    (line, headers, body), *more = answers(raw)
    assert line.startswith(f"HTTP/1.1 {status} "), line
    assert headers["connection"] == "close" and headers["content-type"] == "application/json"
    assert json.loads(body) == {"errors": [message]}
    assert not app.seen and not more  # the app never ran, the next request was not served


def test_a_small_unread_body_is_drained_and_the_connection_kept():
    app = App(read=None)
    raw = serve(app, b"POST /v1/a HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789GET /v1/b HTTP/1.1\r\n\r\n")
    assert [(environ["PATH_INFO"]) for environ, _ in app.seen] == ["/v1/a", "/v1/b"]
    assert all("connection" not in headers for _, headers, _ in answers(raw))


def test_a_large_unread_body_closes_the_connection():
    app = App(read=None)
    size = DRAIN_LIMIT + 1
    ours, theirs = socket.socketpair()
    sock = CoalescingSocket(ours, ReadLimits(2.0, 2.0, 0.5))
    lingerer = Lingerer(LingerLimits(time=1.0, idle=0.5))
    connection = Connection(
        sock, app, base_environ(("127.0.0.1", 1), ("127.0.0.1", 2), "http", False), lambda: True, lingerer
    )
    server = threading.Thread(target=lambda: (connection.serve(), sock.close()), daemon=True)
    server.start()
    theirs.sendall(b"POST /v1/a HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % size)
    theirs.settimeout(5)
    head = theirs.recv(65536)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in head
    theirs.sendall(b" " * size)  # discarded by the lingering close: no reset
    assert theirs.recv(10) == b""
    server.join(5)
    theirs.close()


def open_connection(app, alive: Callable[[], bool] = lambda: True) -> tuple[socket.socket, threading.Thread]:
    """A connection served by the front in a thread; the client's end (5 s timeout) and the thread."""
    ours, theirs = socket.socketpair()
    sock = CoalescingSocket(ours, ReadLimits(2.0, 2.0, 0.5))
    connection = Connection(sock, app, base_environ(("h", 1), ("c", 2), "http", False), alive, Lingerer())
    server = threading.Thread(target=lambda: (connection.serve(), sock.close()), daemon=True)
    server.start()
    theirs.settimeout(5)
    return theirs, server


def test_expect_100_continue_is_answered_when_the_app_reads_and_never_otherwise():
    theirs, server = open_connection(App())
    theirs.sendall(b"PUT /v1/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert theirs.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    theirs.sendall(b"ok")
    assert theirs.recv(1000).startswith(b"HTTP/1.1 200 OK")
    theirs.close()
    server.join(5)

    refusing = App(read=None, answer=lambda environ: ("413 Payload Too Large", b"{}"))
    raw = serve(refusing, b"PUT /v1/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    [(status, headers, _)] = answers(raw)
    assert status.startswith("HTTP/1.1 413") and headers["connection"] == "close"  # no 100 was sent


def test_head_http_1_0_and_keep_alive():
    app = App(answer=lambda environ: ("200 OK", b"12345"))
    raw = serve(
        app,
        b"HEAD /v1/a HTTP/1.1\r\n\r\nGET /v1/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /v1/c HTTP/1.0\r\n\r\n",
    )
    # HEAD: the length the GET would have, no body; HTTP/1.0 kept only when asked
    head, get10, last = raw.split(b"\r\n\r\n", 2)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 5" in head
    assert get10.startswith(b"HTTP/1.0 200 OK") and b"Connection: keep-alive" in get10
    assert last.startswith(b"12345HTTP/1.0 200 OK") and b"Connection: close" in last and last.endswith(b"12345")
    assert [environ["PATH_INFO"] for environ, _ in app.seen] == ["/v1/a", "/v1/b", "/v1/c"]


def test_an_app_that_fails_gets_a_500_in_vaults_envelope_and_no_traceback(caplog):
    def failing(environ, start_response):
        raise RuntimeError("secret detail")

    raw = serve(failing, b"GET /v1/auth/token/lookup/s.hidden HTTP/1.1\r\n\r\nGET /v1/b HTTP/1.1\r\n\r\n")  # type: ignore[arg-type]
    [(status, headers, body)] = answers(raw)
    assert status == "HTTP/1.1 500 Internal Server Error" and headers["connection"] == "close"
    assert json.loads(body) == {"errors": ["internal error"]}  # the client learns nothing of the failure
    assert "Error handling a GET request" in caplog.text and "s.hidden" not in caplog.text


def test_a_stopping_worker_closes_after_the_answer():
    theirs, server = open_connection(App(), alive=lambda: False)
    theirs.sendall(b"GET /v1/a HTTP/1.1\r\n\r\n")
    answer = theirs.recv(1000)
    assert b"Connection: close" in answer and theirs.recv(10) == b""
    theirs.close()
    server.join(5)
