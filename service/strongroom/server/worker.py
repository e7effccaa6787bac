"""The gunicorn worker class of a Strongroom node: gevent, fair, one send per response.

Two changes to gunicorn's gevent worker, both measured on the KV benchmark:

* **Taking turns.**  A greenlet runs until it waits on a socket.  A kept-alive
  client that sends its next request as soon as it has the answer (wrk,
  HAProxy under load) usually finds it already readable, and a request answered
  from the read cache never waits on Consul: that connection's greenlet would
  go on serving request after request while the worker's other connections
  starve (one worker, 16 connections: p50 6 ms, p99 340 ms; with the yield,
  p99 14 ms).  After each request the greenlet yields to the event loop, so
  every connection with a request waiting gets its turn first.
* **One send per response.**  gunicorn sends the status line and headers, then
  the body, in separate ``sendall`` calls: two TCP segments and two wake-ups of
  the client for every response, a fifth of a worker's time on cached reads.
  The client socket is wrapped so that what a response writes is collected and
  sent once the response is complete (or ``FLUSH_AT`` bytes are waiting).

And one change for shutdown: gevent's worker waits for every connection's
greenlet to end, and a kept-alive connection between requests (HAProxy's, a
client's) would hold a SIGTERM'd worker for the whole ``graceful_timeout``.  On
SIGTERM the worker hangs up on the connections that are between requests with
nothing sent yet; requests in progress are finished (and their
connections then closed by gunicorn).

Read deadlines (the listener's ``http_read_header_timeout`` and
``http_read_timeout``, Vault's names; Go's ``ReadHeaderTimeout`` and
``ReadTimeout``), so a client that sends its request a byte at a time
(slowloris) holds a connection for a bounded time, whatever it costs the
worker in greenlets and descriptors:

* a request starts when the connection is accepted (its first request) or
  when the first byte of the next one arrives; its headers must be complete
  ``http_read_header_timeout`` after that start, its body
  ``http_read_timeout`` after it.  A client silent since it connected is
  hung up on; one that sent part of its headers gets a 408 first.  A body
  that is late gets a 400 in Vault's envelope from the app (``BodyTimedOut``
  is an ``InvalidRequest``), and the connection is closed;
* between requests a kept-alive connection may stay idle for gunicorn's
  ``keepalive`` (30 s) as before: idle time never counts towards the next
  request's deadlines.  (gunicorn bounded idle time plus headers together by
  ``keepalive``; a request's bytes already buffered when the previous one
  ended start it when its parsing starts.)
* a body gunicorn cannot read (a malformed chunk size or terminator, a client
  gone mid-body) reaches the app as ``MalformedBody``, an ``InvalidRequest``
  (400, no traceback); what the app left unread of a body is read, within the
  same deadline, after the response, and if that fails the connection is
  closed instead of gunicorn answering a second time with its own 500.

Other connections of the worker are not affected: each waits in its own
greenlet with its own deadline (a socket timeout, no timer thread).
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass

import gevent
import gevent.local
from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker

from strongroom import metrics
from strongroom.errors import InvalidRequest

#: Bytes collected before they are sent even though the response goes on.
FLUSH_AT = 256 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """How long a client may take to send a request, in seconds (0: no limit).

    ``header``: from the request's start (the connection's accept for its
    first request, the first byte of the next one after that) to the end of
    its headers; ``request``: from the same start to the end of its body;
    ``idle``: between requests, until the first byte of the next one."""

    header: float = 10.0
    request: float = 30.0
    idle: float = 30.0


class RequestTimedOut(TimeoutError):
    """The request's headers (or the next request) did not arrive in time; the
    connection is closed.  ``started``: some of the request had arrived."""

    def __init__(self, started: bool):
        super().__init__("request headers not received in time")
        self.started = started


class BodyTimedOut(InvalidRequest):
    """The request's body did not arrive within ``http_read_timeout`` (400)."""


