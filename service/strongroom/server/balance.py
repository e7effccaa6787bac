"""Even load over a node's workers: each accepts only while it holds no more
connections than the least loaded (used by ``gunicorn_conf.py`` and ``server/worker.py``).

Every worker watches gunicorn's one shared listening socket.  The kernel wakes
them all for a new connection and the first to call ``accept`` takes it; left
alone, the worker that happens to be idle takes a burst of kept-alive
connections (wrk's, HAProxy's pool) and keeps them.  ``SO_REUSEPORT`` with a
socket per worker hashes connections to workers instead: with 16 connections
over 2 workers one got none about one run in 25, and a few long-lived clients
(HAProxy's pooled connections, a handful of application servers) leave a node
unevenly loaded for as long as they live.

Here a worker accepts only while it holds no more connections than every
other worker that is accepting (``ConnectionTable.least_loaded``), so a worker
never gets more than one connection ahead of another: any set of connections
opened together is spread evenly.  The counts live in a small table of shared
memory (``ConnectionTable``) that the gunicorn master maps before it forks:
one slot per worker, each written only by its own worker (the master
assigns and frees slots), read by all.  A worker that is not the least loaded
stops watching the socket and looks again after ``RETRY`` (only while it is
behind: an idle listener costs nothing); the least loaded one always watches.

Without ``SO_REUSEPORT`` the kernel itself refuses a second node on the same
port (``EADDRINUSE``).
"""

from __future__ import annotations

import contextlib
import mmap
import os
from typing import TYPE_CHECKING, Any

from gevent.pool import Pool
from gevent.server import StreamServer

if TYPE_CHECKING:
    from prometheus_client import Gauge

#: Workers a node can run at once (gunicorn's TTIN can add some).
SLOTS = 256
#: How soon a worker that was not the least loaded looks again (seconds).
RETRY = 0.002

_PID, _COUNT = 0, 1


class ConnectionTable:
    """Connections per worker in anonymous shared memory, inherited across fork.

    A header cell holds how many slots were ever handed out (what a worker
    scans), then slot ``i`` holds two 64-bit integers: the pid of the worker
    accepting through it (0: free or not accepting) and its open
    connections.  Aligned 8-byte loads and stores are atomic, and each cell
    has one writer at a time (the master for the header and for a slot no
    worker owns, then that slot's worker), so no lock."""

    def __init__(self, slots: int = SLOTS):
        self.slots = slots
        self._map = mmap.mmap(-1, 8 + slots * 16, flags=mmap.MAP_SHARED)
        self._cells = memoryview(self._map).cast("q")

    def free_slot(self, used: set[int]) -> int | None:
        """Hand out a slot no live worker has (the master, before a fork)."""
        for slot in range(self.slots):
            if slot not in used:
                self._cells[0] = max(self._cells[0], slot + 1)
                return slot
        return None

    def join(self, slot: int, pid: int) -> None:
        """``pid`` accepts through ``slot`` from now on, with no connection yet."""
        self._cells[1 + slot * 2 + _COUNT] = 0
        self._cells[1 + slot * 2 + _PID] = pid

    def leave(self, slot: int) -> None:
        """The worker of ``slot`` stopped accepting (or died): the others stop comparing with it."""
        self._cells[1 + slot * 2 + _PID] = 0
        self._cells[1 + slot * 2 + _COUNT] = 0

    def add(self, slot: int, delta: int) -> int:
        """Change ``slot``'s connection count (only its worker calls this); the new count."""
        index = 1 + slot * 2 + _COUNT
        count = self._cells[index] + delta
        self._cells[index] = count
        return count

    def count(self, slot: int) -> int:
        return self._cells[1 + slot * 2 + _COUNT]

    def counts(self) -> dict[int, int]:
        """``{pid: connections}`` of the workers accepting now."""
        cells = self._cells
        return {cells[i]: cells[i + 1] for i in range(1, 1 + cells[0] * 2, 2) if cells[i]}

    def least_loaded(self, slot: int) -> bool:
        """Whether ``slot``'s worker holds no more connections than any other accepting worker."""
        cells = self._cells
        mine = cells[1 + slot * 2 + _COUNT]
        for i in range(1, 1 + cells[0] * 2, 2):
            if cells[i] and cells[i + 1] < mine:
                return False
        return True


