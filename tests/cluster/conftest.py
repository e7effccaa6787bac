"""Cluster-tier fixtures: several real nodes on a real Consul."""

from __future__ import annotations

import pytest

from tests.helpers.cluster import StrongroomCluster


@pytest.fixture
def cluster(consul_agent, tmp_path):
    """Three unsealed nodes (one active, two performance standbys), stopped by pid afterwards."""
    c = StrongroomCluster(tmp_path, consul_agent.address, n=3).start()
    yield c
    c.stop()