class MalformedBody(InvalidRequest):
    """gunicorn could not read the request's body: a malformed chunk, or the
    client closed the connection before the end of the body (400)."""


# Request phases of a connection (what the next ``recv`` is waiting for).
_IDLE, _HEADERS, _BODY = 0, 1, 2

_HEADER_TIMEOUT_BODY = json.dumps(
    {"errors": ["request headers not received within http_read_header_timeout"]}).encode()
#: Sent to a client that started a request but did not finish its headers in time.
RESPONSE_408 = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(_HEADER_TIMEOUT_BODY)).encode()
                + b"\r\n\r\n" + _HEADER_TIMEOUT_BODY)


class CoalescingSocket:
    """A connected client socket whose ``sendall`` data waits for ``flush``,
    and whose ``recv`` keeps the read deadlines of ``limits`` (``ReadLimits``).

    Everything that sends otherwise (``send``, ``sendfile``), shuts the socket
    down or closes it flushes first, so bytes never change order or get lost on
    a clean close.  Everything else is the wrapped socket's.

    Deadlines: the worker calls ``awaiting_request`` before gunicorn parses
    each request and ``headers_read`` once it has; ``recv`` raises
    ``RequestTimedOut`` while waiting for a request or its headers, and
    ``BodyTimedOut`` while the body is read, once its deadline has passed."""

    __slots__ = ("_sock", "_pending", "_size", "_limits", "_phase", "_started", "_deadline", "_requests",
                 "_received", "body_failed")

    def __init__(self, sock, limits: ReadLimits | None = None, clock=time.monotonic):
        self._sock = sock
        self._pending: list[bytes] = []
        self._size = 0
        self._limits = limits or ReadLimits(0.0, 0.0, 0.0)
        self._requests = 0
        #: The current request's body could not be read whole: the connection cannot go on.
        self.body_failed = False
        # The first request starts at the accept: a client that connects and
        # says nothing is held for the header timeout at most.
        self._start_request(clock())
        self._received = False
        if not self._limits.header:
            self._phase = _IDLE

    # --- read deadlines ------------------------------------------------------------

    def _start_request(self, now: float) -> None:
        self._phase, self._started, self._received = _HEADERS, now, True
        self._deadline = now + self._limits.header if self._limits.header else None

    def awaiting_request(self) -> None:
        """gunicorn is about to parse the next request: after the first, the
        connection is idle until a byte of it arrives."""
        if self._requests:
            self._phase, self._deadline, self._received = _IDLE, None, False
        self.body_failed = False

    def headers_read(self) -> None:
        """gunicorn has parsed the request's headers: from now on its body is read."""
        if self._phase == _IDLE:  # parsed from bytes buffered with the previous request
            self._started = time.monotonic()
        self._requests += 1
        self._phase = _BODY
        self._deadline = self._started + self._limits.request if self._limits.request else None

    def timed_out_before_headers(self, exc: RequestTimedOut) -> None:
        """Answer a request whose headers came too late with a 408 (sent when
        the connection closes); a connection that sent nothing is just closed."""
        if exc.started:
            self._pending, self._size = [RESPONSE_408], len(RESPONSE_408)

    def recv(self, *args):
        phase = self._phase
        if phase == _IDLE:
            data = self._recv_within(self._limits.idle or None, args)
            if data:
                self._start_request(time.monotonic())
            return data
        if self._deadline is None:
            data = self._sock.recv(*args)
        else:
            data = self._recv_within(self._deadline - time.monotonic(), args)
        if data and phase == _HEADERS:
            self._received = True
        return data

    def _recv_within(self, timeout: float | None, args):
        if timeout is None:
            return self._sock.recv(*args)
        if timeout <= 0:
            raise self._timeout_error()
        # A socket timeout: gevent waits on this socket alone, other
        # connections of the worker go on as before.
        self._sock.settimeout(timeout)
        try:
            return self._sock.recv(*args)
        except socket.timeout:
            raise self._timeout_error() from None
        finally:
            try:
                self._sock.settimeout(None)
            except OSError:
                pass  # closed meanwhile (a SIGTERM's hang-up): its reader ends anyway

    def _timeout_error(self) -> Exception:
        if self._phase == _BODY:
            self.body_failed = True
            return BodyTimedOut(f"request body not received within http_read_timeout ({self._limits.request:g}s)")
        return RequestTimedOut(self._phase == _HEADERS and self._received)

    def sendall(self, data) -> None:
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            self._size = 0
            self._sock.sendall(data)

    def send(self, data, *args):
        self.flush()
        return self._sock.send(data, *args)

    def sendfile(self, *args, **kwargs):
        self.flush()
        return self._sock.sendfile(*args, **kwargs)

    def shutdown(self, how) -> None:
        try:
            self.flush()
        finally:
            self._sock.shutdown(how)

    def close(self) -> None:
        try:
            self.flush()
        except OSError:
            pass  # the peer is gone; closing is all that is left
        finally:
            self._sock.close()

    def hang_up_if_quiet(self) -> bool:
        """Shut the connection down unless the client has started sending;
        True if it was shut down (its reader then sees the end of the stream)."""
        try:
            timeout = self._sock.gettimeout()
            self._sock.settimeout(0.0)
            try:
                if self._sock.recv(1, socket.MSG_PEEK):
                    return False  # a request is arriving: let it be served
            except BlockingIOError:
                pass
            finally:
                self._sock.settimeout(timeout)
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed or reset: its reader ends anyway
        return True

    def __getattr__(self, name):
        return getattr(self._sock, name)


