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

import os
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


def _report(layout: Layout, at: float, what: str) -> float:
    """Print the longest write gap after ``at`` beside the longest before it (the noise
    floor of this machine at this moment); return the former."""
    load = layout.harness.load
    before = [t for *_, t in load.acked if t <= at]
    floor = max((b - a for a, b in zip(before, before[1:], strict=False)), default=0.0)
    gap = load.longest_gap(at - 1)
    print(f"\n{what}: longest write gap {gap:.2f} s (before it: {floor:.2f} s); load average {os.getloadavg()[0]:.1f}")
    return gap


#: How long a restarted agent stays down: a real host's agent takes seconds to stop and start.
DOWN_FOR = 3.0


@pytest.mark.parametrize(
    ("sig", "bound"),
    [
        # A client agent stopped with SIGTERM leaves the cluster (Consul's default for clients):
        # the servers invalidate the node's session at once and a standby takes over.
        (signal.SIGTERM, 5.0),
        # Killed (or configured not to leave): the servers keep the session until Serf finds the
        # agent dead or the agent is back, when the node destroys it; the gap is the outage.
        (signal.SIGKILL, DOWN_FOR + 5.0),
    ],
    ids=["sigterm", "sigkill"],
)
def test_restart_of_the_active_nodes_agent(layout, sig, bound):
    active = layout.cluster.active()
    at = time.monotonic()
    down = layout.agent_of(active).restart(sig, down_for=DOWN_FOR)
    _settle_and_check(layout, at)
    gap = _report(layout, at, f"the active node's agent restarted ({signal.Signals(sig).name}, down {down:.2f} s)")
    assert gap < bound


def test_restart_of_a_standbys_agent_costs_no_writes(layout):
    """Killed, the harder case: the standby's session outlives the outage on the servers
    or is invalidated when the agent comes back with the check critical; either way the
    standby comes back as a performance standby and the active node never notices."""
    sig = signal.SIGKILL
    active = layout.cluster.active()
    standby = next(n for n in layout.cluster.nodes if n is not active)
    at = time.monotonic()
    down = layout.agent_of(standby).restart(sig, down_for=DOWN_FOR)
    _settle_and_check(layout, at)
    gap = _report(layout, at, f"a standby's agent restarted ({signal.Signals(sig).name}, down {down:.2f} s)")
    assert layout.cluster.active() is active
    assert layout.cluster.health(standby) == 473
    assert gap < 2.0


def test_restart_of_the_consul_leader_server(layout):
    """One of three servers, the raft leader (the worst case), stopped with SIGTERM as
    systemd does (a server does not leave) and started again with its data dir: the
    others elect a leader and the client agents find it; the outage does not count."""
    leader = layout.servers.agent_for_pid(layout.servers.leader_pid())
    at = time.monotonic()
    down = leader.restart(signal.SIGTERM, down_for=DOWN_FOR)
    _settle_and_check(layout, at)
    _report(layout, at, f"the Consul leader server restarted (down {down:.2f} s)")
    assert layout.harness.load.longest_gap(at - 1) < 5.0
