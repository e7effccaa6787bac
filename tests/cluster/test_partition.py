"""The active node cut off from Consul (and from everything else) by taking
down the link of its network namespace, under load through HAProxy."""

from __future__ import annotations

import time

import pytest

from tests.helpers.cluster import StrongroomCluster
from tests.helpers.faults import AUDIT_TO_OUTPUT, Harness
from tests.helpers.netns import NetnsHost
from tests.helpers.procs import ConsulAgent, wait_until

pytestmark = pytest.mark.slow


def test_active_cut_off_from_consul(tmp_path):
    with NetnsHost() as host:
        # Consul listens on the root side of the link, so only the namespaced node loses it.
        with ConsulAgent(host=host.root_address) as consul:
            placement = [(host.address, host.name), ("127.0.0.1", None), ("127.0.0.1", None)]
            cluster = StrongroomCluster(
                tmp_path, consul.address, n=3, placement=placement, extra=AUDIT_TO_OUTPUT
            ).start()
            try:
                h = Harness(cluster, consul.client())
            except BaseException:
                cluster.stop()
                raise
            try:
                cut_off = cluster.nodes[0]
                assert cluster.active() is cut_off
                at = time.monotonic()
                host.cut()
                wait_until(lambda: h.load.acked_since(at) >= 20, 20, "writes to resume on another node")
                survivors = cluster.nodes[1:]
                new_active = cluster.wait_settled(expect_nodes=survivors)
                assert new_active is not cut_off
                gap = h.load.longest_gap(at - 1)
                host.heal()
                # Back on the network, the old active node must come back as a standby.
                wait_until(lambda: cluster.health(cut_off) in (429, 473), 15, "old active to rejoin as standby")
                h.finish(cluster.nodes)
                assert cluster.active() is new_active
                assert gap < 10.0
            finally:
                h.close()
                cluster.stop()