class GuardedBody:
    """A request's ``wsgi.input``: gunicorn's body reader, whose failures reach
    the app as ``InvalidRequest`` (a 400 in Vault's envelope, no traceback).

    gunicorn raises its own ``InvalidChunkSize``, ``ChunkMissingTerminator``,
    ``NoMoreData`` (or a parse error in the trailers) from the app's read;
    the app would answer 500.  The client's bytes are never quoted back."""

    __slots__ = ("_body", "_sock")

    def __init__(self, body, sock: CoalescingSocket):
        self._body = body
        self._sock = sock

    def read(self, size=None):
        return self._guard(self._body.read, size)

    def readline(self, size=None):
        return self._guard(self._body.readline, size)

    def readlines(self, size=None):
        return self._guard(self._body.readlines, size)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _guard(self, read, size):
        try:
            return read(size)
        except InvalidRequest:
            self._sock.body_failed = True
            raise
        except (http_errors.InvalidChunkSize, http_errors.ChunkMissingTerminator, http_errors.ParseException):
            self._sock.body_failed = True
            raise MalformedBody("malformed request body: invalid chunked encoding") from None
        except http_errors.NoMoreData:
            self._sock.body_failed = True
            raise MalformedBody("request body ended before it was complete") from None
        except OSError:
            self._sock.body_failed = True
            raise MalformedBody("connection failed while reading the request body") from None


class _NextRequest:
    """What gunicorn's keep-alive loop enters around parsing each request
    (``timeout_ctx``): the connection's deadlines, and a quiet end of the
    connection (``req`` stays None) when they pass."""

    __slots__ = ("_sock",)

    def __init__(self, sock: CoalescingSocket):
        self._sock = sock

    def __enter__(self):
        self._sock.awaiting_request()

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, RequestTimedOut):
            self._sock.timed_out_before_headers(exc)
            return True
        return False


