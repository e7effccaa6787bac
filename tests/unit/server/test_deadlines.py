"""Read deadlines (server/deadlines.py, kept by the worker's ``CoalescingSocket``)
on real socket pairs: idle time between requests is not a request's time;
headers and body each have their deadline."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from strongroom.config import ListenerConfig, ServerConfig, StorageConfig
from strongroom.errors import InvalidRequest
from strongroom.server.deadlines import (
    RESPONSE_408,
    BodyTimedOut,
    ReadLimits,
    RequestTimedOut,
    listener_limits,
)
from strongroom.server.worker import CoalescingSocket

LIMITS = ReadLimits(header=0.3, request=0.6, idle=2.0)


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def later(seconds: float, action) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


def timed(call):
    started = time.monotonic()
    try:
        return call(), time.monotonic() - started
    except Exception as exc:  # the test inspects what was raised
        return exc, time.monotonic() - started


def test_a_silent_first_request_times_out_at_the_header_deadline_with_nothing_to_answer(pair):
    server, client = pair
    sock = CoalescingSocket(server, LIMITS)
    sock.deadlines.awaiting_request()
    error, took = timed(lambda: sock.recv(100))
    assert isinstance(error, RequestTimedOut) and not error.started
    assert 0.25 <= took <= 0.6
    sock.answer_late_headers(error)
    sock.close()
    assert client.recv(1000) == b""  # hung up on, no answer to a request never made


def test_headers_started_and_not_finished_get_a_408(pair):
    server, client = pair
    sock = CoalescingSocket(server, LIMITS)
    sock.deadlines.awaiting_request()
    client.sendall(b"GET / HT")
    assert sock.recv(100) == b"GET / HT"
    error, took = timed(lambda: sock.recv(100))
    assert isinstance(error, RequestTimedOut) and error.started
    sock.answer_late_headers(error)
    sock.close()
    assert client.recv(1000) == RESPONSE_408


def test_idle_time_between_requests_is_not_the_next_requests_time(pair):
    server, client = pair
    sock = CoalescingSocket(server, LIMITS)
    sock.deadlines.awaiting_request()
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")
    sock.recv(100)
    sock.deadlines.headers_read()
    sock.deadlines.awaiting_request()  # the next request: idle until its first byte
    later(0.7, lambda: client.sendall(b"G"))  # longer than both request deadlines
    data, took = timed(lambda: sock.recv(100))
    assert data == b"G" and took >= 0.6
    # from that first byte on, its headers have the header deadline again
    error, took = timed(lambda: sock.recv(100))
    assert isinstance(error, RequestTimedOut) and error.started and took <= 0.6


def test_an_idle_connection_ends_quietly_after_keepalive(pair):
    server, client = pair
    sock = CoalescingSocket(server, ReadLimits(header=0.3, request=0.6, idle=0.4))
    sock.deadlines.headers_read()
    sock.deadlines.awaiting_request()
    error, took = timed(lambda: sock.recv(100))
    assert isinstance(error, RequestTimedOut) and not error.started and took >= 0.35


def test_a_late_body_is_an_invalid_request_and_fails_the_connection(pair):
    server, client = pair
    sock = CoalescingSocket(server, LIMITS)
    sock.deadlines.awaiting_request()
    sock.deadlines.headers_read()  # the body deadline counts from the request's start
    client.sendall(b"ab")
    assert sock.recv(100) == b"ab"
    error, took = timed(lambda: sock.recv(100))
    assert isinstance(error, BodyTimedOut) and isinstance(error, InvalidRequest)
    assert "http_read_timeout" in str(error) and took <= 0.7
    assert sock.deadlines.body_failed


def test_no_limits_means_no_deadline(pair):
    server, client = pair
    sock = CoalescingSocket(server, ReadLimits(0, 0, 0))
    sock.deadlines.awaiting_request()
    later(0.5, lambda: client.sendall(b"x"))
    assert sock.recv(10) == b"x"


def test_listener_limits_by_port():
    config = ServerConfig(
        storage=StorageConfig(type="inmem"),
        listeners=(
            ListenerConfig(address="127.0.0.1:8200", http_read_header_timeout="1s", http_read_timeout="0"),
            ListenerConfig(address="10.0.0.1:9200", http_read_header_timeout="500ms", http_read_timeout="1m"),
        ),
    )
    limits = listener_limits(30.0, config)
    assert limits[8200] == ReadLimits(1.0, 0.0, 30.0) == limits[None]
    assert limits[9200] == ReadLimits(0.5, 60.0, 30.0)
    default = listener_limits(30.0, ServerConfig(storage=StorageConfig(type="inmem"), listeners=(ListenerConfig(),)))
    assert default[None] == ReadLimits(10.0, 30.0, 30.0)
