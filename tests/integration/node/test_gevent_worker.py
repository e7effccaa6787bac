"""The gevent worker (server/worker.py) on a real node: fair turns, prompt stops.

A gevent greenlet runs until it waits on a socket.  Here one client pipelines
a few hundred reads on one kept-alive connection, so its next request is always
already there, and the dev node (in-memory storage, one worker) never waits on
anything: without the yield between requests, a second client's write would be
served only after every pipelined read.  Counting which reads saw the write
tells the order the worker served them in, with no clock involved.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import uuid

import requests

from tests.helpers.procs import StrongroomDevServer

READS = 300


def _read_responses(sock: socket.socket, count: int, out: list[bytes]) -> None:
    """Collect ``count`` HTTP responses (each with a Content-Length) from ``sock``."""
    buffer = b""
    while len(out) < count:
        head, sep, rest = buffer.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(rest) >= length:
                out.append(rest[:length])
                buffer = rest[length:]
                continue
        data = sock.recv(65536)
        if not data:
            return
        buffer += data


def _request(method: str, path: str, token: str, body: bytes = b"") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: node\r\nX-Vault-Token: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_a_pipelining_client_does_not_hold_the_worker(strongroom_dev_server):
    server = strongroom_dev_server
    token = server.root_token
    path = f"/v1/secret/data/fairness-{uuid.uuid4().hex}"
    assert server.api("POST", path[4:], json={"data": {"v": "old"}}).status_code == 200

    busy = socket.create_connection((server.host, server.port), timeout=30)
    other = socket.create_connection((server.host, server.port), timeout=30)
    try:
        answers: list[bytes] = []
        reader = threading.Thread(target=_read_responses, args=(busy, READS, answers), daemon=True)
        reader.start()
        busy.sendall(_request("GET", path, token) * READS)
        other.sendall(_request("POST", path, token, json.dumps({"data": {"v": "new"}}).encode()))
        written: list[bytes] = []
        _read_responses(other, 1, written)
        reader.join(60)
    finally:
        busy.close()
        other.close()

    assert len(written) == 1 and json.loads(written[0])["data"]["version"] == 2
    assert len(answers) == READS
    values = [json.loads(answer)["data"]["data"]["v"] for answer in answers]
    # Reads before the write see "old", after it "new"; the write was served
    # long before the pipeline was done.
    assert values == sorted(values, key=lambda v: v == "new")
    assert values.count("new") >= READS // 2, f"the write waited behind {values.count('old')} of {READS} reads"


def test_sigterm_does_not_wait_for_idle_kept_alive_connections():
    """gunicorn waits up to graceful_timeout (10 s) for connections to end; a
    kept-alive connection between requests must not hold the node that long."""
    with StrongroomDevServer() as server:
        session = requests.Session()
        assert session.get(server.url + "/v1/sys/health", timeout=10).status_code == 200
        os.kill(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError("the node was still running 5 s after SIGTERM with one idle connection") from None
        session.close()