class FairGeventWorker(GeventWorker):
    """gunicorn's gevent worker, yielding between requests, sending each response
    at once, not waiting on idle kept-alive connections when told to stop, and
    holding clients to the listener's read deadlines."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: Connections waiting for their next (or first) request.
        self._between_requests: set[CoalescingSocket] = set()
        #: The connection each greenlet serves (for ``timeout_ctx``).
        self._connection = gevent.local.local()
        #: ``ReadLimits`` by listening port; ``None`` for any other.
        self._limits: dict[int | None, ReadLimits] = {}

    def init_process(self):
        freeze_settings(self.cfg)  # this process's copy: the master's stays as it is
        super().init_process()

    def timeout_ctx(self):
        sock = getattr(self._connection, "sock", None)
        return _NextRequest(sock) if sock is not None else super().timeout_ctx()

    def run(self):
        # Metric updates are tallied in memory and written once a second
        # (strongroom.metrics), and what is left when the worker stops.
        metrics.defer_updates()
        # Here, once gevent has patched the standard library and the app is loaded.
        self._limits = listener_limits(float(self.cfg.keepalive or 0))
        try:
            super().run()
        finally:
            metrics.flush()

    def handle(self, listener, client, addr):
        try:
            port = listener.getsockname()[1]
        except (OSError, IndexError, TypeError):
            port = None
        sock = CoalescingSocket(client, self._limits.get(port) or self._limits.get(None))
        self._between_requests.add(sock)
        self._connection.sock = sock
        try:
            super().handle(listener, sock, addr)
        finally:
            self._connection.sock = None
            self._between_requests.discard(sock)

    def handle_request(self, listener_name, req, sock, addr):
        self._between_requests.discard(sock)
        sock.headers_read()
        req.body = GuardedBody(req.body, sock)
        try:
            served = super().handle_request(listener_name, req, sock, addr)
            sock.flush()
            if not finish_body(req, sock):
                raise StopIteration()  # gunicorn closes the connection quietly
            return served
        finally:
            sock.flush()
            self._between_requests.add(sock)
            gevent.sleep(0)

    def handle_exit(self, sig, frame):
        """SIGTERM: stop, and hang up on the connections between requests (no
        greenlet switch here: shutting a socket down only wakes its reader)."""
        super().handle_exit(sig, frame)
        for sock in list(self._between_requests):
            sock.hang_up_if_quiet()


def finish_body(req, sock: CoalescingSocket) -> bool:
    """Read what the app left of ``req``'s body, within its deadline, so the
    connection can carry the next request; False when it cannot (the body
    failed or failed now: late, malformed, cut short)."""
    if sock.body_failed:
        return False
    try:
        while req.body.read(8192):
            pass
    except InvalidRequest:
        return False
    return not sock.body_failed


def listener_limits(keepalive: float, config=None) -> dict[int | None, ReadLimits]:
    """``ReadLimits`` for each listener of the node's configuration, by port
    (``None``: the first listener's, for any other socket).  ``config`` is
    what the node core left in the environment (``server/wsgi.py``) unless given."""
    if config is None:
        from strongroom.server.wsgi import load_config

        try:
            config = load_config()
        except KeyError:  # not started by a node core (a bare gunicorn in a test)
            return {None: ReadLimits(idle=keepalive)}
    limits: dict[int | None, ReadLimits] = {}
    for listener in config.listeners:
        found = ReadLimits(listener.http_read_header_timeout_seconds, listener.http_read_timeout_seconds, keepalive)
        port = listener.address.rpartition(":")[2]
        if port.isdigit():
            limits.setdefault(int(port), found)
        limits.setdefault(None, found)
    return limits or {None: ReadLimits(idle=keepalive)}


def freeze_settings(cfg) -> None:
    """Make every gunicorn setting a plain attribute of ``cfg``.

    ``Config`` looks each setting up through ``__getattr__`` and its
    ``Setting.get``; gunicorn reads about 25 of them per request.  A worker
    never changes its settings (a reload starts new workers), so it keeps the
    values.  Names that are also properties of ``Config`` (``worker_class``,
    ``proc_name``, ...) stay computed."""
    for name, setting in cfg.settings.items():
        if not hasattr(type(cfg), name):
            object.__setattr__(cfg, name, setting.get())
