"""The gunicorn worker class of a Strongroom node: gevent, its own HTTP front, fair, one send per response.

gunicorn runs the node's processes (master, workers, signals, graceful stop);
what happens on a client connection is Strongroom's own:

* **The HTTP front** (``server/front.py``): each request's head is validated by
  llhttp (in C) instead of gunicorn's pure-Python parser, the WSGI environ is
  built from it directly and the answer's head and body are written at once,
  under gunicorn's own limits and refusals.  Parsing a request and building its
  environ in Python was a large share of what a small request cost a worker
  (the trivial Falcon app's rate under each, measured on the same cores: in
  bench/README.md, the KV run "after the worker's own HTTP front").
* **Taking turns.**  A greenlet runs until it waits on a socket.  A kept-alive
  client that sends its next request as soon as it has the answer (wrk,
  HAProxy under load) usually finds it already readable, and a request answered
  from the read cache never waits on Consul: that connection's greenlet would
  go on serving request after request while the worker's other connections
  starve (figures in bench/README.md, "Figures the code's comments rest on").
  After each request the greenlet yields to the event loop, so every
  connection with a request waiting gets its turn first.
* **One send per response.**  The client socket is wrapped so that what a
  response writes is collected and sent once the response is complete (or
  ``FLUSH_AT`` bytes are waiting): one TCP segment and one wake-up of the
  client for every small response.

And one change for shutdown: gevent's worker waits for every connection's
greenlet to end, and a kept-alive connection between requests (HAProxy's, a
client's) would hold a SIGTERM'd worker for the whole ``graceful_timeout``.  On
SIGTERM the worker hangs up on the connections that are between requests with
nothing sent yet; requests in progress are finished (and their
connections then closed).

And a lingering close (``server/linger.py``): a connection closed before its
request's body was read whole (a 413 on Content-Length, headers refused) is
shut down for writing and its input discarded for a bounded time before the
close, so a client still sending its body reads its answer instead of a reset.

And even load over the node's workers (``server/balance.py``): every worker
watches the one shared listening socket and accepts only while it holds no
more connections than the least loaded worker.

And read deadlines (``server/deadlines.py``): the listener's
``http_read_header_timeout`` and ``http_read_timeout`` bound how long a client
may take to send a request; idle time between requests stays bounded by
gunicorn's ``keepalive`` alone.
"""

from __future__ import annotations

import gc
import socket
import time
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Any

import gevent
from gevent.monkey import get_original
from gevent.server import StreamServer
from gunicorn.sock import ssl_context
from gunicorn.workers.ggevent import GeventWorker

from strongroom import metrics
from strongroom.server.balance import Balance, BalancedServer, worker_connections_gauge
from strongroom.server.deadlines import RESPONSE_408, ReadDeadlines, ReadLimits, RequestTimedOut, listener_limits
from strongroom.server.front import Connection, base_environ
from strongroom.server.lifetime import die_with_parent
from strongroom.server.linger import Lingerer

if TYPE_CHECKING:
    from gunicorn.config import Config

#: The standard library's ``select``, never gevent's (which may switch greenlets).
_select = get_original("select", "select")

#: Bytes collected before they are sent even though the response goes on.
FLUSH_AT = 256 * 1024


