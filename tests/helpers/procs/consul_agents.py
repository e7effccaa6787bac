"""Consul agents for the integration and cluster tiers: one ``ConsulAgent``
(``start_agent`` retries it on a port race), a ``ConsulCluster`` of several
servers bootstrapping one raft cluster, or a ``ConsulClientAgent`` (a client
agent joined to servers, as on a production host, that can be restarted with
its data dir kept), on loopback free ports.

Consul's command line comes from the product (``strongroom.devcluster.processes``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import consul
import requests

from strongroom.devcluster import processes as _processes
from tests.helpers.procs.base import AgentExited, Process, free_port, wait_until


def consul_binary() -> str:
    """Path of the consul binary: ``$CONSUL_BIN``, else ``consul`` on PATH, else
    the copy ``scripts/install-consul.sh`` puts in ``tools/``.

    Raises RuntimeError (telling how to install it) when there is none.
    """
    try:
        return _processes.consul_binary()
    except _processes.DevClusterError as exc:
        raise RuntimeError(str(exc)) from None


class ConsulAgent(Process):
    """One ``consul agent -server`` on 127.0.0.1 with its own ports and data dir.

    Alone (the default) it bootstraps itself; ``ConsulCluster`` starts several with
    ``bootstrap_expect`` and ``retry_join``.  ``extra_hcl`` is appended to the
    agent's configuration (e.g. an ``acl`` block); ``token`` is then the token
    the readiness check and ``client()`` use.  With ``https`` (or an ``"https"``
    entry in ``ports``) the API is also served over TLS on ``https_addr``;
    ``extra_hcl`` must then name ``cert_file`` and ``key_file``, and the
    readiness check keeps using plain HTTP.  Output goes to ``agent.log`` in a
    private temporary directory.  Invariants (``Process``): the process is ours
    (``pid``) and is only ever signalled by that id; ``stop()`` is idempotent and
    removes the temporary directory; DNS is off.  Use as a context manager.
    """

    name = "consul agent"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        bootstrap_expect: int = 1,
        retry_join: list[str] | None = None,
        ports: dict[str, int] | None = None,
        node_name: str | None = None,
        ready_timeout: float = 30.0,
        extra_hcl: str = "",
        token: str = "",
        https: bool = False,
    ):
        self.host = host
        self.extra_hcl = extra_hcl
        self.token = token
        self.bootstrap_expect = bootstrap_expect
        self.retry_join = list(retry_join or [])
        self.ports = ports or {name: free_port(host) for name in ("http", "serf_lan", "serf_wan", "server")}
        if https and "https" not in self.ports:
            self.ports = {**self.ports, "https": free_port(host)}
        self.node_name = node_name or f"sr-{uuid.uuid4().hex[:8]}"
        self.ready_timeout = ready_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="strongroom-consul-"))
        super().__init__(self.dir / "agent.log", scratch=self.dir)

    # -- addresses ---------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` of the HTTP API (what ``ConsulBackend.from_config`` takes)."""
        return f"{self.host}:{self.ports['http']}"

    @property
    def http_addr(self) -> str:
        """``http://host:port`` of the HTTP API."""
        return f"http://{self.address}"

    @property
    def https_addr(self) -> str:
        """``https://host:port`` of the HTTP API over TLS (only with ``https``)."""
        return f"https://{self.host}:{self.ports['https']}"

    @property
    def serf_lan_addr(self) -> str:
        """``host:port`` other agents join."""
        return f"{self.host}:{self.ports['serf_lan']}"

    @property
    def server_addr(self) -> str:
        """``host:port`` of the server RPC, as ``/v1/status/leader`` names it."""
        return f"{self.host}:{self.ports['server']}"

    # -- lifecycle ---------------------------------------------------------

    def command(self) -> list[str]:
        """The ``consul agent`` command line (Consul 1.8 flags)."""
        return _processes.consul_agent_command(
            consul_binary(),
            self.node_name,
            self.dir / "data",
            self.ports,
            host=self.host,
            bootstrap_expect=self.bootstrap_expect,
            retry_join=self.retry_join,
            extra_hcl=self.extra_hcl,
        )

    def start(self, wait: bool = True) -> ConsulAgent:
        """Start the process; with ``wait`` block until it has a leader and KV works."""
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        self._spawn(self.command())
        if wait:
            self.wait_ready()
        return self

    def has_leader(self) -> bool:
        """True when this agent knows a raft leader."""
        return bool(self._get("/v1/status/leader").json())

    def leader(self) -> str:
        """The raft leader's server address as this agent sees it ("" if none)."""
        return self._get("/v1/status/leader").json()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the agent has a leader and a KV write/read/delete works."""

        def ready() -> bool:
            if not self.has_leader():
                return False
            key = f"strongroom-test-ready/{uuid.uuid4().hex}"
            self._put(f"/v1/kv/{key}", b"ok")
            ok = self._get(f"/v1/kv/{key}?raw").content == b"ok"
            requests.delete(f"{self.http_addr}/v1/kv/{key}", headers=self._headers(), timeout=5).raise_for_status()
            return ok

        self._wait_ready(ready, timeout or self.ready_timeout, f"consul agent at {self.address}", interval=0.1)

    def client(self, **kwargs) -> consul.Consul:
        """A py-consul client for this agent's HTTP API."""
        kwargs.setdefault("token", self.token or None)
        return consul.Consul(host=self.host, port=self.ports["http"], **kwargs)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the agent's own pid (a fault, not a clean stop)."""
        if self.running():
            os.kill(self.proc.pid, sig)

    def restart(self, sig: int = signal.SIGTERM, down_for: float = 0.0, wait: bool = True) -> float:
        """Stop the agent with ``sig`` (to its own pid) and start it again on the
        same ports and data dir ``down_for`` seconds after it exited, as
        ``systemctl restart consul`` does (a real host's agent takes seconds to
        start); returns how long it was down (exit to ready, or to spawn
        without ``wait``)."""
        if self.running():
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(self.stop_timeout)
        down = time.monotonic()
        self.proc = None
        time.sleep(down_for)
        self.start(wait=wait)
        return time.monotonic() - down

    # -- plain HTTP for readiness (independent of the code under test) ----

    def _headers(self) -> dict[str, str]:
        return {"X-Consul-Token": self.token} if self.token else {}

    def _get(self, path: str) -> requests.Response:
        response = requests.get(self.http_addr + path, headers=self._headers(), timeout=5)
        response.raise_for_status()
        return response

    def _put(self, path: str, data: bytes) -> None:
        requests.put(self.http_addr + path, data=data, headers=self._headers(), timeout=5).raise_for_status()


