"""Routing through the real HAProxy in front of real nodes: writes land on the
active node, reads are served by the performance standbys, and a rolling
restart of every node fails no read."""

from __future__ import annotations

import collections
import threading
import time

import pytest
import requests

from tests.helpers.procs import HAProxyProcess, wait_until


@pytest.fixture
def front(cluster):
    proxy = HAProxyProcess(
        [{"name": n.config_path.stem, "address": f"127.0.0.1:{n.port}"} for n in cluster.nodes]
    ).start()
    active = cluster.active()
    proxy.wait_servers_up("strongroom_write", {active.config_path.stem})
    proxy.wait_servers_up("strongroom_read", {n.config_path.stem for n in cluster.nodes})
    cluster.api(active, "POST", "sys/mounts/secret", json={"type": "kv-v2"})
    yield proxy
    proxy.stop()


def _through(proxy, cluster, method, path, headers=None, **kwargs):
    return requests.request(
        method,
        f"{proxy.url}/v1/{path}",
        headers={"X-Vault-Token": cluster.root_token, **(headers or {})},
        timeout=10,
        **kwargs,
    )


def test_writes_land_on_the_active_node(cluster, front):
    active = cluster.active().config_path.stem
    for i in range(20):
        answer = _through(front, cluster, "POST", f"secret/data/w{i}", json={"data": {"i": i}})
        assert answer.status_code == 200
        assert answer.headers["X-Strongroom-Node"] == active
        assert answer.headers["X-Strongroom-Route"] == f"strongroom_write/{active}"


def test_reads_are_served_by_the_performance_standbys(cluster, front):
    _through(front, cluster, "POST", "secret/data/r", json={"data": {"v": "x"}})
    served = collections.Counter()
    for _ in range(90):
        # A fresh connection per read lets leastconn spread them.
        answer = _through(front, cluster, "GET", "secret/data/r", headers={"Connection": "close"})
        assert answer.status_code == 200 and answer.json()["data"]["data"] == {"v": "x"}
        served[answer.headers["X-Strongroom-Node"]] += 1
    standbys = {n.config_path.stem for n in cluster.standbys()}
    assert len(standbys) == 2
    assert all(served[name] >= 10 for name in standbys), served
    assert sum(served[name] for name in standbys) >= 45, served
    listed = requests.request("LIST", f"{front.url}/v1/secret/metadata/", headers={"X-Vault-Token": cluster.root_token})
    assert listed.status_code == 200 and "r" in listed.json()["data"]["keys"]
    assert listed.headers["X-Strongroom-Route"].startswith("strongroom_read/")


def test_a_clients_forwarded_mark_does_not_break_its_forwarded_requests(cluster, front):
    """A read that has to write (a token with limited uses) lands on a
    performance standby through the read backend; the standby forwards it to
    the active node.  A client's own X-Strongroom-Forwarded (the nodes' loop
    guard, api/forward.py) would make the standby refuse with 503: HAProxy
    drops it, so every such request succeeds."""
    active = cluster.active().config_path.stem
    standbys = {n.config_path.stem for n in cluster.standbys()}
    _through(front, cluster, "POST", "secret/data/marked", json={"data": {"v": "x"}})
    created = _through(front, cluster, "POST", "auth/token/create", json={"policies": ["root"], "num_uses": 100})
    token = created.json()["auth"]["client_token"]
    forwarded_by = set()
    for _ in range(60):
        answer = requests.get(
            f"{front.url}/v1/secret/data/marked",
            timeout=10,
            headers={"X-Vault-Token": token, "X-Strongroom-Forwarded": "evil", "Connection": "close"},
        )
        assert answer.status_code == 200, (answer.status_code, answer.text[:300], answer.headers)
        assert answer.json()["data"]["data"] == {"v": "x"}
        route = answer.headers["X-Strongroom-Route"]
        assert route.startswith("strongroom_read/")
        # executed by the active node whoever HAProxy chose: a standby forwarded it
        assert answer.headers["X-Strongroom-Node"] == active
        if route.split("/", 1)[1] in standbys:
            forwarded_by.add(route.split("/", 1)[1])
        if forwarded_by == standbys:
            break
    assert forwarded_by == standbys, forwarded_by


def test_a_forwarded_mark_sent_straight_to_a_node_costs_the_sender_a_503_at_worst(cluster, front):
    """Past HAProxy a client can still send the mark to a node: it only stops a
    forward (503 for that request); the active node ignores it, and a standby
    still serves its local reads and hands writes to the active node when
    asked for a redirect."""
    active, standby = cluster.active(), cluster.standbys()[0]
    mark = {"X-Strongroom-Forwarded": "evil"}
    assert cluster.api(active, "POST", "secret/data/direct", json={"data": {"v": "1"}}, headers=mark).status_code == 200
    refused = cluster.api(standby, "POST", "secret/data/direct", json={"data": {"v": "2"}}, headers=mark)
    assert refused.status_code == 503 and refused.json()["errors"]
    read = cluster.api(standby, "GET", "secret/data/direct", headers=mark)
    assert read.status_code == 200 and read.json()["data"]["data"] == {"v": "1"}
    redirected = cluster.api(
        standby,
        "POST",
        "secret/data/direct",
        json={"data": {"v": "3"}},
        headers={**mark, "X-Vault-No-Request-Forwarding": "true"},
        allow_redirects=False,
    )
    assert redirected.status_code == 307 and redirected.headers["Location"].startswith(active.url)


@pytest.mark.slow
def test_rolling_restart_fails_no_read(cluster, front):
    _through(front, cluster, "POST", "secret/data/rolling", json={"data": {"v": "steady"}})
    failures: list[str] = []
    reads = [0]
    stop = threading.Event()

    def read_loop():
        session = requests.Session()
        deadline = time.monotonic() + 180
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                answer = session.get(
                    f"{front.url}/v1/secret/data/rolling", headers={"X-Vault-Token": cluster.root_token}, timeout=10
                )
                if answer.status_code != 200 or answer.json()["data"]["data"] != {"v": "steady"}:
                    failures.append(
                        f"{answer.status_code} from {answer.headers.get('X-Strongroom-Node')} "
                        f"via {answer.headers.get('X-Strongroom-Route')}: {answer.text[:200]}"
                    )
            except requests.RequestException as exc:
                failures.append(repr(exc))
            reads[0] += 1

    reader = threading.Thread(target=read_loop, daemon=True)
    reader.start()
    try:
        for node in list(cluster.nodes):
            name = node.config_path.stem
            node.stop()
            wait_until(
                lambda name=name: name not in front.servers_up("strongroom_read"), 10, f"{name} out of the read pool"
            )
            node.start()
            node.unseal(cluster.keys[:2])
            wait_until(
                lambda name=name: name in front.servers_up("strongroom_read"), 15, f"{name} back in the read pool"
            )
            cluster.wait_settled()
    finally:
        stop.set()
        reader.join(30)
    assert reads[0] > 100
    assert failures == []
