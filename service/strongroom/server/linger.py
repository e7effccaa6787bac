"""Lingering close: a refused body is still answered (used by ``server/worker.py``).

A node answers some requests before it has read their body: a body over
``max_request_size`` (Content-Length says so), an unauthenticated body over
``UNAUTHENTICATED_MAX_BODY``, headers the front refuses (``server/front.py``).  Closing a socket with
unread bytes in its receive buffer makes the kernel send a reset instead of a
clean end, and the reset also discards the answer the client has not read
yet: a client that sends its whole body before reading (Python's urllib,
Java's HttpURLConnection) gets "connection reset" instead of its 413.

What Go's net/http and nginx do, and what this module does: after the answer,
shut the write side (the client reads the answer and then the end of the
stream), go on reading and discarding what the client sends, then close.
Bounded, so that an unauthenticated client cannot hold a worker with it
(``LingerLimits``): a lingering connection ends at the first of its end of
stream, ``time`` after it started, ``idle`` without a byte, ``size`` bytes
discarded; each worker lingers on at most ``connections`` connections at once
(any other is closed at once, as before).

A body that is not read whole by the app is read after the answer only up to
``DRAIN_LIMIT`` bytes (Go's ``maxPostHandlerReadBytes``) to keep the
connection for the next request; past that the answer says
``Connection: close`` and the rest is discarded by the lingering close, within
its bounds, instead of being read for up to ``http_read_timeout``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Bytes of an unread body read after the answer to keep the connection (Go's 256 KiB).
DRAIN_LIMIT = 256 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class LingerLimits:
    """How long and how much a worker reads from a connection it is closing.

    ``time``: 5 s from the answer, nginx's ``lingering_time`` is 30 s: enough
    for about 60 MiB at 100 Mbit/s (a 33 MiB body takes 2.8 s).  ``idle``: 2 s without a byte
    (nginx's ``lingering_timeout`` is 5 s).  ``size``: 64 MiB, twice the
    default ``max_request_size``, so a body just over the limit is discarded
    whole (its CPU cost: bench/README.md).  ``connections``: lingering
    connections per worker at once; each costs a greenlet, a descriptor and
    at most ``time``, never a buffer of its own."""

    time: float = 5.0
    idle: float = 2.0
    size: int = 64 * 1024 * 1024
    connections: int = 32


class Lingerer:
    """One worker's lingering closes: ``close(sock)`` instead of ``sock.close()``
    for a connection whose client may still be sending.

    ``active``: connections lingering now; ``refused``: closes done at once
    because ``limits.connections`` were lingering already.  One discard buffer
    serves every connection (its content is never looked at)."""

    def __init__(self, limits: LingerLimits | None = None, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or LingerLimits()
        self.active = 0
        self.refused = 0
        self._clock = clock
        self._discard = bytearray(_CHUNK)

    def close(self, sock: socket.socket) -> None:
        """Shut ``sock``'s write side down, discard what arrives within the
        limits, close it.  Never raises ``OSError``."""
        limits = self.limits
        if self.active >= limits.connections:
            self.refused += 1
            _close(sock)
            return
        self.active += 1
        try:
            sock.shutdown(socket.SHUT_WR)
            self._discard_input(sock)
        except OSError:
            pass  # the client reset or went away: nothing left to wait for
        finally:
            self.active -= 1
            _close(sock)

    def _discard_input(self, sock: socket.socket) -> None:
        limits, clock, buffer = self.limits, self._clock, self._discard
        deadline = clock() + limits.time
        discarded = 0
        while discarded < limits.size:
            left = deadline - clock()
            if left <= 0:
                return
            # A socket timeout: under gevent only this greenlet waits.
            sock.settimeout(min(limits.idle, left))
            read = sock.recv_into(buffer)
            if not read:
                return  # the client has read the answer and closed: a clean end
            discarded += read


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
