"""Restarting a node's local Consul agent, or one Consul server, under a steady
write load through the real HAProxy (issue 13).

Production layout on loopback: three Consul servers and, beside each
Strongroom node, a Consul client agent of its own that holds the node's
liveness check and service registration.  An agent restart (stop, start with
the same data dir: an upgrade, a config change) must cost at most about a
failover when it is the active node's agent, and nothing beyond a small bound
when it is a standby's.  After each restart: no acknowledged write lost, no
write accepted outside the lock, exactly one node active and registered with
the ``active`` tag, the others as performance standbys.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.helpers.cluster import StrongroomCluster
from tests.helpers.faults import AUDIT_TO_OUTPUT, Harness
from tests.helpers.procs import ConsulCluster, wait_until
from tests.helpers.procs.consul_agents import ConsulClientAgent

pytestmark = pytest.mark.slow


class Layout:
    """Three servers, one client agent per node, the cluster and the harness."""

    def __init__(self, servers: ConsulCluster, agents: list[ConsulClientAgent], harness: Harness):
        self.servers = servers
        self.agents = agents
        self.harness = harness
        self.cluster = harness.cluster

    def agent_of(self, node) -> ConsulClientAgent:
        return self.agents[self.cluster.nodes.index(node)]

    def registered_tags(self) -> dict[str, list[str]]:
        """node id -> tags of its service instance, as the catalog (the servers) says."""
        _, instances = self.servers.agents[0].client().catalog.service(self.cluster.service)
        return {i["ServiceMeta"].get("node_id", ""): sorted(i["ServiceTags"]) for i in instances}

    def registration_matches_roles(self) -> bool:
        tags = self.registered_tags()
        want = {}
        for node in self.cluster.nodes:
            code = self.cluster.health(node)
            role = {200: "active", 473: "performance-standby", 429: "standby"}.get(code)
            if role is None:
                return False
            want[node.config_path.stem] = role
        return (
            set(tags) == set(want)
            and all(want[n] in tags[n] for n in want)
            and sum("active" in t for t in tags.values()) == 1
        )


@pytest.fixture
def layout(tmp_path) -> Iterator[Layout]:
    servers = ConsulCluster(n=3).start()
    agents: list[ConsulClientAgent] = []
    cluster = None
    try:
        joins = [a.serf_lan_addr for a in servers.agents]
        for _ in range(3):
            agent = ConsulClientAgent(join=joins)
            agents.append(agent)
            agent.start()
        cluster = StrongroomCluster(
            tmp_path, agents[0].address, n=3, consul_addresses=[a.address for a in agents], extra=AUDIT_TO_OUTPUT
        ).start()
        harness = Harness(cluster, servers.agents[0].client())
        try:
            yield Layout(servers, agents, harness)
        finally:
            harness.close()
    finally:
        if cluster is not None:
            cluster.stop()
        for agent in agents:
            agent.stop()
        servers.stop()


def _settle_and_check(layout: Layout, since: float) -> None:
    h = layout.harness
    wait_until(lambda: h.load.acked_since(since) >= 50, 90, "writes through HAProxy to resume")
    wait_until(layout.registration_matches_roles, 15, "registrations that match the roles")
    h.finish(layout.cluster.nodes)
    assert layout.registration_matches_roles(), layout.registered_tags()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_restart_of_the_active_nodes_agent(layout, sig):
    active = layout.cluster.active()
    at = time.monotonic()
    down = layout.agent_of(active).restart(sig, down_for=3.0)
    _settle_and_check(layout, at)
    gap = layout.harness.load.longest_gap(at - 1)
    print(f"\nactive's agent restarted ({signal.Signals(sig).name}, down {down:.2f} s): longest write gap {gap:.2f} s")
    assert gap < 5.0
