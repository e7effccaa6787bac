"""Lingering close (server/linger.py): the bounds of the discarding, on real socket pairs."""

from __future__ import annotations

import socket
import threading

from strongroom.server.linger import Lingerer, LingerLimits


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_close_shuts_down_writing_then_discards_until_the_client_ends():
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    lingerer = Lingerer(LingerLimits(time=5, idle=2, size=1 << 20, connections=1))
    done = threading.Thread(target=lingerer.close, args=(ours,))
    done.start()
    assert theirs.recv(1) == b""  # the node's side is shut down for writing...
    theirs.sendall(b"x" * 300_000)  # ...and still reads: more than the socket buffers hold
    theirs.close()
    done.join(5)
    assert not done.is_alive() and ours.fileno() == -1
    assert lingerer.active == 0


def test_close_stops_after_size_bytes():
    ours, theirs = socket.socketpair()
    lingerer = Lingerer(LingerLimits(time=5, idle=2, size=64 * 1024, connections=1))
    theirs.sendall(b"x" * 200_000)  # more than the limit, already waiting
    lingerer.close(ours)
    assert ours.fileno() == -1
    theirs.close()


def test_close_stops_when_idle():
    ours, theirs = socket.socketpair()
    lingerer = Lingerer(LingerLimits(time=5, idle=0.05, size=1 << 20, connections=1))
    lingerer.close(ours)  # nothing ever arrives: over after ``idle``
    assert ours.fileno() == -1
    theirs.close()


def test_close_stops_at_its_deadline():
    """The deadline is counted on the injected clock: once it has passed, the
    next wait is not started even though bytes keep arriving."""
    ours, theirs = socket.socketpair()
    clock = FakeClock()
    lingerer = Lingerer(LingerLimits(time=5, idle=2, size=1 << 30, connections=1), clock=clock)
    reads = []
    real_recv_into = ours.recv_into

    class Advancing:
        def shutdown(self, how):
            ours.shutdown(how)

        def settimeout(self, value):
            ours.settimeout(value)

        def recv_into(self, buffer):
            clock.now += 2  # each read takes 2 s of the client's time
            reads.append(1)
            return real_recv_into(buffer)

        def close(self):
            ours.close()

    theirs.sendall(b"x" * 100_000)
    lingerer.close(Advancing())  # type: ignore[arg-type]
    assert len(reads) == 3  # at 0, 2 and 4 s; none started at 6 s
    theirs.close()


def test_past_its_cap_a_worker_closes_at_once():
    lingerer = Lingerer(LingerLimits(time=5, idle=5, size=1 << 20, connections=1))
    first, first_peer = socket.socketpair()
    second, second_peer = socket.socketpair()
    holding = threading.Thread(target=lingerer.close, args=(first,))
    holding.start()
    first_peer.settimeout(5)
    assert first_peer.recv(1) == b""  # the first is lingering now
    lingerer.close(second)  # returns at once: no wait of ``idle``
    assert second.fileno() == -1 and lingerer.refused == 1
    first_peer.close()
    holding.join(5)
    assert lingerer.active == 0
    second_peer.close()
