"""The HTTP/1.1 front of a node's worker: requests read with llhttp, answered in one send.

gunicorn runs a node's processes (master, workers, signals, graceful stop),
but its request handling is pure Python: its parser, its WSGI environ and its
response writer cost more of a worker than the Falcon app did on cached KV
reads (bench/README.md, "Where the time goes now").  This module serves one
client connection in its greenlet instead: ``Connection.serve`` reads each
request's head, has llhttp (``httptools``, Node.js's parser, in C) validate
it, calls the WSGI app and sends the answer's head and body in one write.

The rules are gunicorn's, kept so that nothing a client could do before is
treated differently now (and the security tier's HTTP tests are the gate):

* a request line of at most ``MAX_REQUEST_LINE`` bytes (414), at most
  ``MAX_HEADER_FIELDS`` header fields of at most ``MAX_FIELD_SIZE`` bytes
  (431), only HTTP/1.0 and 1.1, methods as gunicorn permits them (upper-case
  tokens of 3 to 20 characters; ``LIST`` is Vault's);
* llhttp's strict mode refuses what could smuggle a request past a proxy
  (Content-Length beside Transfer-Encoding, a duplicate Content-Length,
  obsolete line folding, bare LF line ends, control characters in values); a
  transfer coding other than ``chunked`` is a 501;
* a header field whose name has an underscore is dropped (gunicorn's
  ``header_map = "drop"``: ``X_Vault_Token`` would otherwise land on the same
  WSGI key as ``X-Vault-Token``); repeated fields are joined with ``,``;
* every refusal is answered in Vault's envelope (``server/refusals.py``) and
  the connection closed with a lingering close (``server/linger.py``).

llhttp does not know Vault's ``LIST`` method, and reads on from one request
into the next: so this module finds each head's end itself, hands llhttp the
head alone (``GET`` standing in for a method it does not know), and reads
bodies itself (``RequestBody``: a length, or chunks decoded by the same rules
as gunicorn's).  Each request's boundaries are therefore exact, pipelined
requests included.

The connection's read deadlines (``server/deadlines.py``) are kept by the
socket it reads from (``worker.CoalescingSocket``); what the app leaves of a
body is read after the answer up to ``DRAIN_LIMIT`` bytes, past that the
answer says ``Connection: close`` and the rest is discarded by the lingering
close.  ``Expect: 100-continue`` is answered when the app first reads the body
(as Go's server does), so a body refused by its Content-Length is never sent.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import httptools
from gevent import sleep as gevent_sleep

from strongroom.server.deadlines import BodyTimedOut, MalformedBody, RequestTimedOut
from strongroom.server.linger import DRAIN_LIMIT, Lingerer
from strongroom.server.refusals import Refused, refused_by_parser

if TYPE_CHECKING:
    from strongroom.server.worker import CoalescingSocket

log = logging.getLogger("gunicorn.error")

#: gunicorn's limits (``limit_request_line``, ``limit_request_fields``, ``limit_request_field_size``).
MAX_REQUEST_LINE = 4094
MAX_HEADER_FIELDS = 100
MAX_FIELD_SIZE = 8190
#: The longest head that can be within the limits above.
MAX_HEAD = MAX_REQUEST_LINE + 2 + MAX_HEADER_FIELDS * (MAX_FIELD_SIZE + 2) + 2
#: Bytes asked of the socket at a time.
RECV_SIZE = 64 * 1024
#: A chunk-size line (with its extensions) and the trailer section, at most.
MAX_CHUNK_LINE = 4096
MAX_TRAILERS = MAX_FIELD_SIZE * 4

# gunicorn's rule (permit_unconventional_http_method off): a token of 3 to 20
# characters without lower-case letters or '#'.
_METHOD = re.compile(rb"[A-Z0-9!$%&'*+.^_`|~-]{3,20}")
# Methods llhttp parses under their own name; any other is handed to it as GET.
_LLHTTP_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"})
_VERSIONS = {b"HTTP/1.1": "HTTP/1.1", b"HTTP/1.0": "HTTP/1.0"}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_BODY_STATUS = ("1", "204", "304")
_INTERNAL_ERROR = Refused(500, "Internal Server Error", "internal error")

# WSGI environ keys by header name as received (a bounded memo: names are the client's).
_KEYS: dict[bytes, str | None] = {b"Content-Length": "CONTENT_LENGTH", b"Content-Type": "CONTENT_TYPE"}
_KEYS_MAX = 512


def _environ_key(name: bytes) -> str | None:
    """The WSGI environ key of header ``name`` not yet in ``_KEYS``; None for a name to drop."""
    upper = name.decode("latin-1").upper()
    key: str | None
    if "_" in upper:
        key = None
    elif upper in ("CONTENT-LENGTH", "CONTENT-TYPE"):
        key = upper.replace("-", "_")
    else:
        key = "HTTP_" + upper.replace("-", "_")
    if len(_KEYS) < _KEYS_MAX:
        _KEYS[name] = key
    return key


class _Head:
    """What llhttp reports of one request's head (its ``protocol`` object)."""

    __slots__ = ("environ", "fields", "chunked", "length", "expect", "upgrade", "connection")

    def __init__(self, environ: dict[str, Any]):
        self.environ = environ
        self.fields = 0
        self.chunked = False
        self.length = 0
        self.expect = False
        self.upgrade = False
        #: The Connection header's options, lower case.
        self.connection = ""

    def keeps_alive(self, version: str) -> bool:
        """Whether the client asks to keep the connection after this request."""
        options = {option.strip(" \t") for option in self.connection.split(",")} if self.connection else ()
        if version == "HTTP/1.1":
            return "close" not in options
        return "keep-alive" in options

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields += 1
        if self.fields > MAX_HEADER_FIELDS or len(name) + len(value) + 2 > MAX_FIELD_SIZE:
            raise Refused(431, "Request Header Fields Too Large", "request headers too large")
        key = _KEYS.get(name, "")
        if key == "":
            key = _environ_key(name)
        if key is None:
            return
        text = value.rstrip(b" \t").decode("latin-1")
        environ = self.environ
        if key in environ:
            environ[key] = environ[key] + "," + text
        else:
            environ[key] = text
        if key == "HTTP_TRANSFER_ENCODING":
            # gunicorn's rule: chunked alone (llhttp allows others before it).
            if text.strip(" \t").lower() != "chunked":
                raise Refused(501, "Not Implemented", "unsupported transfer coding")
            self.chunked = True
        elif key == "CONTENT_LENGTH":
            self.length = int(text)  # digits only: llhttp refused anything else
        elif key == "HTTP_CONNECTION":
            self.connection = environ[key].lower()
        elif key == "HTTP_EXPECT":
            self.expect = text.lower() == "100-continue"

    def on_headers_complete(self) -> None:
        pass


