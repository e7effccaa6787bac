"""The standby's watch of the active node's processes (server/lifetime.py) on
real loopback sockets: a listener that goes away is "gone", a live one that
closes idle connections is not, and no evidence is never taken for an end."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from strongroom.server.lifetime import host_and_port, wait_until_gone
from tests.helpers.procs import free_port, wait_until


class Listener:
    """A loopback server that accepts and holds connections (or closes each
    at once with ``close_each``) until ``close()``, which ends them all."""

    def __init__(self, close_each: bool = False):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self.close_each = close_each
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.close_each:
                conn.close()
            else:
                self.accepted.append(conn)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; connections are refused from now on
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def watch(address: str, keep: threading.Event) -> tuple[list[bool], threading.Thread]:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(wait_until_gone(address, keep.is_set)), daemon=True)
    thread.start()
    return result, thread


def test_a_server_whose_process_ends_is_gone_at_once():
    server, keep = Listener(), threading.Event()
    keep.set()
    result, thread = watch(server.address, keep)
    wait_until(lambda: server.accepted, 5, "the watch's connection")
    ended = time.monotonic()
    server.close()
    thread.join(5)
    assert result == [True] and time.monotonic() - ended < 1.0


def test_a_live_server_closing_idle_connections_is_not_gone():
    server, keep = Listener(close_each=True), threading.Event()
    keep.set()
    result, thread = watch(server.address, keep)
    time.sleep(0.5)  # the bound under test: reconnections for half a second, never a verdict
    assert not result
    keep.clear()
    thread.join(5)
    assert result == [False]
    server.close()


def test_refused_from_the_start_proves_nothing():
    """An address that never accepted (a wrong api_addr, a node not started yet)
    is no evidence that the active node died."""
    keep = threading.Event()
    keep.set()
    assert wait_until_gone(f"http://127.0.0.1:{free_port()}", keep.is_set) is False


def test_an_unroutable_address_proves_nothing():
    keep = threading.Event()
    keep.set()
    assert wait_until_gone("http://192.0.2.1:8200", keep.is_set) is False  # TEST-NET-1: a timeout


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("https://node1:8200", ("node1", 8200)),
        ("http://[::1]:8201", ("::1", 8201)),
        ("https://vault.example.com", ("vault.example.com", 443)),
        ("127.0.0.1:8200", ("127.0.0.1", 8200)),
        ("", None),
        ("http://:8200", None),
    ],
)
def test_host_and_port(address, expected):
    assert host_and_port(address) == expected
