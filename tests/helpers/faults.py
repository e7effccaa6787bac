"""The fault tier's harness: a cluster behind the real HAProxy under a steady
write load, with audit to each node's own output and the lock history, and the
checks every fault test ends with."""

from __future__ import annotations

import json

from tests.helpers.cluster import StrongroomCluster
from tests.helpers.load import LockHistory, WriteLoad
from tests.helpers.procs import HAProxyProcess, wait_until

#: The node configuration the harness needs (``StrongroomCluster(..., extra=AUDIT_TO_OUTPUT)``): every
#: node audits to its own output through a device declared in the configuration.
AUDIT_TO_OUTPUT = 'audit "file" "stdout" {\n  options {\n    file_path = "stdout"\n  }\n}\n'


class Harness:
    """A cluster, HAProxy in front, audit to each node's own output, and the lock history."""

    def __init__(self, cluster: StrongroomCluster, consul_client, haproxy_host: str = "127.0.0.1"):
        self.cluster = cluster
        self.consul = consul_client
        self.haproxy = HAProxyProcess(
            [{"name": n.config_path.stem, "address": f"{n.host}:{n.port}"} for n in cluster.nodes], host=haproxy_host
        ).start()
        self.history = self.load = None
        try:
            self._prepare(cluster, consul_client)
        except BaseException:
            self.close()  # nothing this harness started outlives a failed set-up
            raise

    def _prepare(self, cluster: StrongroomCluster, consul_client) -> None:
        active = cluster.active()
        self.haproxy.wait_servers_up("strongroom_write", {active.config_path.stem})
        token = cluster.root_token

        def audits(node) -> bool:
            return "stdout/" in cluster.api(node, "GET", "sys/audit").json().get("data", {})

        for node in cluster.nodes:  # declared, so written by the active node and loaded by every node
            wait_until(lambda node=node: audits(node), 10, f"the declared audit device on {node.config_path.stem}")
        assert cluster.api(active, "POST", "sys/mounts/kv", json={"type": "kv"}).status_code == 204
        self.history = LockHistory(consul_client, cluster.prefix + "core/lock").start()
        self.load = WriteLoad(self.haproxy.url, token).start()
        wait_until(lambda: len(self.load.acked) >= 20, 10, "load running")

    def read(self, key: str):
        answer = self.cluster.api(self.cluster.active(), "GET", f"kv/{key}")
        return answer.json()["data"]["value"] if answer.status_code == 200 else None

    def finish(self, survivors) -> None:
        """Stop the load and check the three invariants."""
        self.load.stop()
        self.cluster.wait_settled(expect_nodes=survivors, timeout=15)
        self.history.stop()
        assert self.load.unacknowledged_or_wrong(self.read) == []
        violations = writes_outside_lock(self.cluster, self.history, self.consul)
        assert violations == []
        # Not vacuous: the declared audit device logged the accepted writes.
        assert any(successful_writes(node) for node in self.cluster.nodes), "no node audited a write"

    def close(self) -> None:
        if self.load is not None:
            self.load.stop()
        if self.history is not None:
            self.history.stop()
        self.haproxy.stop()


def successful_writes(node) -> list[str]:
    """Paths of the write responses this node's audit device logged without error."""
    paths = []
    for line in node.log().splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        request = entry.get("request") or {}
        if entry.get("type") != "response" or entry.get("error"):
            continue
        if request.get("operation") in ("create", "update") and request.get("path", "").startswith("kv/"):
            paths.append(request["path"])
    return paths


def writes_outside_lock(cluster: StrongroomCluster, history: LockHistory, consul_client) -> list[str]:
    """Every write a node's audit log shows as accepted must have committed in
    Consul while that node held the lock (compared by Consul index, not clocks)."""
    reader = next(n for n in cluster.nodes if cluster.health(n) == 200)
    uuid = cluster.api(reader, "GET", "sys/mounts").json()["data"]["kv/"]["uuid"]
    violations = []
    for node in cluster.nodes:
        name = node.config_path.stem
        for path in successful_writes(node):
            _, entry = consul_client.kv.get(f"{cluster.prefix}logical/{uuid}/{path[len('kv/') :]}")
            if entry is None:
                violations.append(f"{name} acknowledged {path} but it is not in Consul")
                continue
            holder = history.holder_at(int(entry["CreateIndex"]))
            if holder != name:
                violations.append(
                    f"{name} acknowledged {path} committed at index {entry['CreateIndex']} while {holder} held the lock"
                )
    return violations