class RequestBody:
    """A request's ``wsgi.input``: its body as the client sends it, read from
    the connection only as the app asks (within the request's read deadline).

    A failure to read it whole (late, cut short, a malformed chunk) is an
    ``InvalidRequest`` (a 400 from the app, never a traceback) and marks the
    connection unusable for another request."""

    __slots__ = ("_conn", "_left", "_chunked", "_trailers", "_continue", "done", "failed")

    def __init__(self, conn: Connection, length: int, chunked: bool, expect: bool):
        self._conn = conn
        self._chunked = chunked
        #: Bytes left of a length body, or of the current chunk (-1: a chunk-size line is next).
        self._left = -1 if chunked else length
        self._trailers = False
        self._continue = expect
        self.done = not chunked and length == 0
        self.failed = False

    @property
    def awaits_continue(self) -> bool:
        """The client waits for a ``100 Continue`` it was not sent (the app never read)."""
        return self._continue

    def unread(self) -> int | None:
        """Bytes of the body not read yet, None if unknown (chunked)."""
        if self.done:
            return 0
        return None if self._chunked else self._left

    def read(self, size: int | None = -1) -> bytes:
        if self.done or size == 0:
            return b""
        parts: list[bytes] = []
        wanted = -1 if size is None or size < 0 else size
        try:
            while not self.done and wanted != 0:
                part = self._chunk_data(wanted) if self._chunked else self._length_data(wanted)
                if part:
                    parts.append(part)
                    if wanted > 0:
                        wanted -= len(part)
        except (BodyTimedOut, MalformedBody):
            self.failed = True
            raise
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        # Only for WSGI's sake: the app reads bodies with ``read``.
        line = bytearray()
        while size is None or size < 0 or len(line) < size:
            byte = self.read(1)
            if not byte:
                break
            line += byte
            if byte == b"\n":
                break
        return bytes(line)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> RequestBody:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _more(self) -> bytearray:
        """The connection's buffer, with at least one byte more than before."""
        conn = self._conn
        if self._continue:
            self._continue = False
            if not conn.buffer:
                conn.sock.sendall(_CONTINUE)
                conn.sock.flush()
        if not conn.receive():
            self.failed = True
            raise MalformedBody("request body ended before it was complete")
        return conn.buffer

    def _take(self, wanted: int) -> bytes:
        """Up to ``wanted`` (-1: any number of) bytes of what is left of the
        body or of the current chunk, at least one."""
        buffer = self._conn.buffer or self._more()
        take = self._left if wanted < 0 else min(wanted, self._left)
        data = bytes(buffer[:take])
        del buffer[: len(data)]
        self._left -= len(data)
        return data

    def _length_data(self, wanted: int) -> bytes:
        data = self._take(wanted)
        if not self._left:
            self.done = True
        return data

    def _line(self, limit: int) -> bytes:
        """The next CRLF-ended line of the chunk framing, without its CRLF."""
        conn = self._conn
        start = 0
        while (end := conn.buffer.find(b"\r\n", start)) < 0:
            if len(conn.buffer) > limit:
                raise MalformedBody("malformed request body: invalid chunked encoding")
            start = max(0, len(conn.buffer) - 1)
            self._more()
        line = bytes(conn.buffer[:end])
        del conn.buffer[: end + 2]
        return line

    def _chunk_data(self, wanted: int) -> bytes:
        if self._trailers:
            self._read_trailers()
            return b""
        if self._left < 0:
            size_field = self._line(MAX_CHUNK_LINE)
            size, semicolon, _extensions = size_field.partition(b";")
            if semicolon:
                size = size.rstrip(b" \t")
            if not size or len(size) > 16 or not _HEX.issuperset(size):
                raise MalformedBody("malformed request body: invalid chunked encoding")
            self._left = int(size, 16)
            if not self._left:
                self._trailers = True
                self._read_trailers()
                return b""
        data = self._take(wanted)
        if not self._left:
            if self._line(2):
                raise MalformedBody("malformed request body: invalid chunked encoding")
            self._left = -1
        return data

    def _read_trailers(self) -> None:
        """Read (and ignore) the trailer section up to its empty line."""
        total = 0
        while line := self._line(MAX_FIELD_SIZE):
            total += len(line) + 2
            if total > MAX_TRAILERS or b":" not in line[1:] or line[:1] in b" \t":
                raise MalformedBody("malformed request body: invalid chunked encoding")
        self._trailers = False
        self.done = True


