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
"""

from __future__ import annotations

import socket

import gevent
from gunicorn.workers.ggevent import GeventWorker

from strongroom import metrics

#: Bytes collected before they are sent even though the response goes on.
FLUSH_AT = 256 * 1024


class CoalescingSocket:
    """A connected client socket whose ``sendall`` data waits for ``flush``.

    Everything that sends otherwise (``send``, ``sendfile``), shuts the socket
    down or closes it flushes first, so bytes never change order or get lost on
    a clean close.  Everything else is the wrapped socket's."""

    __slots__ = ("_sock", "_pending", "_size")

    def __init__(self, sock):
        self._sock = sock
        self._pending: list[bytes] = []
        self._size = 0

    def recv(self, *args):
        return self._sock.recv(*args)

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


class FairGeventWorker(GeventWorker):
    """gunicorn's gevent worker, yielding between requests, sending each response
    at once, and not waiting on idle kept-alive connections when told to stop."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: Connections waiting for their next (or first) request.
        self._between_requests: set[CoalescingSocket] = set()

    def init_process(self):
        freeze_settings(self.cfg)  # this process's copy: the master's stays as it is
        super().init_process()

    def run(self):
        # Metric updates are tallied in memory and written once a second
        # (strongroom.metrics), and what is left when the worker stops.
        metrics.defer_updates()
        try:
            super().run()
        finally:
            metrics.flush()

    def handle(self, listener, client, addr):
        sock = CoalescingSocket(client)
        self._between_requests.add(sock)
        try:
            super().handle(listener, sock, addr)
        finally:
            self._between_requests.discard(sock)

    def handle_request(self, listener_name, req, sock, addr):
        self._between_requests.discard(sock)
        try:
            return super().handle_request(listener_name, req, sock, addr)
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