class ConsulClientAgent(ConsulAgent):
    """A Consul *client* agent (no ``-server``) joined to ``join`` (Serf LAN
    addresses of servers), with its own ports and data dir: what runs beside
    each Strongroom node in production.  Its node's checks and services live in
    it; ``restart()`` stops and starts it with the same data dir."""

    name = "consul client agent"

    def __init__(self, join: list[str], **kwargs):
        kwargs.setdefault("node_name", f"sr-client-{uuid.uuid4().hex[:8]}")
        super().__init__(retry_join=join, **kwargs)

    def command(self) -> list[str]:
        """``consul agent`` without ``-server`` (Consul 1.8 flags); DNS off."""
        return [
            consul_binary(),
            "agent",
            f"-node={self.node_name}",
            f"-bind={self.host}",
            f"-client={self.host}",
            f"-http-port={self.ports['http']}",
            f"-serf-lan-port={self.ports['serf_lan']}",
            "-dns-port=-1",
            f"-data-dir={self.dir / 'data'}",
            "-log-level=info",
            "-disable-host-node-id",
            f"-hcl={_processes.CONSUL_AGENT_HCL}{self.extra_hcl}",
            "-retry-interval=200ms",
            *(f"-retry-join={peer}" for peer in self.retry_join),
        ]