class Connection:
    """One client connection: requests read, answered and kept alive in turn.

    ``app``: the WSGI app; ``base``: the environ keys every request of the
    connection shares; ``alive``: whether the worker still runs (a stopping
    worker answers ``Connection: close``); ``lingerer``: closes connections
    whose client may still be sending; ``keepalive``: False to answer one
    request per connection; ``on_idle`` / ``on_busy``: called
    when the connection starts and stops waiting for a request (the worker's
    SIGTERM hangs up on idle ones)."""

    __slots__ = (
        "sock",
        "buffer",
        "app",
        "base",
        "alive",
        "lingerer",
        "keepalive",
        "on_idle",
        "on_busy",
        "_status",
        "_headers",
    )

    def __init__(
        self,
        sock: CoalescingSocket,
        app: Callable[..., Iterable[bytes]],
        base: dict[str, Any],
        alive: Callable[[], bool],
        lingerer: Lingerer,
        keepalive: bool = True,
        on_idle: Callable[[], None] | None = None,
        on_busy: Callable[[], None] | None = None,
    ):
        self.sock = sock
        self.buffer = bytearray()
        self.app = app
        self.base = base
        self.alive = alive
        self.lingerer = lingerer
        self.keepalive = keepalive
        self.on_idle = on_idle or _nothing
        self.on_busy = on_busy or _nothing
        self._status = ""
        self._headers: list[tuple[str, str]] = []

    def receive(self) -> bool:
        """Add what the client sends next to the buffer; False at its end."""
        data = self.sock.recv(RECV_SIZE)
        if not data:
            return False
        self.buffer += data
        return True

    def serve(self) -> None:
        """Answer requests until the client or the server ends the connection."""
        deadlines = self.sock.deadlines
        try:
            while True:
                deadlines.awaiting_request()
                self.on_idle()
                try:
                    head = self._read_head()
                except RequestTimedOut as exc:
                    self.sock.answer_late_headers(exc)
                    return
                finally:
                    self.on_busy()
                if head is None:
                    return
                deadlines.headers_read()
                if not self._answer(*head):
                    return
                gevent_sleep(0)  # let the worker's other connections take their turn
        except Refused as refusal:
            self._refuse(refusal)
        except OSError:
            pass  # the client reset or went away; closing is all that is left

    def _refuse(self, refusal: Refused) -> None:
        """Answer a request the front refused; the client may still be sending."""
        log.warning("Invalid request from ip=%s: %s", self.base.get("REMOTE_ADDR", ""), refusal.message)
        self.sock.linger = self.lingerer
        try:
            self.sock.sendall(refusal.response())
        except OSError:
            pass

    def _read_head(self) -> tuple[dict[str, Any], RequestBody, bool] | None:
        """The next request's environ, body and whether it asks to keep the
        connection; None when the client closed between requests."""
        buffer = self.buffer
        searched = 0
        while True:
            # Clients may send an empty line or two after a body (RFC 9112, 2.2).
            while buffer[:2] == b"\r\n":
                del buffer[:2]
                searched = 0
            end = buffer.find(b"\r\n\r\n", searched)
            if end >= 0:
                break
            line_end = buffer.find(b"\r\n")
            if (line_end < 0 and len(buffer) > MAX_REQUEST_LINE) or line_end > MAX_REQUEST_LINE:
                raise Refused(414, "URI Too Long", "request line too long")
            if len(buffer) > MAX_HEAD:
                raise Refused(431, "Request Header Fields Too Large", "request headers too large")
            searched = max(0, len(buffer) - 3)
            if not self.receive():
                if buffer:
                    raise Refused(400, "Bad Request", "malformed request: incomplete request")
                return None
        line_end = buffer.find(b"\r\n")
        if line_end > MAX_REQUEST_LINE:
            raise Refused(414, "URI Too Long", "request line too long")
        head = bytes(buffer[: end + 4])
        del buffer[: end + 4]
        return self._parse_head(head, line_end)

    def _parse_head(self, head: bytes, line_end: int) -> tuple[dict[str, Any], RequestBody, bool]:
        parts = head[:line_end].split(b" ")
        if len(parts) != 3:
            raise Refused(400, "Bad Request", "malformed request: invalid request line")
        method, target, version_bytes = parts
        if not _METHOD.fullmatch(method):
            raise Refused(400, "Bad Request", "malformed request: invalid method")
        version = _VERSIONS.get(version_bytes)
        if version is None:
            raise Refused(400, "Bad Request", "malformed request: invalid HTTP version")
        environ = self.base.copy()
        found = _Head(environ)
        parser = httptools.HttpRequestParser(found)
        try:
            if method in _LLHTTP_METHODS:
                parser.feed_data(head)
            else:
                parser.feed_data(b"GET" + head[len(method) :])
        except httptools.HttpParserUpgrade:
            found.upgrade = True  # answered as any request, and the connection closed
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, Refused):
                raise exc.__context__ from None
            raise
        except httptools.HttpParserError as exc:
            raise refused_by_parser(exc) from None
        if found.chunked and version == "HTTP/1.0":
            raise Refused(400, "Bad Request", "malformed request: invalid header")
        path, query = _path_and_query(target)
        environ["REQUEST_METHOD"] = method.decode("ascii")
        environ["PATH_INFO"] = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        environ["RAW_URI"] = target.decode("latin-1")
        environ["SERVER_PROTOCOL"] = version
        body = RequestBody(self, found.length, found.chunked, found.expect and version == "HTTP/1.1")
        environ["wsgi.input"] = body
        keep = found.keeps_alive(version) and not found.upgrade and method != b"CONNECT"
        return environ, body, keep

    def _start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
        if exc_info is not None and self._status:
            raise exc_info[1].with_traceback(exc_info[2])
        self._status = status
        self._headers = headers
        return _no_write

    def _answer(self, environ: dict[str, Any], body: RequestBody, keep: bool) -> bool:
        """Serve one request; True if the connection carries another."""
        self._status = ""
        result: Iterable[bytes] = ()
        try:
            result = self.app(environ, self._start_response)
            data = b"".join(result)
        except Exception:
            # The method only: a path may carry what must not be logged (a token in a lookup path).
            log.exception("Error handling a %s request", environ.get("REQUEST_METHOD", ""))
            if body.unread() != 0:
                self.sock.linger = self.lingerer
            self.sock.sendall(_INTERNAL_ERROR.response())
            return False
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        left = body.unread()
        keep = keep and self.keepalive and not body.failed and left is not None and left <= DRAIN_LIMIT
        # A client told to wait for "100 Continue" before its body is not sent
        # one once answered: it may send the body after a wait, or not at all.
        keep = keep and not (left and body.awaits_continue)
        keep = keep and self.alive()
        self.sock.sendall(self._head(environ, len(data), keep))
        if data and environ["REQUEST_METHOD"] != "HEAD":
            self.sock.sendall(data)
        self.sock.flush()
        if keep and left:
            try:
                body.read(DRAIN_LIMIT)
            except (BodyTimedOut, MalformedBody):
                return False
            return body.done
        if not keep and left != 0:
            self.sock.linger = self.lingerer  # the client may still be sending its body
        return keep

    def _head(self, environ: dict[str, Any], size: int, keep: bool) -> bytes:
        status = self._status
        lines = [f"{environ['SERVER_PROTOCOL']} {status}\r\n"]
        has_length = False
        for name, value in self._headers:
            if len(name) == 14 and name.lower() == "content-length":
                has_length = True
            lines.append(f"{name}: {value}\r\n")
        if not has_length and not status.startswith(_NO_BODY_STATUS):
            lines.append(f"Content-Length: {size}\r\n")
        lines.append(f"Date: {http_date()}\r\n")
        if not keep:
            lines.append("Connection: close\r\n\r\n")
        elif environ["SERVER_PROTOCOL"] == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n\r\n")
        else:
            lines.append("\r\n")
        return "".join(lines).encode("latin-1")


