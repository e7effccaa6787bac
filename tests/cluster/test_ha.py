"""HA behaviour a user relies on: one active node, standbys that forward,
performance standbys that read locally, and fast, clean hand-overs."""

import time

from tests.helpers.procs import wait_until


def test_one_active_and_performance_standbys(cluster):
    active = cluster.active()
    codes = sorted(cluster.health(n) for n in cluster.nodes)
    assert codes == [200, 473, 473]
    for node in cluster.nodes:
        leader = cluster.api(node, "GET", "sys/leader").json()
        assert leader["ha_enabled"] is True
        assert leader["leader_address"] == active.url
        assert leader["is_self"] is (node is active)
    standby = cluster.standbys()[0]
    health = standby.api("GET", "sys/health").json()
    assert health["standby"] is True and health["performance_standby"] is True
    assert standby.api("GET", "sys/health", params={"perfstandbyok": "true"}).status_code == 200
    nodes = cluster.api(active, "GET", "sys/ha-status").json()["data"]["nodes"]
    assert sorted(n["api_address"] for n in nodes) == sorted(n.url for n in cluster.nodes)
    assert [n["active_node"] for n in nodes].count(True) == 1


def test_writes_forwarded_reads_local(cluster):
    active = cluster.active()
    standby = cluster.standbys()[0]
    assert cluster.api(standby, "POST", "sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
    write = cluster.api(
        standby, "POST", "secret/data/app", json={"data": {"v": "1"}}, headers={"X-Forwarded-For": "10.9.9.9"}
    )
    assert write.status_code == 200
    assert write.headers["X-Strongroom-Node"] == active.config_path.stem
    assert int(write.headers["X-Vault-Index"]) > 0
    read = cluster.api(standby, "GET", "secret/data/app")
    assert read.status_code == 200 and read.json()["data"]["data"] == {"v": "1"}
    assert read.headers["X-Strongroom-Node"] == standby.config_path.stem
    forced = cluster.api(standby, "GET", "secret/data/app", headers={"X-Vault-Forward": "active-node"})
    assert forced.headers["X-Strongroom-Node"] == active.config_path.stem


def test_no_request_forwarding_gives_307(cluster):
    active = cluster.active()
    standby = cluster.standbys()[0]
    cluster.api(active, "POST", "sys/mounts/kv", json={"type": "kv"})
    result = cluster.api(
        standby,
        "PUT",
        "kv/x?a=b",
        json={"v": "1"},
        headers={"X-Vault-No-Request-Forwarding": "true"},
        allow_redirects=False,
    )
    assert result.status_code == 307
    assert result.headers["Location"] == active.url + "/v1/kv/x?a=b"


def test_plain_standby_forwards_everything(consul_agent, tmp_path):
    from tests.helpers.cluster import StrongroomCluster

    c = StrongroomCluster(tmp_path, consul_agent.address, n=2, extra="disable_performance_standby = true\n").start()
    try:
        active = c.active()
        standby = [n for n in c.nodes if n is not active][0]
        assert c.health(standby) == 429
        c.api(active, "POST", "sys/mounts/kv", json={"type": "kv"})
        c.api(active, "PUT", "kv/x", json={"v": "1"})
        read = c.api(standby, "GET", "kv/x")
        assert read.json()["data"] == {"v": "1"}
        assert read.headers["X-Strongroom-Node"] == active.config_path.stem
    finally:
        c.stop()


def test_changes_on_active_reach_standby_caches(cluster):
    active = cluster.active()
    standby = cluster.standbys()[0]
    cluster.api(active, "POST", "sys/mounts/kv", json={"type": "kv"})
    cluster.api(active, "PUT", "kv/a", json={"v": "1"})
    cluster.api(active, "PUT", "sys/policy/r", json={"policy": 'path "kv/*" { capabilities = ["read"] }'})
    created = cluster.api(active, "POST", "auth/token/create", json={"policies": ["r"]})
    assert created.status_code == 200, created.text
    child = created.json()["auth"]["client_token"]
    assert cluster.api(standby, "GET", "kv/a", token=child).status_code == 200
    # Policy change on the active node: the standby must stop allowing the read.
    cluster.api(active, "PUT", "sys/policy/r", json={"policy": 'path "x/*" { capabilities = ["read"] }'})
    wait_until(lambda: cluster.api(standby, "GET", "kv/a", token=child).status_code == 403, 2, "policy invalidation")
    # Revocation on the active node is honoured at once.
    cluster.api(active, "PUT", "auth/token/revoke", json={"token": child})
    assert cluster.api(standby, "GET", "auth/token/lookup-self", token=child).status_code == 403
    # Mount disabled on the active node.
    cluster.api(active, "DELETE", "sys/mounts/kv")
    wait_until(lambda: cluster.api(standby, "GET", "kv/a").status_code == 404, 2, "mount invalidation")
    # Keyring rotation on the active node: new writes stay readable on the standby.
    assert cluster.api(active, "POST", "sys/rotate").status_code == 204
    cluster.api(active, "POST", "sys/mounts/kv2", json={"type": "kv-v2"})
    cluster.api(active, "POST", "kv2/data/after", json={"data": {"v": "rotated"}})
    wait_until(lambda: cluster.api(standby, "GET", "sys/key-status").json().get("term") == 2, 2, "keyring on standby")
    assert cluster.api(standby, "GET", "kv2/data/after").json()["data"]["data"] == {"v": "rotated"}


def test_read_your_writes_with_index(cluster):
    active = cluster.active()
    standby = cluster.standbys()[0]
    cluster.api(active, "POST", "sys/mounts/secret", json={"type": "kv-v2"})
    for i in range(30):
        write = cluster.api(active, "POST", "secret/data/ryw", json={"data": {"i": i}})
        index = write.headers["X-Vault-Index"]
        read = cluster.api(standby, "GET", "secret/data/ryw", headers={"X-Vault-Index": index})
        assert read.json()["data"]["data"] == {"i": i}
    # A policy created on the active node is usable at once on a standby with the index.
    write = cluster.api(
        active, "PUT", "sys/policy/fresh", json={"policy": 'path "secret/*" { capabilities = ["read"] }'}
    )
    token = cluster.api(active, "POST", "auth/token/create", json={"policies": ["fresh"]})
    read = cluster.api(
        standby,
        "GET",
        "secret/data/ryw",
        token=token.json()["auth"]["client_token"],
        headers={"X-Vault-Index": token.headers.get("X-Vault-Index") or write.headers["X-Vault-Index"]},
    )
    assert read.status_code == 200


def test_service_registration_tags(cluster, consul_agent):
    client = consul_agent.client()

    def tags():
        _, entries = client.catalog.service(cluster.service)
        return {e["ServiceMeta"]["node_id"]: set(e["ServiceTags"]) for e in entries}

    active = cluster.active()
    wait_until(lambda: sum("active" in t for t in tags().values()) == 1 and len(tags()) == 3, 5, "registration")
    current = tags()
    assert "active" in current[active.config_path.stem]
    assert all("initialized" in t for t in current.values())
    assert sum("performance-standby" in t for t in current.values()) == 2


def test_step_down_hands_over_quickly(cluster):
    active = cluster.active()
    standby = cluster.standbys()[0]
    # step-down needs sudo and is forwarded from a standby to the active node.
    started = time.monotonic()
    assert cluster.api(standby, "PUT", "sys/step-down").status_code == 204
    new_active = wait_until(lambda: (a := cluster.active()) is not None and a is not active and a, 5, "new active")
    assert time.monotonic() - started < 1.0
    assert new_active is not active
    cluster.wait_settled()


def test_sealing_the_active_hands_over(cluster):
    active = cluster.active()
    started = time.monotonic()
    assert cluster.api(active, "PUT", "sys/seal").status_code == 204
    others = [n for n in cluster.nodes if n is not active]
    cluster.wait_settled(expect_nodes=others, timeout=5)
    assert time.monotonic() - started < 2.0
    assert cluster.health(active) == 503


def test_sigterm_releases_the_lock(cluster):
    active = cluster.active()
    started = time.monotonic()
    active.stop()
    others = [n for n in cluster.nodes if n is not active]
    cluster.wait_settled(expect_nodes=others, timeout=5)
    assert time.monotonic() - started < 2.5


def test_a_node_active_again_does_not_serve_what_it_cached_before(consul_agent, tmp_path):
    """The active node's read cache lives for one active period: what another
    active node wrote in between is what it serves when it leads again."""
    from tests.helpers.cluster import StrongroomCluster

    cluster = StrongroomCluster(tmp_path, consul_agent.address, n=2).start()
    try:
        first = cluster.active()
        second = next(n for n in cluster.nodes if n is not first)
        cluster.api(first, "POST", "sys/mounts/kv", json={"type": "kv"})
        cluster.api(first, "PUT", "kv/a", json={"v": "1"})
        for _ in range(10):  # cached by the first node's workers
            assert cluster.api(first, "GET", "kv/a").json()["data"] == {"v": "1"}
        assert cluster.api(first, "PUT", "sys/step-down").status_code == 204
        wait_until(lambda: cluster.health(second) == 200, 5, "second node active")
        assert cluster.api(second, "PUT", "kv/a", json={"v": "2"}).status_code == 204
        # The first node, now a performance standby, reads storage.
        assert cluster.api(first, "GET", "kv/a").json()["data"] == {"v": "2"}
        assert cluster.api(second, "PUT", "sys/step-down").status_code == 204
        wait_until(lambda: cluster.health(first) == 200, 5, "first node active again")
        for _ in range(10):
            assert cluster.api(first, "GET", "kv/a").json()["data"] == {"v": "2"}
    finally:
        cluster.stop()


def test_a_killed_active_node_is_replaced_without_waiting_for_its_ttl(consul_agent, tmp_path):
    """kill -9 of the active node's core: gunicorn and its workers die with it,
    the standby's watch sees its connection end and the next one refused, and
    frees the lock at once.  With a 10 s TTL check, only the watch can hand
    over within seconds; the data written before is there."""
    from tests.helpers.cluster import StrongroomCluster

    cluster = StrongroomCluster(tmp_path, consul_agent.address, n=2, extra_storage='  check_timeout = "10s"\n').start()
    try:
        old = cluster.active()
        new = next(n for n in cluster.nodes if n is not old)
        cluster.api(old, "POST", "sys/mounts/kv", json={"type": "kv"})
        assert cluster.api(old, "PUT", "kv/before", json={"v": "1"}).status_code == 204
        wait_until(lambda: _metric(cluster, new, "strongroom_ha_leader_watched") == 1.0, 5, "the standby's watch")
        assert _metric(cluster, new, "strongroom_ha_leader_gone_total") == 0.0
        killed = time.monotonic()
        old.kill()
        wait_until(lambda: cluster.health(new) == 200, 8, "the standby to become active")
        assert time.monotonic() - killed < 3.0  # the TTL alone would take 10 s and more
        assert cluster.api(new, "GET", "kv/before").json()["data"] == {"v": "1"}
        assert _metric(cluster, new, "strongroom_ha_leader_gone_total") == 1.0
    finally:
        cluster.stop()


def _metric(cluster, node, name: str) -> float | None:
    """The value of metric ``name`` (no labels) on ``node``, None before it appears."""
    text = cluster.api(node, "GET", "sys/metrics", params={"format": "prometheus"}).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
