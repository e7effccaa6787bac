"""Clusters for the HA benchmarks (measuring and reporting helpers are in ``bench/ha_report.py``).

``StrongroomHA`` is N real Strongroom nodes on one Consul agent (the test
suite's ``StrongroomCluster``: initialised, unsealed, one active, the rest
performance standbys) with KV v2 at ``secret/``.  ``OpenBaoHA`` is N real
``bao server`` processes with integrated raft storage that find each other with
``retry_join``, initialised and unsealed over HTTP.  Either can have the real
HAProxy in front (``HAProxyProcess`` of ``tests/helpers/procs/haproxy_fronts.py``,
configuration rendered by ``strongroom.haproxy.render``: the same template for
both).

Every process is started in its own session and stopped by its own pid
(``bench/procs.py``); everything listens on 127.0.0.1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import kv, procs
from tests.helpers.cluster import StrongroomCluster
from tests.helpers.procs import HAProxyProcess

KV_PREFIX = "/v1/secret/data/bench/k"
HEALTH_UP = (200, 429, 473)


@dataclass(frozen=True)
class Node:
    """What a benchmark needs to know of one node: its name, its URL and ``host:port``."""

    name: str
    url: str

    @property
    def address(self) -> str:
        return self.url.split("://", 1)[1]


def health(url: str, query: str = "", timeout: float = 1.0) -> int:
    """``GET /v1/sys/health`` status code, 0 when the node does not answer."""
    try:
        return requests.get(f"{url}/v1/sys/health{query}", timeout=timeout).status_code
    except requests.RequestException:
        return 0


def mount_kv2(url: str, token: str, timeout: float = 20.0) -> None:
    """KV v2 at ``secret/`` (already mounted is fine)."""

    def mounted():
        answer = requests.post(
            f"{url}/v1/sys/mounts/secret",
            json={"type": "kv", "options": {"version": "2"}},
            headers={"X-Vault-Token": token},
            timeout=5,
        )
        if answer.status_code in (200, 204) or (answer.status_code == 400 and "already in use" in answer.text):
            return True
        raise RuntimeError(f"mounting kv-v2 answered {answer.status_code}: {answer.text[:200]}")

    procs.wait_for(mounted, timeout, f"kv-v2 at secret/ on {url}", interval=0.2)


class _Alive:
    """The ``service.check_alive()`` that ``procs.populate_kv2`` calls, for a process we did not start as a Service."""

    def __init__(self, name: str, proc):
        self.name, self._proc = name, proc

    def check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise procs.BenchSetupError(f"{self.name} exited with {self._proc.returncode}")


# --- Strongroom ---------------------------------------------------------------------------------


class StrongroomHA:
    """``n`` Strongroom nodes on one Consul agent (started here unless ``consul`` is given)."""

    kind = "strongroom"

    def __init__(
        self, workdir: Path, n: int = 3, workers: int = 2, consul: procs.Consul | None = None, extra: str = ""
    ):
        self.workdir = workdir
        self.n, self.workers = n, workers
        self.extra = extra  # server configuration lines for every node
        self.consul = consul
        self._own_consul = consul is None
        self.cluster: StrongroomCluster | None = None
        self.token = ""

    def start(self, keys: int = 64, value: str = kv.VALUE) -> StrongroomHA:
        try:
            if self.consul is None:
                self.consul = procs.start_consul(self.workdir / "consul")
            self.cluster = StrongroomCluster(
                self.workdir / "strongroom", self.consul.address, n=self.n, workers=self.workers, extra=self.extra
            )
            self.cluster.start()
            self.token = self.cluster.root_token
            active = self.cluster.active()
            mount_kv2(active.url, self.token)
            server = procs.VaultAPIServer(_Alive(self.name(active), active.proc), active.url, self.token)
            if keys:
                procs.populate_kv2(server, KV_PREFIX, keys, value)
                self.wait_standbys_read(f"{KV_PREFIX}{keys - 1}", value)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_standbys_read(self, path: str, value: str, timeout: float = 20.0) -> None:
        """Every performance standby serves ``path`` with ``value`` (its mount table includes secret/)."""
        for node in self.standbys():

            def fresh(node=node):
                answer = requests.get(node.url + path, headers={"X-Vault-Token": self.token}, timeout=5)
                return answer.status_code == 200 and answer.json()["data"]["data"]["value"] == value

            procs.wait_for(fresh, timeout, f"{node.name} to serve {path}")

    @staticmethod
    def name(server) -> str:
        return server.config_path.stem

    def nodes(self) -> list[Node]:
        return [Node(self.name(s), s.url) for s in self.cluster.nodes]

    def node(self, name: str):
        return next(s for s in self.cluster.nodes if self.name(s) == name)

    def active(self) -> Node | None:
        found = self.cluster.active()
        return Node(self.name(found), found.url) if found else None

    def standbys(self) -> list[Node]:
        return [Node(self.name(s), s.url) for s in self.cluster.standbys()]

    def pids(self, name: str) -> list[int]:
        """The node core and every process below it (gunicorn master and workers)."""
        server = self.node(name)
        return procs.with_descendants(server.pid) if server.running() else []

    def kill(self, name: str) -> list[tuple[int, int | None]]:
        """kill -9 of the node core (what an operator's ``kill -9 <pid>`` does); returns the tree it had,
        as (pid, start time), so ``restart`` can wait for the rest of it to die."""
        server = self.node(name)
        tree = procs.process_tree(server.pid)
        server.kill()
        return tree

    def restart(self, name: str, tree: list[tuple[int, int | None]], timeout: float = 60.0) -> float | None:
        """Start the killed node again on its port and unseal it.  Its gunicorn processes hold the port
        until they notice the node core died: wait for them first (at most 10 s, then SIGKILL by pid).
        Returns the monotonic time at which none of them was left (None if they had gone already)."""
        started = time.monotonic()
        gone = None
        while time.monotonic() - started < 10 and procs.survivors(tree):
            time.sleep(0.02)
            gone = time.monotonic()
        procs.kill_survivors(tree)  # still there after 10 s
        server = self.node(name)
        server.start(timeout=timeout)
        server.unseal(self.cluster.keys[:2])
        return gone

    def wait_settled(self, timeout: float = 30.0) -> Node:
        active = self.cluster.wait_settled(timeout=timeout)
        return Node(self.name(active), active.url)

    def metrics(self, node: Node) -> str:
        return requests.get(
            f"{node.url}/v1/sys/metrics?format=prometheus", headers={"X-Vault-Token": self.token}, timeout=10
        ).text

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        if self._own_consul and self.consul is not None:
            self.consul.stop()


# --- OpenBao ------------------------------------------------------------------------------------


class OpenBaoHA:
    """``n`` ``bao server`` processes, integrated raft storage, ``retry_join`` to each other.

    ``performance_multiplier`` is the raft timing knob (OpenBao's default, 0,
    means 5: a leader is presumed dead after about 5 s of silence); None
    leaves it unset, as a default installation does.  With raft, OpenBao's
    standbys serve reads themselves unless ``disable_standby_reads = true``
    (then they forward every request to the active node, as Vault's do).
    """

    kind = "openbao"

    def __init__(self, workdir: Path, n: int = 3, performance_multiplier: int | None = None, extra: str = ""):
        self.workdir = workdir
        self.n = n
        self.performance_multiplier = performance_multiplier
        self.extra = extra  # more top-level configuration, e.g. disable_standby_reads = true
        self.services: dict[str, procs.Service] = {}
        self.urls: dict[str, str] = {}
        self.token = ""
        self.unseal_key = ""
        self.rescues = 0  # restarts of a node that stayed unhealthy after its restart (wait_settled)

    def _config(self, name: str, port: int, cluster_port: int, peers: list[str]) -> Path:
        data = self.workdir / name / "raft"
        data.mkdir(parents=True, exist_ok=True)
        joins = "".join(f'  retry_join {{\n    leader_api_addr = "{peer}"\n  }}\n' for peer in peers)
        multiplier = (
            f"  performance_multiplier = {self.performance_multiplier}\n"
            if self.performance_multiplier is not None
            else ""
        )
        path = self.workdir / name / "openbao.hcl"
        path.write_text(f"""\
storage "raft" {{
  path    = "{data}"
  node_id = "{name}"
{multiplier}{joins}}}

listener "tcp" {{
  address         = "{procs.LOOPBACK}:{port}"
  cluster_address = "{procs.LOOPBACK}:{cluster_port}"
  tls_disable     = true
}}

api_addr      = "http://{procs.LOOPBACK}:{port}"
cluster_addr  = "http://{procs.LOOPBACK}:{cluster_port}"
log_level     = "warn"
{self.extra}""")
        return path

    def start(self, keys: int = 64, value: str = kv.VALUE, timeout: float = 90.0) -> OpenBaoHA:
        bao = procs.bao_binary()
        names = [f"bao{i + 1}" for i in range(self.n)]
        ports = {name: (procs.free_port(), procs.free_port()) for name in names}
        self.urls = {name: f"http://{procs.LOOPBACK}:{ports[name][0]}" for name in names}
        env = procs.bao_env()
        try:
            for name in names:
                config = self._config(name, *ports[name], [self.urls[p] for p in names if p != name])
                self.services[name] = procs.Service(
                    name, [bao, "server", "-config", str(config)], self.workdir / name / "openbao.log", env=env
                ).start()
            for name in names:
                self._wait_answering(name, timeout)
            first = names[0]
            init = requests.put(
                f"{self.urls[first]}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30
            ).json()
            self.token, self.unseal_key = init["root_token"], init["keys_base64"][0]
            self.unseal(first)
            procs.wait_for(lambda: health(self.urls[first]) == 200, timeout, f"{first} to become active")
            mount_kv2(self.urls[first], self.token)
            if keys:
                procs.populate_kv2(
                    procs.VaultAPIServer(self.services[first], self.urls[first], self.token), KV_PREFIX, keys, value
                )
            for name in names[1:]:
                self.unseal(name)
            self.wait_settled(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_answering(self, name: str, timeout: float) -> None:
        procs.wait_health(
            self.services[name], self.urls[name], (200, 429, 473, 501, 503), timeout, f"{name} on {self.urls[name]}"
        )

    def unseal(self, name: str, timeout: float = 60.0) -> None:
        """Unseal ``name``; a node joining the raft cluster takes a few tries before it accepts the key."""

        def unsealed():
            self.services[name].check_alive()
            answer = requests.put(f"{self.urls[name]}/v1/sys/unseal", json={"key": self.unseal_key}, timeout=10)
            return answer.status_code == 200 and not answer.json().get("sealed", True)

        procs.wait_for(unsealed, timeout, f"{name} to unseal", interval=0.5)

    def nodes(self) -> list[Node]:
        return [Node(name, url) for name, url in self.urls.items()]

    def active(self) -> Node | None:
        return next((n for n in self.nodes() if health(n.url) == 200), None)

    def standbys(self) -> list[Node]:
        return [n for n in self.nodes() if health(n.url) in (429, 473)]

    def pids(self, name: str) -> list[int]:
        service = self.services[name]
        return [service.pid] if service.alive() else []

    def kill(self, name: str) -> list:
        self.services[name].kill()
        return []

    def restart(self, name: str, tree: list, timeout: float = 60.0) -> float | None:
        self.services[name].start()
        self._wait_answering(name, timeout)
        self.unseal(name, timeout)
        return None

    def wait_settled(self, timeout: float = 60.0, rescue_after: float = 30.0) -> Node:
        """One active node, every other node an unsealed standby, and raft's autopilot healthy (every
        voter caught up), so the next kill leaves a quorum that can elect a leader at once.

        On this loaded 2-core machine a restarted node now and then stays unhealthy in autopilot's eyes
        (its raft listener never answers the leader).  After ``rescue_after`` seconds such a node is
        restarted once more (SIGTERM, start, unseal); ``rescues`` counts these restarts.
        """
        unhealthy: list[str] = []

        def settled():
            unhealthy.clear()
            codes = {n.name: health(n.url) for n in self.nodes()}
            if list(codes.values()).count(200) != 1 or not all(c in HEALTH_UP for c in codes.values()):
                raise RuntimeError(f"health {codes}")
            active = next(n for n in self.nodes() if codes[n.name] == 200)
            state = requests.get(
                f"{active.url}/v1/sys/storage/raft/autopilot/state", headers={"X-Vault-Token": self.token}, timeout=5
            ).json()
            data = state.get("data") or state
            servers = data.get("servers", {})
            unhealthy.extend(k for k, s in servers.items() if not s.get("healthy") and k != active.name)
            # A node that joins is a non-voter until autopilot promotes it (about 10 s of stability): kill the
            # leader before that and the survivors have no quorum at all.
            voters = [s for s in servers.values() if s.get("status") in ("leader", "voter") and s.get("healthy")]
            if not data.get("healthy") or len(voters) != self.n:
                raise RuntimeError(
                    f"autopilot healthy={data.get('healthy')}, "
                    f"{ {k: (s.get('status'), s.get('healthy')) for k, s in servers.items()} }"
                )
            return active

        try:
            return procs.wait_for(settled, min(rescue_after, timeout), "the OpenBao cluster to settle", interval=0.25)
        except procs.BenchSetupError:
            if not unhealthy or rescue_after >= timeout:
                raise
        for name in list(unhealthy):
            self.rescues += 1
            self.services[name].stop()
            self.restart(name, [])
        return procs.wait_for(settled, timeout - rescue_after, "the OpenBao cluster to settle", interval=0.25)

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


# --- HAProxy --------------------------------------------------------------------------------------


def start_haproxy(cluster, timeout: float = 20.0) -> HAProxyProcess:
    """The real HAProxy with Strongroom's template in front of ``cluster``'s nodes, once its checks
    agree with the nodes: the active node alone in the write backend."""
    haproxy = HAProxyProcess([{"name": n.name, "address": n.address} for n in cluster.nodes()]).start()
    try:
        wait_routing(haproxy, cluster, timeout)
    except BaseException:
        haproxy.stop()
        raise
    return haproxy


def wait_routing(haproxy: HAProxyProcess, cluster, timeout: float = 20.0) -> None:
    """HAProxy's backends agree with the nodes' own health answers."""

    def agreed():
        writers = {n.name for n in cluster.nodes() if health(n.url) == 200}
        readers = {n.name for n in cluster.nodes() if health(n.url, "?perfstandbyok=true") == 200}
        if len(writers) != 1:
            return False
        return haproxy.servers_up("strongroom_write") == writers and haproxy.servers_up("strongroom_read") == readers

    procs.wait_for(agreed, timeout, "HAProxy's checks to agree with the nodes", interval=0.1)
