"""The gunicorn worker class of a Strongroom node: gevent, fair, one send per response.

Two changes to gunicorn's gevent worker, both measured on the KV benchmark:

* **Taking turns.**  A greenlet runs until it waits on a socket.  A kept-alive
  client that sends its next request as soon as it has the answer (wrk,
  HAProxy under load) usually finds it already readable, and a request answered
  from the read cache never waits on Consul: that connection's greenlet would
  go on serving request after request while the worker's other connections
  starve (figures in bench/README.md, "Figures the code's comments rest on").
  After each request the greenlet yields to the event loop, so every
  connection with a request waiting gets its turn first.
* **One send per response.**  gunicorn sends the status line and headers, then
  the body, in separate ``sendall`` calls: two TCP segments and two wake-ups of
  the client for every response.
  The client socket is wrapped so that what a response writes is collected and
  sent once the response is complete (or ``FLUSH_AT`` bytes are waiting).

And one change for shutdown: gevent's worker waits for every connection's
greenlet to end, and a kept-alive connection between requests (HAProxy's, a
client's) would hold a SIGTERM'd worker for the whole ``graceful_timeout``.  On
SIGTERM the worker hangs up on the connections that are between requests with
nothing sent yet; requests in progress are finished (and their
connections then closed by gunicorn).

And read deadlines (``server/deadlines.py``): the listener's
``http_read_header_timeout`` and ``http_read_timeout`` bound how long a client
may take to send a request; idle time between requests stays bounded by
gunicorn's ``keepalive`` alone.  A body gunicorn cannot read (a malformed
chunk) is a 400 from the app, and the connection is then closed rather than
answered a second time by gunicorn with a 500 and a traceback.
"""

from __future__ import annotations

import socket
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import gevent
import gevent.local
from gunicorn.workers.ggevent import GeventWorker

from strongroom import metrics
from strongroom.server.deadlines import (
    RESPONSE_408,
    GuardedBody,
    ReadDeadlines,
    ReadLimits,
    RequestTimedOut,
    finish_body,
    listener_limits,
)

if TYPE_CHECKING:
    from gunicorn.config import Config
    from gunicorn.http.message import Request

#: Bytes collected before they are sent even though the response goes on.
FLUSH_AT = 256 * 1024


class CoalescingSocket:
    """A connected client socket whose ``sendall`` data waits for ``flush``,
    and whose ``recv`` keeps the read deadlines of ``limits`` (``deadlines``,
    a ``ReadDeadlines``).

    Everything that sends otherwise (``send``, ``sendfile``), shuts the socket
    down or closes it flushes first, so bytes never change order or get lost on
    a clean close.  Everything else is the wrapped socket's."""

    __slots__ = ("_sock", "_pending", "_size", "deadlines")

    def __init__(self, sock: socket.socket, limits: ReadLimits | None = None):
        self._sock = sock
        self._pending: list[bytes] = []
        self._size = 0
        self.deadlines = ReadDeadlines(limits or ReadLimits(0.0, 0.0, 0.0))

    def recv(self, *args: Any) -> bytes:
        return self.deadlines.recv(self._sock, args)

    def answer_late_headers(self, exc: RequestTimedOut) -> None:
        """Answer a request whose headers came too late with a 408 (sent when
        the connection closes); a connection that sent nothing is just closed."""
        if exc.started:
            self._pending, self._size = [RESPONSE_408], len(RESPONSE_408)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
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

    def send(self, data: bytes, *args: Any) -> int:
        self.flush()
        return self._sock.send(data, *args)

    def sendfile(self, *args: Any, **kwargs: Any) -> int:
        self.flush()
        return self._sock.sendfile(*args, **kwargs)

    def shutdown(self, how: int) -> None:
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _NextRequest:
    """What gunicorn's keep-alive loop enters around parsing each request
    (``timeout_ctx``): the connection's deadlines, and a quiet end of the
    connection (``req`` stays None) when they pass."""

    __slots__ = ("_sock",)

    def __init__(self, sock: CoalescingSocket):
        self._sock = sock

    def __enter__(self) -> None:
        self._sock.deadlines.awaiting_request()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        if isinstance(exc, RequestTimedOut):
            self._sock.answer_late_headers(exc)
            return True
        return False


class FairGeventWorker(GeventWorker):
    """gunicorn's gevent worker, yielding between requests, sending each response
    at once, not waiting on idle kept-alive connections when told to stop, and
    holding clients to the listener's read deadlines."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        #: Connections waiting for their next (or first) request.
        self._between_requests: set[CoalescingSocket] = set()
        #: The connection each greenlet serves (for ``timeout_ctx``).
        self._connection = gevent.local.local()
        #: ``ReadLimits`` by listening port; ``None`` for any other.
        self._limits: dict[int | None, ReadLimits] = {}

    def init_process(self) -> None:
        freeze_settings(self.cfg)  # this process's copy: the master's stays as it is
        super().init_process()

    def timeout_ctx(self) -> Any:
        sock = getattr(self._connection, "sock", None)
        return _NextRequest(sock) if sock is not None else super().timeout_ctx()

    def run(self) -> None:
        # Metric updates are tallied in memory and written once a second
        # (strongroom.metrics), and what is left when the worker stops.
        metrics.defer_updates()
        # Here, once gevent has patched the standard library and the app is loaded.
        self._limits = listener_limits(float(self.cfg.keepalive or 0))
        try:
            super().run()
        finally:
            metrics.flush()

    def handle(self, listener: socket.socket, client: socket.socket, addr: Any) -> None:
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

    def handle_request(self, listener_name: str, req: Request, sock: CoalescingSocket, addr: Any) -> bool:
        self._between_requests.discard(sock)
        sock.deadlines.headers_read()
        req.body = GuardedBody(req.body, sock.deadlines)
        try:
            served = super().handle_request(listener_name, req, sock, addr)
            sock.flush()
            if not finish_body(req, sock.deadlines):
                raise StopIteration()  # gunicorn closes the connection quietly
            return served
        finally:
            sock.flush()
            self._between_requests.add(sock)
            gevent.sleep(0)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM: stop, and hang up on the connections between requests (no
        greenlet switch here: shutting a socket down only wakes its reader)."""
        super().handle_exit(sig, frame)
        for sock in list(self._between_requests):
            sock.hang_up_if_quiet()


def freeze_settings(cfg: Config) -> None:
    """Make every gunicorn setting a plain attribute of ``cfg``.

    ``Config`` looks each setting up through ``__getattr__`` and its
    ``Setting.get``; gunicorn reads about 25 of them per request.  A worker
    never changes its settings (a reload starts new workers), so it keeps the
    values.  Names that are also properties of ``Config`` (``worker_class``,
    ``proc_name``, ...) stay computed."""
    for name, setting in cfg.settings.items():
        if not hasattr(type(cfg), name):
            object.__setattr__(cfg, name, setting.get())
