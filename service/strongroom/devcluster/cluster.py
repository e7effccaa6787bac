"""One dev cluster: start Consul, the nodes and HAProxy, initialise and unseal,
keep ``cluster.json`` current, stop what was started.

``DevCluster(options).start()`` does it all and returns what ``cluster.json``
holds; ``children_from(path)`` reads back the processes a ``cluster.json``
names, for ``--stop`` and to refuse a second cluster in the same directory.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from strongroom import haproxy
from strongroom.devcluster.processes import (
    HOST,
    Child,
    DevClusterError,
    Ports,
    consul_agent_command,
    consul_binary,
    exit_status,
    runs,
    stop_children,
    strongroom_command,
    wait,
)

STATE_FILE = "cluster.json"
STORAGE_PREFIX = "strongroom/"
HEALTH_CODES = (200, 429, 473, 501, 503)


@dataclass(frozen=True)
class Options:
    """What ``strongroom dev-cluster`` was asked for."""

    directory: Path
    nodes: int = 3
    consul_servers: int = 1
    workers: int = 2
    base_port: int | None = None
    shares: int = 5
    threshold: int = 3
    timeout: float = 120.0


class DevCluster:
    """The processes of one dev cluster and the state written to ``cluster.json``."""

    def __init__(self, options: Options):
        self.options = options
        self.dir = options.directory.resolve()
        self.children: list[Child] = []
        self.state: dict = {}
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: never through a proxy from the environment

    # -- start -------------------------------------------------------------

    def start(self) -> dict:
        """Start everything, initialise, unseal; returns what ``cluster.json`` holds.
        On any failure, everything already started is stopped before the error propagates."""
        opts = self.options
        if opts.nodes < 1 or opts.consul_servers < 1 or opts.workers < 1:
            raise DevClusterError("--nodes, --consul-servers and --workers must be at least 1")
        consul_binary(), haproxy.haproxy_binary()  # fail before starting anything
        deadline = time.monotonic() + opts.timeout
        self._prepare_directory()
        ports = Ports(opts.base_port)
        front, stats = ports.take(), ports.take()
        node_ports = [ports.take() for _ in range(opts.nodes)]
        consul_ports = [
            {k: ports.take() for k in ("http", "serf_lan", "serf_wan", "server")} for _ in range(opts.consul_servers)
        ]
        try:
            consul = self._start_consul(consul_ports, deadline)
            nodes = self._start_nodes(node_ports, consul, deadline)
            self._initialise(nodes, deadline)
            self.state["haproxy"] = self._start_haproxy(nodes, front, stats, deadline)
            self.state["ready"] = True
            self._save()
        except BaseException:
            self.stop()
            raise
        return self.state

    def _prepare_directory(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        previous = self.dir / STATE_FILE
        if previous.exists():
            running = [c.name for c in children_from(previous) if runs(c)]
            if running:
                raise DevClusterError(
                    f"a dev cluster is already running in {self.dir} ({', '.join(running)}): "
                    f"stop it with `strongroom dev-cluster --stop --dir {self.dir}`"
                )
        for old in self.dir.glob("consul*/"):
            shutil.rmtree(old)  # a fresh cluster: old data would be initialised with keys we no longer have
        self.state = {
            "dir": str(self.dir),
            "ready": False,
            "consul": {},
            "consul_servers": [],
            "nodes": [],
            "haproxy": {},
        }

    def _spawn(self, name: str, cmd: list[str], marker: str) -> Child:
        with open(self.dir / f"{name}.log", "wb") as log:
            popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
            )
        child = Child(name, popen.pid, marker, popen)
        self.children.append(child)
        return child

    def _exited(self, child: Child) -> DevClusterError:
        log = self.dir / f"{child.name}.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else ""
        return DevClusterError(f"{child.name} exited with {exit_status(child)}; {log}:\n{tail}")

    def _start_consul(self, ports: list[dict[str, int]], deadline: float) -> list[str]:
        binary = consul_binary()
        serf = [f"{HOST}:{p['serf_lan']}" for p in ports]
        started = []
        for i, mine in enumerate(ports, start=1):
            data = self.dir / f"consul{i}" / "data"
            cmd = consul_agent_command(
                binary,
                f"dev-consul{i}",
                data,
                mine,
                bootstrap_expect=len(ports),
                retry_join=[peer for peer in serf if peer != serf[i - 1]],
            )
            child = self._spawn(f"consul{i}", cmd, str(data))
            address = f"{HOST}:{mine['http']}"
            started.append(address)
            self.state["consul_servers"].append({"name": child.name, "address": address, "pid": child.pid})
        self.state["consul"] = dict(self.state["consul_servers"][0])
        self._save()
        for child, address in zip(self.children, started, strict=False):
            wait(functools.partial(self._consul_ready, child, address), deadline, f"consul at {address}")
        return started

    def _consul_ready(self, child: Child, address: str) -> bool:
        if not runs(child):
            raise self._exited(child)
        url = f"http://{address}/v1"
        if not self.http.get(f"{url}/status/leader", timeout=2).json():
            return False
        key = f"{url}/kv/strongroom-dev-cluster/ready-{os.getpid()}"
        self.http.put(key, data=b"ok", timeout=2).raise_for_status()
        ok = self.http.get(key + "?raw", timeout=2).content == b"ok"
        self.http.delete(key, timeout=2)
        return ok

    def _start_nodes(self, ports: list[int], consul: list[str], deadline: float) -> list[dict]:
        nodes = []
        for i, port in enumerate(ports, start=1):
            name, api_addr = f"node{i}", f"http://{HOST}:{port}"
            config = self.dir / f"{name}.hcl"
            config.write_text(
                f'storage "consul" {{\n  address = "{consul[(i - 1) % len(consul)]}"\n'
                f'  path    = "{STORAGE_PREFIX}"\n}}\n\n'
                f'listener "tcp" {{\n  address     = "{HOST}:{port}"\n  tls_disable = true\n}}\n\n'
                f'api_addr     = "{api_addr}"\nnode_id      = "{name}"\ncluster_name = "strongroom-dev"\n'
                f"workers      = {self.options.workers}\n"
            )
            child = self._spawn(name, strongroom_command() + ["server", "-config", str(config)], str(config))
            nodes.append(
                {
                    "name": name,
                    "api_addr": api_addr,
                    "address": f"{HOST}:{port}",
                    "pid": child.pid,
                    "config": str(config),
                    "log": str(self.dir / f"{name}.log"),
                    "_child": child,
                }
            )
        self.state["nodes"] = [{k: v for k, v in n.items() if k != "_child"} for n in nodes]
        self._save()
        for node in nodes:
            wait(functools.partial(self._answers, node), deadline, f"{node['name']} at {node['api_addr']}")
        return nodes

    def _answers(self, node: dict) -> bool:
        return self._health(node)[0] in HEALTH_CODES

    def _health(self, node: dict, query: str = "") -> tuple[int, dict]:
        child = node["_child"]
        if child.popen.poll() is not None:
            raise self._exited(child)
        response = self.http.get(f"{node['api_addr']}/v1/sys/health{query}", timeout=2)
        return response.status_code, response.json()

    def _call(self, node: dict, method: str, path: str, body: dict | None = None, token: str = "") -> dict:
        headers = {"X-Vault-Token": token} if token else {}
        response = self.http.request(method, f"{node['api_addr']}/v1/{path}", json=body, headers=headers, timeout=30)
        if response.status_code >= 400:
            raise DevClusterError(f"{method} {path} on {node['name']}: {response.status_code} {response.text}")
        return response.json() if response.content else {}

    def _initialise(self, nodes: list[dict], deadline: float) -> None:
        opts = self.options
        first = nodes[0]
        init = self._call(first, "PUT", "sys/init", {"secret_shares": opts.shares, "secret_threshold": opts.threshold})
        token = init["root_token"]
        self.state.update(root_token=token, unseal_keys=init["keys"], unseal_keys_b64=init["keys_base64"])
        self._save()
        # KV v2 at secret/ before the other nodes unseal, so they load a mount
        # table that has it, whether or not table invalidation reaches them.
        self._unseal(first, init["keys"], deadline)
        # Unsealed alone, the first node takes the lock; writes need it active.
        wait(lambda: self._health(first)[0] == 200, deadline, f"{first['name']} to become the active node")
        if "secret/" not in self._call(first, "GET", "sys/mounts", token=token).get("data", {}):
            self._call(
                first,
                "POST",
                "sys/mounts/secret",
                {"type": "kv", "options": {"version": "2"}, "description": "key/value secret storage"},
                token,
            )
        for node in nodes[1:]:
            self._unseal(node, init["keys"], deadline)

    def _unseal(self, node: dict, keys: list[str], deadline: float) -> None:
        wait(lambda: self._health(node)[1].get("initialized"), deadline, f"{node['name']} to see the seal config")
        for key in keys[: self.options.threshold]:
            if not self._call(node, "PUT", "sys/unseal", {"key": key}).get("sealed", True):
                break
        wait(lambda: self._health(node)[0] in (200, 429, 473), deadline, f"{node['name']} to be unsealed")

    def _start_haproxy(self, nodes: list[dict], front: int, stats: int, deadline: float) -> dict:
        socket_path = self.dir / "haproxy.sock"
        config = self.dir / "haproxy.cfg"
        config.write_text(
            haproxy.render(
                [{"name": n["name"], "address": n["address"]} for n in nodes],
                bind=f"{HOST}:{front}",
                stats_bind=f"{HOST}:{stats}",
                stats_socket=str(socket_path) if len(str(socket_path)) < 100 else None,
            )
        )
        checked = haproxy.check(config)
        if not checked.ok:
            raise DevClusterError(f"haproxy -c rejected {config}:\n{checked.output}")
        child = self._spawn("haproxy", [haproxy.haproxy_binary(), "-f", str(config), "-db"], str(config))
        stats_url = f"http://{HOST}:{stats}/stats"
        state = {
            "address": f"http://{HOST}:{front}",
            "stats": stats_url,
            "metrics": f"http://{HOST}:{stats}/metrics",
            "pid": child.pid,
            "config": str(config),
        }
        self.state["haproxy"] = state
        self._save()

        def routing() -> bool:
            if not runs(child):
                raise self._exited(child)
            # HAProxy starts every server UP and only its checks take them
            # out: ready once both backends agree with what the nodes say.
            states = haproxy.server_states(self.http.get(f"{stats_url};csv", timeout=2).text)
            writers = {n["name"] for n in nodes if self._health(n)[0] == 200}
            readers = {n["name"] for n in nodes if self._health(n, "?perfstandbyok=true")[0] == 200}
            return (
                bool(writers)
                and haproxy.servers_up(states, "strongroom_write") == writers
                and haproxy.servers_up(states, "strongroom_read") == readers
            )

        wait(routing, deadline, "haproxy to mark the nodes up", interval=0.2)
        return state

    # -- state file --------------------------------------------------------

    def _save(self) -> None:
        """Write ``cluster.json`` atomically, readable by its owner only (it holds the keys)."""
        path = self.dir / STATE_FILE
        tmp = path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(self.state, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)

    # -- stop --------------------------------------------------------------

    def stop(self) -> None:
        """Stop every process this object started (HAProxy, nodes, then Consul), each by its pid."""
        order = sorted(
            self.children, key=lambda c: 0 if c.name == "haproxy" else 2 if c.name.startswith("consul") else 1
        )
        stop_children(order)
        self.children = []

    def usage(self) -> str:
        """How to use the running cluster, as printed after the start."""
        s = self.state
        lines = [
            f"Strongroom dev cluster in {self.dir}: {len(s['nodes'])} nodes, "
            f"{len(s['consul_servers'])} Consul server(s), HAProxy in front.",
            "",
            f"    export VAULT_ADDR={s['haproxy']['address']}",
            f"    export VAULT_TOKEN={s['root_token']}",
            "",
            f"HAProxy stats: {s['haproxy']['stats']}   Prometheus: {s['haproxy']['metrics']}",
            f"Consul:        http://{s['consul']['address']} (HTTP API)",
        ]
        lines += [f"{n['name']}:         {n['api_addr']} (pid {n['pid']})" for n in s["nodes"]]
        lines += [
            "",
            f"Unseal keys and root token: {self.dir / STATE_FILE}; logs: {self.dir}/*.log",
            "KV v2 is mounted at secret/. This cluster is for development only: its keys are on disk.",
            f"Stop it with Ctrl-C, or `strongroom dev-cluster --stop --dir {self.dir}`.",
        ]
        return "\n".join(lines)


def children_from(path: Path) -> list[Child]:
    """The processes a ``cluster.json`` names, in stopping order (HAProxy, nodes, Consul)."""
    state = json.loads(path.read_text())
    children = []
    if state.get("haproxy", {}).get("pid"):
        children.append(Child("haproxy", state["haproxy"]["pid"], state["haproxy"]["config"]))
    children += [Child(n["name"], n["pid"], n["config"]) for n in state.get("nodes", [])]
    data = Path(state["dir"])
    children += [Child(c["name"], c["pid"], str(data / c["name"] / "data")) for c in state.get("consul_servers", [])]
    return children
