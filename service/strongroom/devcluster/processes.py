"""The processes of a dev cluster: where their binaries are, which ports they
get, waiting for them, and stopping them.

Every process runs in a session of its own and is stopped only by its own pid,
after checking that the pid still runs a command line naming the cluster's
directory (pids get reused).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[3]
BUNDLED_CONSUL = REPO / "tools" / "consul" / "usr" / "bin" / "consul"
HOST = "127.0.0.1"


class DevClusterError(Exception):
    """The cluster could not be started or stopped; the message says why and what to do."""


@dataclass
class Child:
    """One process this cluster started: ``marker`` is a string its command line contains."""

    name: str
    pid: int
    marker: str
    popen: subprocess.Popen | None = field(default=None, repr=False)


def consul_binary() -> str:
    """``$CONSUL_BIN``, else ``consul`` on PATH, else the repository's ``tools/`` copy."""
    env = os.environ.get("CONSUL_BIN")
    if env:
        if os.access(env, os.X_OK):
            return env
        raise DevClusterError(f"CONSUL_BIN={env!r} is not an executable file: run `make deps`")
    found = shutil.which("consul") or (str(BUNDLED_CONSUL) if os.access(BUNDLED_CONSUL, os.X_OK) else None)
    if found is None:
        raise DevClusterError("consul binary not found (CONSUL_BIN, PATH, tools/consul): run `make deps`")
    return found


def strongroom_command() -> list[str]:
    """The ``strongroom`` entry point of this interpreter's environment."""
    script = Path(sys.executable).parent / "strongroom"
    return [str(script)] if script.exists() else [sys.executable, "-m", "strongroom.cli"]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not reaped by its new parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def runs(child: Child) -> bool:
    """``child.pid`` is alive and still the process we started (its command line names our directory)."""
    if child.popen is not None:
        return child.popen.poll() is None
    if not pid_alive(child.pid):
        return False
    try:
        cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc: trust the pid
    return child.marker in cmdline


def wait(predicate: Callable[[], object], deadline: float, what: str, interval: float = 0.1):
    """Poll until ``predicate`` is truthy; DevClusterError naming ``what`` at the deadline.
    DevClusterError from the predicate propagates at once, other errors mean "not yet"."""
    last: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except DevClusterError:
            raise
        except Exception as exc:  # a process that is still starting refuses connections
            last = exc
        if time.monotonic() >= deadline:
            raise DevClusterError(f"timed out waiting for {what} (last error: {last!r})")
        time.sleep(interval)


class Ports:
    """Consecutive ports from ``base``, or free ones (TCP and UDP, as Serf needs), never twice."""

    def __init__(self, base: int | None):
        self._next = base
        self._given: set[int] = set()

    def take(self) -> int:
        for _ in range(200):
            if self._next is not None:
                port, self._next = self._next, self._next + 1
            else:
                port = 0
            port = self._probe(port)
            if port is None:
                continue
            if port not in self._given:
                self._given.add(port)
                return port
        raise DevClusterError("no free port found on 127.0.0.1")

    def _probe(self, port: int) -> int | None:
        fixed = port != 0
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                # Connections of a previous run in TIME_WAIT do not make a port busy.
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((HOST, port))
                port = tcp.getsockname()[1]
                udp.bind((HOST, port))
        except OSError:
            if fixed:
                raise DevClusterError(f"port {port} on {HOST} is in use: choose another --base-port") from None
            return None
        return port


def stop_children(children: list[Child], timeout: float = 15.0) -> list[str]:
    """SIGTERM each group in turn (HAProxy, then the nodes together, then Consul), SIGKILL
    to the process group of any still running after ``timeout``; returns the names stopped."""
    stopped = []
    groups: list[list[Child]] = []
    for child in children:
        kind = child.name.rstrip("0123456789")
        if groups and groups[-1][0].name.rstrip("0123456789") == kind:
            groups[-1].append(child)
        else:
            groups.append([child])
    for group in groups:
        running = [c for c in group if runs(c)]
        for child in running:
            os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in running:
            while runs(child) and time.monotonic() < deadline:
                time.sleep(0.05)
            if runs(child):
                try:  # each child leads its own session and process group
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if child.popen is not None:
                child.popen.wait(5)
            stopped.append(child.name)
    return stopped
