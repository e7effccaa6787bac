"""The worker's client socket wrapper: one send per response, nothing lost or reordered."""

from __future__ import annotations

import socket
import threading

import pytest

from strongroom.server import worker
from strongroom.server.worker import CoalescingSocket


class Recorder:
    """Records what reaches the real socket's send calls; forwards the rest to a socketpair end."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sent: list[tuple[str, bytes]] = []
        self.closed = False
        self.shut = None

    def sendall(self, data):
        self.sent.append(("sendall", bytes(data)))
        self.sock.sendall(data)

    def send(self, data, *args):
        self.sent.append(("send", bytes(data)))
        return self.sock.send(data, *args)

    def shutdown(self, how):
        self.shut = how
        self.sock.shutdown(how)

    def close(self):
        self.closed = True
        self.sock.close()

    def __getattr__(self, name):
        return getattr(self.sock, name)


@pytest.fixture
def wrapped():
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    recorder = Recorder(ours)
    yield CoalescingSocket(recorder), recorder, theirs
    ours.close()
    theirs.close()


def test_headers_and_body_leave_in_one_send(wrapped):
    sock, recorder, peer = wrapped
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
    sock.sendall(memoryview(b"{}"))
    assert recorder.sent == []  # nothing leaves before the response is complete
    sock.flush()
    assert recorder.sent == [("sendall", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")]
    assert peer.recv(100) == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    sock.flush()
    assert len(recorder.sent) == 1  # flushing nothing sends nothing


def test_large_responses_are_sent_as_they_grow(wrapped):
    sock, recorder, peer = wrapped
    received = bytearray()

    def drain():
        while len(received) < worker.FLUSH_AT:
            data = peer.recv(65536)
            if not data:
                return
            received.extend(data)

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    chunk = b"x" * (worker.FLUSH_AT // 2)
    sock.sendall(chunk)
    assert recorder.sent == []
    sock.sendall(chunk)
    assert [len(data) for _, data in recorder.sent] == [worker.FLUSH_AT]
    drainer.join(10)
    assert len(received) == worker.FLUSH_AT


def test_a_direct_send_goes_after_what_waits(wrapped):
    sock, recorder, peer = wrapped
    sock.sendall(b"first ")
    sock.send(b"second")
    assert [data for _, data in recorder.sent] == [b"first ", b"second"]


def test_close_and_shutdown_send_what_waits_first(wrapped):
    sock, recorder, peer = wrapped
    sock.sendall(b"error page")
    sock.shutdown(socket.SHUT_WR)
    assert recorder.sent == [("sendall", b"error page")] and recorder.shut == socket.SHUT_WR
    assert peer.recv(100) == b"error page"
    sock.close()
    assert recorder.closed


def test_close_when_the_peer_is_gone_still_closes(wrapped):
    sock, recorder, peer = wrapped
    peer.close()
    sock.sendall(b"x" * 100_000)
    sock.close()  # the flush fails (EPIPE or reset); the socket is closed regardless
    assert recorder.closed


def test_everything_else_is_the_wrapped_socket(wrapped):
    sock, recorder, peer = wrapped
    peer.sendall(b"GET / HTTP/1.1\r\n")
    assert sock.recv(100) == b"GET / HTTP/1.1\r\n"
    assert sock.fileno() == recorder.sock.fileno()


def test_a_quiet_connection_is_hung_up_and_its_reader_sees_the_end():
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(7.0)
        sock = CoalescingSocket(ours)
        assert sock.hang_up_if_quiet()
        assert ours.recv(10) == b""  # a reader blocked on it would wake with end of stream
        theirs.settimeout(5)
        assert theirs.recv(10) == b""  # the client sees the connection closed
        assert ours.gettimeout() == 7.0
    finally:
        ours.close()
        theirs.close()


def test_a_connection_with_a_request_arriving_is_left_to_be_served():
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"GET /v1/sys/health HTTP/1.1\r\n")
        sock = CoalescingSocket(ours)
        assert not sock.hang_up_if_quiet()
        assert ours.recv(100).startswith(b"GET /v1/sys/health")  # peeked, not consumed
    finally:
        ours.close()
        theirs.close()


def test_hanging_up_a_closed_connection_is_harmless():
    ours, theirs = socket.socketpair()
    theirs.close()
    ours.close()
    assert CoalescingSocket(ours).hang_up_if_quiet()


# -- settings read as plain attributes ------------------------------------------------


def test_frozen_settings_read_the_same_without_the_settings_lookup():
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("keepalive", 30)
    cfg.set("certfile", "/etc/cert.pem")
    cfg.set("worker_class", "strongroom.server.worker.FairGeventWorker")
    plain = [name for name in cfg.settings if not hasattr(Config, name)]  # the rest are properties
    before = {name: getattr(cfg, name) for name in plain}
    worker.freeze_settings(cfg)
    assert cfg.worker_class is worker.FairGeventWorker  # a property: still computed
    # Lookups no longer reach Config.__getattr__ (and its Setting.get).
    for name in plain:
        cfg.settings[name].get = None
    assert {name: getattr(cfg, name) for name in plain} == before
    assert cfg.keepalive == 30 and cfg.is_ssl
