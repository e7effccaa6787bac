"""The hot-path transport to Consul: KV reads and transactions over plain sockets.

``Transport`` sends requests over a pool of kept-alive connections (shared by
threads or greenlets) and parses the answers with ``httptools``; sessions,
checks and watches stay on py-consul (storage/consul_client.py).  It raises
``http.client`` and OS errors, which its callers translate with ``consul_errors``.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import urllib.parse
from typing import NamedTuple

import httptools

from strongroom.storage.consul_address import ConsulEndpoint
from strongroom.storage.consul_tls import tls_context

#: Idle Consul connections a ``Transport`` keeps open for reuse.
MAX_IDLE = 64


class Answer(NamedTuple):
    """Consul's answer to one ``Transport`` request."""

    status: int
    #: ``X-Consul-Index``, 0 when absent (not ``index``: that would hide ``tuple.index``).
    consul_index: int
    body: bytes
    #: Consul (1.13 and later) left out entries the token may not read.
    acl_filtered: bool = False


class Transport:
    """Plain HTTP/1.1 straight to Consul for the hot path (KV reads and transactions).

    requests (under py-consul) costs more CPU per call than Consul takes to
    answer one, and even http.client spends most of a call parsing headers
    with the email package; one ``sendall`` per request and the answer parsed
    by ``httptools`` (llhttp, the parser Node.js uses) cost a fraction of
    either, and libcurl would make every worker much larger (the figures are
    in bench/README.md, "Figures the code's comments rest on").  Connections
    are kept alive in a pool and replaced when Consul closed them.  It sends
    the same requests as py-consul would, with the endpoint's token,
    datacenter and TLS settings.  Sessions, checks and watches stay on py-consul."""

    def __init__(self, endpoint: ConsulEndpoint):
        self._host, self._port = endpoint.host.strip("[]"), endpoint.port
        self._host_line = f"Host: {endpoint.host}:{endpoint.port}\r\n"
        self._context = None
        if endpoint.scheme == "https":
            self._context = tls_context(endpoint.verify, endpoint.cert, endpoint.tls_min_version)
        self._timeout = endpoint.timeout
        self._endpoint = endpoint
        # Idle kept-alive connections, the most recently used last.  A request
        # takes one (or opens one) and gives it back when its answer was read
        # in full; a connection that failed is closed instead.  list.pop and
        # list.append are atomic, so threads and greenlets share it unlocked.
        self._idle: list[Connection] = []

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The SSL context of every connection to Consul over HTTPS (None over plain HTTP)."""
        return self._context

    def _connection(self) -> Connection:
        while self._idle:
            try:
                conn = self._idle.pop()
            except IndexError:
                break
            if not _closed_by_peer(conn.sock):
                return conn
            conn.close()
        sock = socket.create_connection((self._host, self._port), self._timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        return Connection(sock)

    def close(self) -> None:
        """Close the idle connections (one in use is closed by its own request's end)."""
        while self._idle:
            try:
                self._idle.pop().close()
            except IndexError:
                break

    def request(self, method: str, path: str, params: list[tuple[str, str]], body: bytes | None = None) -> Answer:
        """Send one request; raises ``http.client`` and OS errors (the connection is then dropped)."""
        if self._endpoint.datacenter:
            params = [*params, ("dc", self._endpoint.datacenter)]
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        token = self._endpoint.token
        head = f"{method} {url} HTTP/1.1\r\n{self._host_line}"
        if token:
            if not _TOKEN.fullmatch(token):
                raise ValueError("the Consul token holds characters an HTTP header cannot carry")
            head += f"X-Consul-Token: {token}\r\n"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        message = (head + "\r\n").encode("latin-1") + (body or b"")
        conn = self._connection()
        try:
            reply = conn.exchange(message)
        except BaseException:
            conn.close()
            raise
        if reply.reusable and len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.close()
        return Answer(reply.status, reply.index, b"".join(reply.body), reply.filtered)


#: What an HTTP header value may hold (visible ASCII and spaces), so a token cannot add headers.
_TOKEN = re.compile(r"[\x20-\x7e]*")
#: Bytes read from Consul at a time.
_RECV_BYTES = 65536


class Reply:
    """Consul's answer, as ``httptools`` parses it (its callbacks fill it in)."""

    __slots__ = ("status", "index", "filtered", "body", "complete", "messages", "closing", "reusable")

    def __init__(self) -> None:
        self.status = 0
        self.index = 0
        self.filtered = False
        self.body: list[bytes] = []
        self.complete = False
        self.messages = 0
        self.closing = False
        self.reusable = False

    def on_message_begin(self) -> None:
        self.messages += 1

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:  # a second message: only counted (see ``Connection.exchange``)
            return
        name = name.lower()
        if name == b"x-consul-index":
            self.index = int(value) if value.isdigit() else 0
        elif name == b"x-consul-results-filtered-by-acls":
            self.filtered = value.lower() == b"true"
        elif name == b"connection":
            self.closing = b"close" in value.lower()

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    """One kept-alive HTTP/1.1 connection to Consul: one request, one answer at a time."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def close(self) -> None:
        self.sock.close()

    def exchange(self, message: bytes) -> Reply:
        """Send ``message`` (a whole request) and read the answer to it."""
        self.sock.sendall(message)
        reply = Reply()
        parser = httptools.HttpResponseParser(reply)
        while not reply.complete:
            # A fresh buffer per read (trimmed to what came): one kept per
            # connection would hold 64 KiB for each of dozens of idle connections.
            data = self.sock.recv(_RECV_BYTES)
            if not data:
                raise http.client.RemoteDisconnected("consul closed the connection without a whole answer")
            try:
                parser.feed_data(data)
            except httptools.HttpParserError as exc:
                raise http.client.HTTPException(f"unreadable answer from consul ({type(exc).__name__})") from None
        reply.status = parser.get_status_code()
        # Kept alive unless Consul said otherwise (HTTP/1.1's default); bytes
        # past the answer (a second message) would be read as the next
        # request's answer, so such a connection is not used again either.
        reply.reusable = parser.get_http_version() == "1.1" and not reply.closing and reply.messages == 1
        return reply


def _closed_by_peer(sock: socket.socket) -> bool:
    """True when a kept-alive connection was closed by Consul (readable with nothing to say)."""
    if sock.fileno() < 0:
        return True
    if hasattr(sock, "getpeercert"):
        # TLS sockets refuse recv flags; poll the descriptor instead.
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        try:
            return bool(poller.poll(0))
        except OSError:
            return True
    # A non-blocking peek: nothing to read means alive; end of stream or stray
    # bytes mean the connection cannot carry another request.  (Cheaper than a
    # poll object, which gevent's select.poll makes costly.)
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)
    return True