def _path_and_query(target: bytes) -> tuple[bytes, bytes]:
    """The path and query of a request target (origin or absolute form; a
    fragment, which clients should not send, is dropped)."""
    if target.startswith(b"/"):
        path, _, query = target.partition(b"?")
        return path.partition(b"#")[0], query.partition(b"#")[0]
    if target == b"*":
        return target, b""
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        raise Refused(400, "Bad Request", "malformed request: invalid request line") from None
    return url.path or b"/", url.query or b""


def _nothing() -> None:
    pass


def _no_write(data: bytes) -> None:
    raise NotImplementedError("the app returns its body; write() is not supported")


_date: list[Any] = [-1, ""]


def http_date() -> str:
    """The ``Date`` header's value, computed once per second."""
    now = int(time.time())
    if now != _date[0]:
        _date[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
        _date[0] = now
    return str(_date[1])


def base_environ(
    server: tuple[str, int] | Any, client: tuple[str, int] | Any, scheme: str, multiprocess: bool
) -> dict[str, Any]:
    """The environ keys every request of a connection shares."""
    environ: dict[str, Any] = {
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.url_scheme": scheme,
        "SCRIPT_NAME": "",
        "SERVER_SOFTWARE": "strongroom",
    }
    if isinstance(server, tuple) and len(server) >= 2:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = str(server[0]), str(server[1])
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = str(server or ""), ""
    if isinstance(client, tuple) and len(client) >= 2:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
    else:
        environ["REMOTE_ADDR"] = str(client or "")
    return environ
