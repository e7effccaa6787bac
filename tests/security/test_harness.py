"""The tier's own fixtures: real processes, in the states the findings need."""

from __future__ import annotations


def test_the_default_node_is_active_and_refuses_no_token_requests(sec_node):
    """Harness for every finding: a real node on real Consul, active, with a root token."""
    assert sec_node.send("GET", "/v1/sys/health").status == 200
    assert sec_node.send("GET", "/v1/secret/data/x", token="").status == 403
    mounts = sec_node.ok("GET", "sys/mounts").json()
    assert mounts["secret/"]["options"]["version"] == "2"


def test_the_cluster_has_an_active_node_and_a_performance_standby_behind_haproxy(sec_cluster):
    """Harness for the findings tested through HAProxy (1, 4, 7)."""
    codes = sorted(sec_cluster.nodes.health(n) for n in sec_cluster.nodes.nodes)
    assert codes == [200, 473]
    answer = sec_cluster.front.ok("GET", "sys/mounts")
    assert answer.headers["x-strongroom-route"].startswith("strongroom_read/")