def start_agent(attempts: int = 3, **kwargs) -> ConsulAgent:
    """Start a single bootstrapped ``ConsulAgent``, retrying on a port race.

    A free port can be taken by someone else between ``free_port`` and the
    agent binding it; such an agent exits at once, and a fresh set of ports is
    tried.  The caller owns (and must stop) the returned agent.
    """
    for attempt in range(attempts):
        agent = ConsulAgent(**kwargs)
        try:
            return agent.start()
        except AgentExited:
            agent.stop()
            if attempt == attempts - 1:
                raise
        except BaseException:
            agent.stop()
            raise
    raise AssertionError("unreachable")


class ConsulCluster:
    """``n`` Consul servers on 127.0.0.1 that bootstrap one raft cluster together.

    Invariants: every agent has distinct ports and joins the others through
    ``-retry-join``; ``start()`` returns once a leader is elected and KV works;
    ``kill(pid)`` only signals pids of this cluster's agents; ``stop()`` stops
    all of them, dead or alive.  Use as a context manager.
    """

    def __init__(self, n: int = 3, ready_timeout: float = 60.0):
        self.n = n
        self.ready_timeout = ready_timeout
        self.agents: list[ConsulAgent] = []
        # Pids this cluster killed on purpose: their exit is not a failure.
        self._killed: set[int] = set()

    def start(self) -> ConsulCluster:
        """Start all agents and wait for a leader; retry once on a port race."""
        for attempt in range(2):
            self._spawn()
            try:
                self.wait_for_leader(self.ready_timeout)
                return self
            except (TimeoutError, AgentExited):
                exited = [a for a in self.agents if not a.running()]
                self.stop()
                if attempt == 1 or not exited:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        ports = [{name: free_port() for name in ("http", "serf_lan", "serf_wan", "server")} for _ in range(self.n)]
        self.agents = []
        self._killed = set()
        for i, mine in enumerate(ports):
            peers = [f"127.0.0.1:{p['serf_lan']}" for j, p in enumerate(ports) if j != i]
            agent = ConsulAgent(bootstrap_expect=self.n, retry_join=peers, ports=mine, node_name=f"sr-server-{i}")
            self.agents.append(agent)
            agent.start(wait=False)

    def live_agents(self) -> list[ConsulAgent]:
        """Agents whose process is still running."""
        return [a for a in self.agents if a.running()]

    def agent_for_pid(self, pid: int) -> ConsulAgent:
        """The agent running as ``pid``; KeyError if it is not one of ours."""
        for agent in self.agents:
            if agent.proc is not None and agent.pid == pid:
                return agent
        raise KeyError(f"pid {pid} is not an agent of this cluster")

    def leader(self) -> ConsulAgent | None:
        """The agent every live agent names as raft leader, or None."""
        seen = set()
        for agent in self.live_agents():
            try:
                seen.add(agent.leader())
            except requests.RequestException:
                return None
        if len(seen) != 1:
            return None
        (addr,) = seen
        for agent in self.live_agents():
            if agent.server_addr == addr:
                return agent
        return None

    def leader_pid(self) -> int:
        """Pid of the current leader (waits up to 10 s for one)."""
        return wait_until(self.leader, 10.0, "a consul leader").pid

    def wait_for_leader(self, timeout: float = 30.0) -> ConsulAgent:
        """Block until all live agents agree on a live leader and a KV round trip
        through it works; returns the leader.  Raises AgentExited at once if an
        agent this cluster did not kill has exited."""

        def elected() -> ConsulAgent | None:
            for agent in self.agents:
                if not agent.running() and agent.pid not in self._killed:
                    raise AgentExited(f"agent {agent.node_name} exited; log tail:\n{agent.log_tail()}")
            leader = self.leader()
            if leader is None:
                return None
            leader.wait_ready(timeout=5.0)
            return leader

        return wait_until(elected, timeout, "a consul leader", interval=0.1, fatal=(AgentExited,))

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the cluster agent running as ``pid``; its exit is then expected."""
        agent = self.agent_for_pid(pid)
        self._killed.add(pid)
        agent.kill(sig)

    def stop(self) -> None:
        """Stop every agent (each by its own pid) and remove their directories."""
        for agent in self.agents:
            agent.stop()

    def __enter__(self) -> ConsulCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()
