"""Talking HTTP to Consul: the hot-path transport and the error translation.

``Transport`` sends KV reads and transactions over plain sockets, answers
parsed by ``httptools`` (a pool of kept-alive connections, shared by threads
or greenlets);
sessions, checks and watches use py-consul.  ``consul_errors`` and
``error_for_status`` are the one place where py-consul, requests, urllib3,
http.client and socket errors become ``StorageUnavailable``,
``RequestTooLarge`` or ``InvalidRequest``.  Messages carry status codes and
Consul's own error text (capped), never values.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import select
import socket
import ssl
import urllib.parse
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import consul
import httptools
import requests
import requests.adapters
import urllib3.exceptions

from strongroom.errors import InvalidRequest, RequestTooLarge, StorageUnavailable

_STATUS_PREFIX = re.compile(r"^(\d{3}) ")
#: Idle Consul connections a ``Transport`` keeps open for reuse.
MAX_IDLE = 64
#: Vault's ``tls_min_version`` values (go-secure-stdlib's ``tlsutil.TLSLookup``)
#: as Python names the TLS versions; Vault's default is ``tls12``.
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "tls10": ssl.TLSVersion.TLSv1,
    "tls11": ssl.TLSVersion.TLSv1_1,
    "tls12": ssl.TLSVersion.TLSv1_2,
    "tls13": ssl.TLSVersion.TLSv1_3,
}
DEFAULT_TLS_MIN_VERSION = TLS_VERSIONS["tls12"]


def raw_response(response):
    """py-consul callback that hands back the response untouched, so the caller
    sees status, headers and body (py-consul's own callbacks hide the 409 body)."""
    return response


def error_for_status(code: int, body: str, what: str) -> Exception:
    """The Strongroom error for a non-2xx Consul answer to ``what``."""
    # Consul's error bodies name keys and limits, never values; cap them anyway
    # so an unexpected body cannot flood logs or client responses.
    # Keys are quoted in them, and a key names a mount's UUID and a secret's
    # path or its hash: those are redacted, as they reach the client.
    detail = redact_keys(" ".join((body or "").split()))[:200]
    if code == 413:
        return RequestTooLarge(f"consul rejected {what} as too large: {detail}")
    if code in (401, 403):
        return StorageUnavailable(
            f"consul denied {what} (HTTP {code}): the Consul ACL token lacks permission "
            "for the storage prefix or sessions"
        )
    if code == 400:
        return InvalidRequest(f"consul rejected {what}: {detail}")
    if code >= 500:
        return StorageUnavailable(f"consul failed {what} (HTTP {code}): {detail}")
    return StorageUnavailable(f"consul answered {what} with HTTP {code}")


_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')


def redact_keys(text: str) -> str:
    """``text`` (an error from Consul) with every quoted string, a storage key in
    Consul's messages, replaced by ``"..."``: messages reach clients."""
    return _QUOTED.sub('"..."', text)


@contextlib.contextmanager
def consul_errors(address: str, what: str) -> Iterator[None]:
    """Translate everything py-consul and the HTTP stack raise into Strongroom errors.

    The only place (with ``error_for_status``) where third-party exceptions are
    caught; ``storage/consul_session.py`` uses it too.  ``address`` is the base
    URI (no token); ``what`` names the operation for the message.
    """
    try:
        yield
    except consul.ACLPermissionDenied:
        raise error_for_status(403, "", what) from None
    except consul.ACLDisabled:
        raise error_for_status(401, "", what) from None
    except consul.ConsulException as exc:
        # py-consul folds status and body into the message ("503 No cluster
        # leader"); the body is not re-chained because a garbled 200 body (the
        # "Failed to decode JSON" case) could hold values.
        text = str(exc)
        match = _STATUS_PREFIX.match(text)
        if match is None:
            raise StorageUnavailable(f"consul at {address} returned an unreadable answer to {what}") from None
        raise error_for_status(int(match.group(1)), text[4:], what) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        raise StorageUnavailable(f"consul at {address} unreachable during {what} ({type(exc).__name__})") from exc


class ConsulAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter for py-consul's session: its HTTPS connections never
    negotiate a TLS version below ``minimum_version`` (``tls_min_version``).

    ``Transport`` reads ``minimum_version`` from here, so both paths to Consul
    hold to the one floor the client was configured with."""

    __attrs__ = [*requests.adapters.HTTPAdapter.__attrs__, "minimum_version"]

    def __init__(self, minimum_version: ssl.TLSVersion = DEFAULT_TLS_MIN_VERSION, **kwargs):
        self.minimum_version = minimum_version
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=requests.adapters.DEFAULT_POOLBLOCK, **pool_kwargs):
        """urllib3 builds each connection's SSL context itself; ``ssl_minimum_version`` sets its floor."""
        pool_kwargs["ssl_minimum_version"] = self.minimum_version
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def configure_session(
    client: consul.Consul, connections: int, minimum_version: ssl.TLSVersion = DEFAULT_TLS_MIN_VERSION
) -> None:
    """Let ``connections`` concurrent py-consul calls each keep a pooled HTTP
    connection, none of them below TLS ``minimum_version``.

    requests' default pool keeps 10 connections per host and discards the rest
    (with a warning each time), which defeats connection reuse under load.
    """
    session = getattr(client.http, "session", None)
    if isinstance(session, requests.Session):
        adapter = ConsulAdapter(minimum_version, pool_connections=4, pool_maxsize=connections)
        session.mount("http://", adapter)
        session.mount("https://", adapter)


def quiet_unverified_requests(host: str) -> None:
    """Silence urllib3's ``InsecureRequestWarning`` for requests to Consul at ``host``.

    With ``tls_skip_verify`` the operator chose not to verify Consul's
    certificate; urllib3 would print the warning on every py-consul request
    (session renewals, watches) into the node's output.  Requests to any other
    host keep the warning.
    """
    name = re.escape(host.strip("[]"))
    warnings.filterwarnings(
        "ignore",
        message=rf"Unverified HTTPS request is being made to host '\[?{name}\]?'",
        category=urllib3.exceptions.InsecureRequestWarning,
    )


def consul_key(prefix: str, key: str) -> str:
    """The Consul key of storage ``key`` under ``prefix`` (the storage ``path``)."""
    if key.startswith("/"):
        raise InvalidRequest(f"storage key {key!r} must not start with '/'")
    return prefix + key


def parse_address(address: str, scheme: str | None) -> tuple[str, str, int]:
    """(scheme, host, port) from ``host:port``, ``host`` or ``scheme://host:port``."""
    text = address.strip()
    parts = urllib.parse.urlsplit(text if "//" in text else "//" + text)
    found = parts.scheme or None
    if found and scheme and found != scheme:
        raise ValueError(f"consul address {address!r} says {found!r} but scheme is {scheme!r}")
    final = found or scheme or "http"
    if final not in ("http", "https"):
        raise ValueError(f"consul scheme must be 'http' or 'https', not {final!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"consul address {address!r} has an invalid port") from None
    if not parts.hostname:
        raise ValueError(f"consul address {address!r} has no host")
    # py-consul pastes the host into its URLs verbatim, so IPv6 keeps its brackets.
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return final, host, port or (8501 if final == "https" else 8500)


class Answer(NamedTuple):
    """Consul's answer to one ``Transport`` request."""

    status: int
    #: ``X-Consul-Index``, 0 when absent.
    index: int
    body: bytes
    #: Consul (1.13 and later) left out entries the token may not read.
    acl_filtered: bool = False


class Transport:
    """Plain HTTP/1.1 straight to Consul for the hot path (KV reads and transactions).

    requests (under py-consul) costs more CPU per call than Consul takes to
    answer one, and even http.client spends most of a call parsing headers
    with the email package: a KV read cost 246 µs of CPU through urllib3, 137
    through http.client, 26 with one ``sendall`` per request and the answer
    parsed by ``httptools`` (llhttp, the parser Node.js uses); libcurl would
    add 10 MiB to every worker.  Connections are kept alive in a pool and
    replaced when Consul closed them.  It sends the same requests as py-consul
    would, with the same token and TLS settings (the minimum TLS version is the
    one ``configure_session`` gave py-consul's session).  Sessions, checks and
    watches stay on py-consul."""

    def __init__(self, client: consul.Consul, timeout: float = 10.0):
        scheme, _, rest = client.http.base_uri.partition("://")
        parts = urllib.parse.urlsplit("//" + rest)
        self._host, self._port = parts.hostname, parts.port
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_line = f"Host: {host}:{self._port}\r\n"
        self._context = None
        if scheme == "https":
            self._context = _tls_context(
                getattr(client.http, "verify", True), getattr(client.http, "cert", None), _minimum_version(client)
            )
        self._timeout = timeout
        self._client = client
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
        if self._client.dc:
            params = [*params, ("dc", self._client.dc)]
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        token = self._client.token
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

    def __init__(self):
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


def _minimum_version(client: consul.Consul) -> ssl.TLSVersion:
    """The TLS floor of ``client``'s session (``configure_session``); Vault's default otherwise."""
    session = getattr(client.http, "session", None)
    if isinstance(session, requests.Session):
        adapter = session.get_adapter(client.http.base_uri)
        if isinstance(adapter, ConsulAdapter):
            return adapter.minimum_version
    return DEFAULT_TLS_MIN_VERSION


def _tls_context(
    verify: bool | str, cert: str | tuple[str, str] | None, minimum_version: ssl.TLSVersion = DEFAULT_TLS_MIN_VERSION
) -> ssl.SSLContext:
    """The TLS settings py-consul hands requests, as an ``ssl.SSLContext``.

    py-consul keeps ``verify`` and ``cert`` on its HTTP client and passes them
    with every request; its requests session keeps requests' defaults (verify
    with the system CAs, no client certificate), so they must be read here, not
    from the session.  ``verify`` as in requests: False, True (system CAs), or
    the path of a CA bundle file or of a directory of CA certificates;
    ``minimum_version`` is ``tls_min_version``."""
    if isinstance(verify, str):
        where = {"capath": verify} if os.path.isdir(verify) else {"cafile": verify}
        context = ssl.create_default_context(**where)
    else:
        context = ssl.create_default_context()
    context.minimum_version = minimum_version
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(*(cert if isinstance(cert, tuple) else (cert,)))
    return context


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
