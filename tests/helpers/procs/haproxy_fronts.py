"""The real HAProxy for the cluster tier: ``HAProxyProcess``, the front door
rendered by ``strongroom.haproxy``, and ``HAProxyTLSFront``, a TLS terminator in
TCP mode before one upstream.  Both check their configuration with
``haproxy -c``, run ``haproxy -f <cfg> -db`` and are ready once their ports
accept connections (``_HAProxy``).
"""

from __future__ import annotations

import csv
import io
import socket
import tempfile
from pathlib import Path
from typing import Self

import requests

from strongroom import haproxy as _haproxy
from tests.helpers.procs.base import Process, free_port, wait_until


class _HAProxy(Process):
    """One ``haproxy -f haproxy.cfg -db`` with ``haproxy.cfg`` and ``haproxy.log``
    in a private temporary directory (``dir_prefix``).  The subclass writes
    ``config_path`` and sets ``port`` (and lists in ``_ready_ports`` every port
    that must accept connections before the start returns).
    """

    name = "haproxy"
    port: int

    def __init__(self, *, host: str, ready_timeout: float, dir_prefix: str):
        self.host = host
        self.ready_timeout = ready_timeout
        self.dir = Path(tempfile.mkdtemp(prefix=dir_prefix))
        super().__init__(self.dir / "haproxy.log", scratch=self.dir)
        self.config_path = self.dir / "haproxy.cfg"

    def _ready_ports(self) -> tuple[int, ...]:
        return (self.port,)

    def start(self) -> Self:
        """Check the configuration, start haproxy, wait until its ports accept connections."""
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        checked = _haproxy.check(self.config_path)
        if not checked.ok:
            raise RuntimeError(f"haproxy -c rejected {self.config_path}:\n{checked.output}")
        self._spawn([_haproxy.haproxy_binary(), "-f", str(self.config_path), "-db"], cwd=self.dir)

        def accepting() -> bool:
            for port in self._ready_ports():
                with socket.create_connection((self.host, port), timeout=1):
                    pass
            return True

        self._wait_ready(accepting, self.ready_timeout, f"{self.name} on {self.host}:{self.port}")
        return self


class HAProxyProcess(_HAProxy):
    """The real ``haproxy -f <cfg> -db`` in front of ``nodes``, on loopback free ports.

    The configuration is ``strongroom.haproxy.render(nodes, **render_options)``
    with the front door on ``port`` and the stats page (``/stats``) and the
    Prometheus exporter (``/metrics``) on ``stats_port``; it is checked with
    ``haproxy -c`` before the start.  ``-db`` keeps haproxy in the foreground,
    its log (``log stdout``) goes to ``haproxy.log`` in a private temporary
    directory.  Invariants: the process runs in its own session and is only
    ever signalled by its own pid; ``stop()`` is idempotent and removes the
    directory.  Use as a context manager.
    """

    def __init__(
        self,
        nodes: list[dict],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        stats_port: int | None = None,
        ready_timeout: float = 10.0,
        **render_options,
    ):
        self.port = port or free_port(host)
        self.stats_port = stats_port or free_port(host)
        super().__init__(host=host, ready_timeout=ready_timeout, dir_prefix="strongroom-haproxy-")
        self.config_text = _haproxy.render(
            nodes, bind=f"{host}:{self.port}", stats_bind=f"{host}:{self.stats_port}", **render_options
        )
        self.config_path.write_text(self.config_text)

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the front door (what ``VAULT_ADDR`` takes)."""
        scheme = "https" if " ssl crt " in self.config_text else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def stats_url(self) -> str:
        """The HTML stats page (append ``;csv`` for machine-readable states)."""
        return f"http://{self.host}:{self.stats_port}/stats"

    @property
    def metrics_url(self) -> str:
        """The built-in Prometheus exporter."""
        return f"http://{self.host}:{self.stats_port}/metrics"

    def _ready_ports(self) -> tuple[int, ...]:
        return (self.port, self.stats_port)

    def server_states(self) -> dict[tuple[str, str], str]:
        """``{(backend, server): status}`` from the stats CSV, e.g.
        ``{("strongroom_write", "node1"): "UP", ("strongroom_read", "BACKEND"): "DOWN", ...}``."""
        return _haproxy.server_states(requests.get(self.stats_url + ";csv", timeout=5).text)

    def stats_rows(self) -> list[dict[str, str]]:
        """Every row of the stats CSV (frontends, backends, servers) as a dict of its columns
        (``pxname``, ``svname``, ``status``, ``scur``, ...)."""
        text = requests.get(self.stats_url + ";csv", timeout=5).text.lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def servers_up(self, backend: str) -> set[str]:
        """Names of the servers of ``backend`` HAProxy currently considers up."""
        return _haproxy.servers_up(self.server_states(), backend)

    def wait_servers_up(self, backend: str, servers: set[str], timeout: float = 10.0) -> None:
        """Block until exactly ``servers`` are up in ``backend`` (by HAProxy's checks)."""
        seen: list[set[str]] = [set()]

        def settled() -> bool:
            seen[0] = self.servers_up(backend)
            return seen[0] == set(servers)

        try:
            wait_until(settled, timeout, f"servers {sorted(servers)} up in {backend}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; up: {sorted(seen[0])}") from None


class HAProxyTLSFront(_HAProxy):
    """The real ``haproxy`` ending TLS on a free loopback port and passing each
    connection on to ``upstream`` (``host:port``) in TCP mode.

    ``pem`` holds the server certificate followed by its key; ``bind_options``
    go on the ``bind`` line (``ssl-max-ver TLSv1.2`` makes a front that speaks
    no TLS 1.3).  The configuration is checked with ``haproxy -c`` first.  Same
    invariants as ``HAProxyProcess``: own session, signalled only by its pid,
    ``stop()`` idempotent and removing the private directory.
    """

    name = "haproxy TLS front"

    def __init__(
        self, upstream: str, pem: str, *, bind_options: str = "", host: str = "127.0.0.1", ready_timeout: float = 10.0
    ):
        self.port = free_port(host)
        super().__init__(host=host, ready_timeout=ready_timeout, dir_prefix="strongroom-tls-front-")
        self.config_path.write_text(
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n"
            f"frontend tls\n  bind {host}:{self.port} ssl crt {pem} {bind_options}\n  default_backend upstream\n"
            f"backend upstream\n  server upstream {upstream}\n"
        )

    @property
    def address(self) -> str:
        """``https://host:port`` of the front."""
        return f"https://{self.host}:{self.port}"