class CoalescingSocket:
    """A connected client socket whose ``sendall`` data waits for ``flush``,
    and whose ``recv`` keeps the read deadlines of ``limits`` (``deadlines``,
    a ``ReadDeadlines``).

    Everything that sends otherwise (``send``, ``sendfile``), shuts the socket
    down or closes it flushes first, so bytes never change order or get lost on
    a clean close.  Everything else is the wrapped socket's."""

    __slots__ = ("_sock", "_pending", "_size", "deadlines", "linger")

    def __init__(self, sock: socket.socket, limits: ReadLimits | None = None):
        self._sock = sock
        self._pending: list[bytes] = []
        self._size = 0
        self.deadlines = ReadDeadlines(limits or ReadLimits(0.0, 0.0, 0.0))
        #: Set when the client may still be sending: ``close`` then lingers.
        self.linger: Lingerer | None = None

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
        except BaseException:
            self._sock.close()
            raise
        else:
            if self.linger is not None:
                self.linger.close(self._sock)
                return
        self._sock.close()

    def hang_up_if_quiet(self) -> bool:
        """Shut the connection down unless the client has started sending;
        True if it was shut down (its reader then sees the end of the stream).

        Asked of the kernel without waiting and without a greenlet switch (the
        real ``select``, not gevent's): readable means bytes (or the client's
        end) arrived.  A TLS socket may also hold decrypted bytes (``pending``)."""
        try:
            pending = getattr(self._sock, "pending", None)
            if pending is not None and pending():
                return False
            readable, _, _ = _select([self._sock.fileno()], [], [], 0)
            if readable:
                return False  # a request is arriving: let it be served
            self._sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass  # already closed or reset: its reader ends anyway
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class FairGeventWorker(GeventWorker):
    """gunicorn's gevent worker, serving connections with Strongroom's HTTP
    front (``server/front.py``): yielding between requests, sending each
    response at once, not waiting on idle kept-alive connections when told to
    stop, and holding clients to the listener's read deadlines."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        #: Connections waiting for their next (or first) request.
        self._between_requests: set[CoalescingSocket] = set()
        #: ``ReadLimits`` by listening port; ``None`` for any other.
        self._limits: dict[int | None, ReadLimits] = {}
        #: Closes connections whose client may still be sending (server/linger.py).
        self.lingerer = Lingerer()
        #: This worker's connections, and its share of the node's (server/balance.py).
        self.balance = Balance(None, None)

    def init_process(self) -> None:
        freeze_settings(self.cfg)  # this process's copy: the master's stays as it is
        # Gone the instant gunicorn is (server/lifetime.py), not a second later when
        # gunicorn's own check of the parent's pid would notice.
        die_with_parent()
        super().init_process()

    def run(self) -> None:
        # Metric updates are tallied in memory and written once a second
        # (strongroom.metrics), and what is left when the worker stops.
        metrics.defer_updates()
        # Everything loaded so far (modules, the app, the core) lives as long as
        # the worker: out of the collector's sight, a full collection scans only
        # what requests left behind (cache entries, tokens) instead of every
        # object of the app, a pause that stalls every request of the worker
        # (measured under a write load: bench/README.md, "Pauses").
        gc.collect()
        gc.freeze()
        # Here, once gevent has patched the standard library and the app is loaded.
        self._limits = listener_limits(float(self.cfg.keepalive or 0))
        # The master's table and this worker's slot in it (gunicorn_conf.pre_fork).
        table, slot = getattr(self, "connection_table", None), getattr(self, "balance_slot", None)
        self.balance = Balance(table, slot, worker_connections_gauge())
        try:
            self._serve()
        finally:
            self.balance.stop()
            metrics.flush()

    def _serve(self) -> None:
        """gunicorn's ``GeventWorker.run``, with a pool per listener that
        refuses connections while another worker holds fewer."""
        servers: list[StreamServer] = []
        # The TLS handshake happens in the connection's first read, under the
        # listener's header deadline (gevent would otherwise do it before the
        # handler runs, with no deadline: a client that never sends its hello
        # would hold the connection for good).
        ssl_args = {"ssl_context": ssl_context(self.cfg), "do_handshake_on_connect": False} if self.cfg.is_ssl else {}
        for listener in self.sockets:
            listener.setblocking(1)
            pool = self.balance.pool(self.worker_connections)
            server = BalancedServer(listener, partial(self.handle, listener), pool, **ssl_args)
            if self.cfg.workers > 1:
                server.max_accept = 1
            server.start()
            servers.append(server)
        self.balance.start(self.pid)

        while self.alive:
            self.notify()
            gevent.sleep(1.0)

        # Stop accepting, then let the requests in progress end within graceful_timeout.
        self.balance.stop()
        for server in servers:
            server.close()
        started = time.time()
        while time.time() - started <= self.cfg.graceful_timeout:
            if all(server.pool.free_count() == server.pool.size for server in servers):
                return
            self.notify()
            gevent.sleep(1.0)
        self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
        for server in servers:
            server.stop(timeout=1)

    def handle(self, listener: socket.socket, client: socket.socket, addr: Any) -> None:
        """Serve one client connection until it ends (``server/front.py``)."""
        try:
            server = listener.getsockname()
        except OSError:
            server = None
        port = server[1] if isinstance(server, tuple) and len(server) >= 2 else None
        sock = CoalescingSocket(client, self._limits.get(port) or self._limits.get(None))
        between = self._between_requests
        connection = Connection(
            sock,
            self.wsgi,
            base_environ(server, addr, "https" if self.cfg.is_ssl else "http", self.cfg.workers > 1),
            alive=lambda: bool(self.alive),
            lingerer=self.lingerer,
            keepalive=bool(self.cfg.keepalive),
            on_idle=partial(between.add, sock),
            on_busy=partial(between.discard, sock),
        )
        try:
            connection.serve()
        except Exception:
            self.log.exception("Error serving a connection")
        finally:
            between.discard(sock)
            sock.close()

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
