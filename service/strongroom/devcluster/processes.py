"""The processes of a dev cluster: where their binaries are, which ports they
get, waiting for them, and stopping them.

Every process runs in a session of its own and is stopped only by its own pid,
after checking that the pid still runs a command line naming the cluster's
directory (pids get reused).

The test helpers (``tests/helpers/procs/``) and the benchmarks
(``bench/procs.py``) start the same processes and use these pieces too; the
product never imports from them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[3]
BUNDLED_CONSUL = REPO / "tools" / "consul" / "usr" / "bin" / "consul"
HOST = "127.0.0.1"

# Consul's defaults are tuned for WANs; these make elections and startup take
# about a second on loopback and keep the agent from phoning home.
# Telemetry: Prometheus scrapes /v1/agent/metrics?format=prometheus (monitoring/prometheus, job consul).
CONSUL_AGENT_HCL = (
    "performance { raft_multiplier = 1 }\ndisable_update_check = true\n"
    'telemetry { prometheus_retention_time = "60s" disable_hostname = true }\n'
)

T = TypeVar("T")


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
    """``$CONSUL_BIN``, else ``consul`` on PATH, else the copy ``scripts/install-consul.sh``
    puts in the repository's ``tools/``.  A ``$CONSUL_BIN`` that is not executable is an error,
    not a reason to look further.  Raises DevClusterError telling how to install it."""
    env = os.environ.get("CONSUL_BIN")
    if env:
        if os.access(env, os.X_OK):
            return env
        raise DevClusterError(f"CONSUL_BIN={env!r} is not an executable file: run `make deps`")
    found = shutil.which("consul") or (str(BUNDLED_CONSUL) if os.access(BUNDLED_CONSUL, os.X_OK) else None)
    if found is None:
        raise DevClusterError(
            "consul binary not found (CONSUL_BIN, PATH, tools/consul): run `make deps` "
            "or `bash scripts/install-consul.sh`"
        )
    return found


def consul_agent_command(
    binary: str,
    node: str,
    data_dir: Path,
    ports: Mapping[str, int],
    *,
    host: str = HOST,
    bootstrap_expect: int = 1,
    retry_join: Iterable[str] = (),
    extra_hcl: str = "",
) -> list[str]:
    """``consul agent -server`` on ``host`` (Consul 1.8 flags), DNS off, ``CONSUL_AGENT_HCL`` plus
    ``extra_hcl``.  ``ports`` names ``http``, ``serf_lan``, ``serf_wan``, ``server`` and, to serve
    the API over TLS too, ``https``.  With ``bootstrap_expect`` 1 the agent bootstraps itself;
    ``retry_join`` lists the Serf LAN addresses of its peers."""
    cmd = [
        binary,
        "agent",
        "-server",
        f"-node={node}",
        f"-bind={host}",
        f"-client={host}",
        f"-http-port={ports['http']}",
        f"-serf-lan-port={ports['serf_lan']}",
        f"-serf-wan-port={ports['serf_wan']}",
        f"-server-port={ports['server']}",
        "-dns-port=-1",
        f"-data-dir={data_dir}",
        "-log-level=warn",
        "-disable-host-node-id",
        f"-hcl={CONSUL_AGENT_HCL}{extra_hcl}",
    ]
    if "https" in ports:
        cmd.append(f"-https-port={ports['https']}")
    cmd.append("-bootstrap" if bootstrap_expect == 1 else f"-bootstrap-expect={bootstrap_expect}")
    peers = list(retry_join)
    if peers:
        # The default retry interval is 30 s: far too slow when the peers start at the same moment.
        cmd += ["-retry-interval=200ms", *(f"-retry-join={peer}" for peer in peers)]
    return cmd


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


def cmdline(pid: int) -> str | None:
    """The command line of ``pid``, its arguments joined by spaces; None when /proc cannot tell."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def exit_status(child: Child) -> int | None:
    """The exit status of a child this process started, None while it runs (or when not ours)."""
    return child.popen.poll() if child.popen is not None else None


def runs(child: Child) -> bool:
    """``child.pid`` is alive and still the process we started (its command line names our directory)."""
    if child.popen is not None:
        return child.popen.poll() is None
    if not pid_alive(child.pid):
        return False
    command = cmdline(child.pid)
    return command is None or child.marker in command  # no /proc: trust the pid


class WaitTimedOut(DevClusterError):
    """``wait`` reached its deadline: ``last_error`` is the predicate's last exception (None if it
    never raised), ``last`` its last outcome, exception or falsy value."""

    def __init__(self, message: str, last_error: Exception | None, last: object):
        super().__init__(message)
        self.last_error = last_error
        self.last = last


def wait(
    predicate: Callable[[], T],
    deadline: float,
    what: str,
    interval: float = 0.1,
    fatal: tuple[type[BaseException], ...] = (DevClusterError,),
) -> T:
    """Poll until ``predicate`` is truthy and return that; WaitTimedOut naming ``what`` once the
    ``time.monotonic()`` ``deadline`` has passed.  Exceptions of a ``fatal`` type propagate at
    once, any other means "not yet".  The predicate runs at least once."""
    last_error: Exception | None = None
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except fatal:
            raise
        except Exception as exc:  # a process that is still starting refuses connections
            last_error = last = exc
        if time.monotonic() >= deadline:
            raise WaitTimedOut(f"timed out waiting for {what} (last error: {last_error!r})", last_error, last)
        time.sleep(interval)


class Ports:
    """Ports free for TCP and UDP at once (Serf uses both), never handed out twice by one
    ``Ports``: consecutive from ``base``, else whichever the kernel picks.  Thread-safe."""

    def __init__(self, base: int | None = None):
        self._next = base
        self._given: set[int] = set()
        self._lock = threading.Lock()

    def take(self, host: str = HOST) -> int:
        """The next port on ``host``; DevClusterError when a ``base`` port is in use or none is free."""
        last: OSError | None = None
        for _ in range(200):
            with self._lock:
                port = 0 if self._next is None else self._next
                if self._next is not None:
                    self._next += 1
            try:
                port = _probe(host, port)
            except OSError as exc:
                if port:
                    raise DevClusterError(f"port {port} on {host} is in use: choose another --base-port") from None
                last = exc
                continue
            with self._lock:
                if port not in self._given:
                    self._given.add(port)
                    return port
        raise DevClusterError(f"no free TCP+UDP port on {host} (last error: {last!r})")


def _probe(host: str, port: int) -> int:
    """Bind ``port`` (0: one the kernel picks) for TCP, then the same for UDP; return it, or OSError."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        # Connections of a previous run in TIME_WAIT do not make a port busy.
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((host, port))
        port = tcp.getsockname()[1]
        udp.bind((host, port))
    return port


_PROCESS_PORTS = Ports()


def free_port(host: str = HOST) -> int:
    """A port free for TCP and UDP on ``host`` right now, never returned twice in this process
    (two servers started back to back must not get the same one before either has bound it)."""
    return _PROCESS_PORTS.take(host)


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