class Balance:
    """One worker's side of the table: its slot, its count, its pools.

    ``slot`` None (one worker, or no free slot) turns balancing off: the
    worker accepts whenever its pool has room, as gunicorn's does."""

    def __init__(self, table: ConnectionTable | None, slot: int | None, gauge: Gauge | None = None):
        self._table = table if slot is not None else None
        self._slot = slot if table is not None else None
        self._gauge = gauge
        self._connections = 0

    def pool(self, size: int) -> BalancedPool:
        """The greenlet pool for one listening socket of this worker."""
        return BalancedPool(size, self)

    def start(self, pid: int) -> None:
        """The worker's servers are started: count it among the accepting workers."""
        if self._table is not None and self._slot is not None:
            self._table.join(self._slot, pid)

    def stop(self) -> None:
        """The worker stops accepting: the others no longer wait for it to catch up."""
        if self._table is not None and self._slot is not None:
            self._table.leave(self._slot)
            self._table = None

    def opened(self) -> None:
        self._connections += 1
        if self._table is not None and self._slot is not None:
            self._table.add(self._slot, 1)
        if self._gauge is not None:
            self._gauge.set(self._connections)

    def closed(self) -> None:
        self._connections -= 1
        if self._table is not None and self._slot is not None:
            self._table.add(self._slot, -1)
        if self._gauge is not None:
            self._gauge.set(self._connections)

    @property
    def connections(self) -> int:
        return self._connections

    def may_accept(self) -> bool:
        return self._table is None or self._slot is None or self._table.least_loaded(self._slot)


class BalancedPool(Pool):
    """gevent's pool of connection greenlets for one listening socket, counting
    them in the worker's ``Balance`` from the accept (not from when the
    greenlet first runs, so the next accept already sees it)."""

    def __init__(self, size: int, balance: Balance):
        super().__init__(size)
        self.balance = balance

    def add(self, greenlet: Any, blocking: bool = True, timeout: float | None = None) -> None:
        super().add(greenlet, blocking, timeout)
        self.balance.opened()
        greenlet.rawlink(self._ended)

    def _ended(self, greenlet: Any) -> None:
        self.balance.closed()


class BalancedServer(StreamServer):
    """gevent's server for one listening socket, not accepting while another
    worker holds fewer connections.

    gevent stops watching the socket while ``full()`` and starts again when
    its pool has room; here "full" also means "not the least loaded", and
    what changes that is another worker's count, which nothing here is told
    of: so the server looks again after ``RETRY`` (and only then, not at
    once, which would spin while the connection waits for another worker)."""

    def __init__(self, listener: Any, handle: Any, pool: BalancedPool, **ssl_args: Any):
        super().__init__(listener, handle=handle, spawn=pool, **ssl_args)
        self.balance = pool.balance
        self.full = self._full  # gevent took the pool's full() in set_spawn
        self._retry: Any = None

    def _full(self) -> bool:
        if self.pool.full():
            return True
        if self.balance.may_accept():
            return False
        self._look_again()
        return True

    def _start_accepting_if_started(self, _event: Any = None) -> None:
        # Called by gevent when the pool has room again (at once if it had).
        if self.balance.may_accept():
            super()._start_accepting_if_started(_event)
        else:
            self._look_again()

    def _look_again(self) -> None:
        if self._retry is None:
            self._retry = self.loop.timer(RETRY)
            self._retry.start(self._resume)

    def _resume(self) -> None:
        retry, self._retry = self._retry, None
        if retry is not None:
            retry.close()
        if self.started:
            self.start_accepting()  # seen readable again if the connection still waits

    def wrap_socket_and_handle(self, client_socket: Any, address: Any) -> Any:
        """TLS listeners: a handshake that fails (a client that does not trust the
        certificate, plain HTTP on a TLS port, a scanner, a client too slow to
        finish) ends the connection without a word in the log; gevent would print a
        traceback for each, a log an unauthenticated client could fill."""
        try:
            tls_socket = self.wrap_socket(client_socket, **self.ssl_args)
        except OSError:  # ssl.SSLError and timeouts are OSErrors
            client_socket.close()
            return None
        with contextlib.closing(tls_socket):
            return self.handle(tls_socket, address)

    def close(self) -> None:
        retry, self._retry = self._retry, None
        if retry is not None:
            retry.stop()
            retry.close()
        super().close()


def worker_connections_gauge() -> Gauge:
    """``strongroom_worker_connections``: open client connections of each
    worker, labelled by pid (``liveall``: a dead worker's series goes with it)."""
    from prometheus_client import Gauge

    return Gauge(
        "strongroom_worker_connections",
        "Open client connections of this worker",
        multiprocess_mode="liveall",
    )


def table_from_environment() -> ConnectionTable | None:
    """The table for the gunicorn master: only with more than one worker."""
    return ConnectionTable() if int(os.environ.get("STRONGROOM_WORKERS", "1")) > 1 else None
