"""Read deadlines for a node's client connections (used by ``server/worker.py``).

The listener's ``http_read_header_timeout`` and ``http_read_timeout``
(Vault's names; Go's ``ReadHeaderTimeout`` and ``ReadTimeout``), so a client
that sends its request a byte at a time (slowloris) holds a connection for a
bounded time, whatever it costs the worker in greenlets and descriptors:

* a request starts when the connection is accepted (its first request) or
  when the first byte of the next one arrives; its headers must be complete
  ``http_read_header_timeout`` after that start, its body
  ``http_read_timeout`` after it.  A client silent since it connected is
  hung up on; one that sent part of its headers gets a 408 first.  A body
  that is late gets a 400 in Vault's envelope from the app (``BodyTimedOut``
  is an ``InvalidRequest``), and the connection is closed;
* between requests a kept-alive connection may stay idle for gunicorn's
  ``keepalive`` (30 s): idle time never counts towards the next request's
  deadlines (a request's bytes already buffered when the previous one ended
  start it when its head is read).
* a body that cannot be read (a malformed chunk size or terminator, a client
  gone mid-body) reaches the app as ``MalformedBody``, an ``InvalidRequest``
  (400, no traceback); what the app left unread of a body is the front's
  to settle after the response (``server/front.py``: read when small, else
  discarded within bounds by the lingering close, ``server/linger.py``).

Other connections of the worker are not affected: each waits in its own
greenlet with its own deadline (a socket timeout, no timer thread).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.errors import InvalidRequest

if TYPE_CHECKING:
    from strongroom.config import ServerConfig


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
    """The request's body could not be read: a malformed chunk, or the
    client closed the connection before the end of the body (400)."""


# Request phases of a connection (what the next ``recv`` is waiting for).
_IDLE, _HEADERS, _BODY = 0, 1, 2

_HEADER_TIMEOUT_BODY = json.dumps({"errors": ["request headers not received within http_read_header_timeout"]}).encode()
#: Sent to a client that started a request but did not finish its headers in time.
RESPONSE_408 = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
    b"Connection: close\r\nContent-Length: "
    + str(len(_HEADER_TIMEOUT_BODY)).encode()
    + b"\r\n\r\n"
    + _HEADER_TIMEOUT_BODY
)


class ReadDeadlines:
    """The read deadlines of one connection, kept by its ``recv``.

    The front calls ``awaiting_request`` before it reads each request's head
    and ``headers_read`` once it has; ``recv(sock, args)`` raises
    ``RequestTimedOut`` while waiting for a request or its headers, and
    ``BodyTimedOut`` while the body is read, once its deadline has passed.
    ``body_failed``: the current request's body could not be read whole (late,
    malformed, cut short), so the connection cannot carry another request."""

    __slots__ = ("_limits", "_phase", "_started", "_deadline", "_requests", "_received", "body_failed")

    def __init__(self, limits: ReadLimits, clock: Callable[[], float] = time.monotonic):
        self._limits = limits
        self._requests = 0
        self.body_failed = False
        # The first request starts at the accept: a client that connects and
        # says nothing is held for the header timeout at most.
        self._start_request(clock())
        self._received = False
        if not limits.header:
            self._phase = _IDLE

    def _start_request(self, now: float) -> None:
        self._phase, self._started, self._received = _HEADERS, now, True
        self._deadline = now + self._limits.header if self._limits.header else None

    def awaiting_request(self) -> None:
        """The next request's head is about to be read: after the first, the
        connection is idle until a byte of it arrives."""
        if self._requests:
            self._phase, self._deadline, self._received = _IDLE, None, False
        self.body_failed = False

    def headers_read(self) -> None:
        """The request's head is read: from now on its body is."""
        if self._phase == _IDLE:  # parsed from bytes buffered with the previous request
            self._started = time.monotonic()
        self._requests += 1
        self._phase = _BODY
        self._deadline = self._started + self._limits.request if self._limits.request else None

    def recv(self, sock: socket.socket, args: tuple[Any, ...]) -> bytes:
        """``sock.recv(*args)`` within the deadline of what it waits for."""
        phase = self._phase
        if phase == _IDLE:
            data = self._recv_within(sock, self._limits.idle or None, args)
            if data:
                self._start_request(time.monotonic())
            return data
        if self._deadline is None:
            data = sock.recv(*args)
        else:
            data = self._recv_within(sock, self._deadline - time.monotonic(), args)
        if data and phase == _HEADERS:
            self._received = True
        return data

    def _recv_within(self, sock: socket.socket, timeout: float | None, args: tuple[Any, ...]) -> bytes:
        if timeout is None:
            return sock.recv(*args)
        if timeout <= 0:
            raise self._timeout_error()
        # A socket timeout: gevent waits on this socket alone, other
        # connections of the worker go on as before.
        sock.settimeout(timeout)
        try:
            return sock.recv(*args)
        except TimeoutError:
            raise self._timeout_error() from None
        finally:
            try:
                sock.settimeout(None)
            except OSError:
                pass  # closed meanwhile (a SIGTERM's hang-up): its reader ends anyway

    def _timeout_error(self) -> Exception:
        if self._phase == _BODY:
            self.body_failed = True
            return BodyTimedOut(f"request body not received within http_read_timeout ({self._limits.request:g}s)")
        return RequestTimedOut(self._phase == _HEADERS and self._received)


def listener_limits(keepalive: float, config: ServerConfig | None = None) -> dict[int | None, ReadLimits]:
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
