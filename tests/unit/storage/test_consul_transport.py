"""The Consul transport's check for a kept-alive connection Consul has closed.

Plain socket pairs stand for the two ends of a TCP connection: what is tested
is the socket-level check, not anything Consul says.
"""

from __future__ import annotations

import socket

import pytest

from strongroom.storage.consul_http import _closed_by_peer


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    ours.settimeout(10.0)
    yield ours, theirs
    ours.close()
    theirs.close()


def test_an_open_quiet_connection_is_reusable(pair):
    ours, _ = pair
    assert not _closed_by_peer(ours)
    assert ours.gettimeout() == 10.0  # the check leaves the socket as it found it


def test_a_connection_the_peer_closed_is_not_reusable(pair):
    ours, theirs = pair
    theirs.close()
    assert _closed_by_peer(ours)
    assert ours.gettimeout() == 10.0


def test_stray_bytes_make_a_connection_unusable_and_stay_unread(pair):
    ours, theirs = pair
    theirs.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    assert _closed_by_peer(ours)
    assert ours.recv(8) == b"HTTP/1.1"  # peeked, not consumed


def test_a_closed_socket_is_not_reusable(pair):
    ours, _ = pair
    ours.close()
    assert _closed_by_peer(ours)
