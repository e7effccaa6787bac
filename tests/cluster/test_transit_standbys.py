"""Transit on performance standbys, through the real HAProxy front door (issue 14, item 7).

Three real nodes on a real Consul, the real HAProxy rendered from the package
template (``strongroom.haproxy.render``): the read-only transit POSTs
(encrypt, decrypt, rewrap, sign, verify, hmac, hash, random) go to the read
backend and the performance standbys serve them themselves (the node that ran
a request names itself in ``X-Strongroom-Node``; HAProxy's choice is in
``X-Strongroom-Route``; each node's own ``strongroom_http_requests_total``
counts what it answered and ``strongroom_ha_forwarded_requests_total`` what it
forwarded).  Key changes, an encrypt that creates its key, and logins are
forwarded to the active node.  A rotation on the active node is used by every
standby's next encrypt, and ciphertexts of both versions decrypt everywhere.
"""

from __future__ import annotations

import base64
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from strongroom import haproxy
from tests.helpers.cluster import StrongroomCluster
from tests.helpers.procs import HAProxyProcess, wait_until

READ, WRITE = "strongroom_read", "strongroom_write"
PLAINTEXT = base64.b64encode(b"x" * 128).decode()
#: Longest a standby may keep using the old key version after the active node
#: acknowledged a rotation (bench/README.md measures the stale-read window at
#: p99 ~15 ms; this leaves room for a loaded test machine).
STALE_READ_WINDOW = 1.0
TEMPLATE = haproxy.TEMPLATE
#: How long a node's workers may hold counts before its metrics show them.
METRICS_FLUSH = 10.0


# -- The rendered configuration ------------------------------------------------------------------


def test_template_and_module_list_the_same_transit_operations():
    from strongroom.haproxy import _ENV

    source = _ENV.loader.get_source(_ENV, TEMPLATE)[0]
    listed = re.search(r"set TRANSIT_READ_OPERATIONS = \[([^\]]*)\]", source)
    assert listed, "the template no longer lists TRANSIT_READ_OPERATIONS"
    assert tuple(re.findall(r'"(\w+)"', listed.group(1))) == haproxy.TRANSIT_READ_OPERATIONS


@pytest.mark.parametrize("mounts", [("transit",), ("transit", "team-a/transit/", "/eaas.v2"), ()])
def test_transit_routing_renders_and_haproxy_accepts_it(mounts, tmp_path):
    text = haproxy.render(haproxy.EXAMPLE_NODES, transit_mounts=mounts)
    front = text[text.index("\nfrontend strongroom\n") : text.index("\nbackend strongroom_write\n")]
    for mount in mounts:
        mount = mount.strip("/")
        for operation in haproxy.TRANSIT_READ_OPERATIONS:
            assert f" /v1/{mount}/{operation}/" in front
        assert f"acl transit_read path /v1/{mount}/hash /v1/{mount}/random\n" in front
    if mounts:
        # after the active-node override, before the method split
        rule = "use_backend strongroom_read if is_update transit_read\n"
        assert front.index("if wants_active") < front.index(rule) < front.index("if is_read\n")
    else:
        assert "transit_read" not in front
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    checked = haproxy.check(path)
    assert checked.ok, checked.output


def test_the_default_sends_the_transit_mount_to_the_read_backend():
    assert haproxy.render(haproxy.EXAMPLE_NODES) == haproxy.render(haproxy.EXAMPLE_NODES, transit_mounts=["transit"])


@pytest.mark.parametrize("bad", ["", "/", "a b", "transit/../x", "sys", "sys/x", "a//b", 7, "ta\nnsit"])
def test_a_transit_mount_that_is_not_a_mount_path_is_refused(bad):
    with pytest.raises(ValueError, match="transit_mounts"):
        haproxy.render(haproxy.EXAMPLE_NODES, transit_mounts=["transit", bad])


# -- Three real nodes behind the real HAProxy ------------------------------------------------------


@pytest.fixture
def fronted(consul_agent, tmp_path):
    """A 3-node cluster with transit mounted at ``transit`` and ``team/eaas``, behind HAProxy."""
    cluster = StrongroomCluster(tmp_path, consul_agent.address, n=3).start()
    front = None
    try:
        nodes = [{"name": n.config_path.stem, "address": n.url.split("://", 1)[1]} for n in cluster.nodes]
        front = HAProxyProcess(nodes, transit_mounts=["transit", "team/eaas"], check_interval_ms=100).start()
        active = cluster.active()
        for mount in ("transit", "team/eaas"):
            assert cluster.api(active, "POST", f"sys/mounts/{mount}", json={"type": "transit"}).status_code == 204
        front.wait_servers_up(READ, {n.config_path.stem for n in cluster.nodes})
        front.wait_servers_up(WRITE, {active.config_path.stem})
        yield cluster, front
    finally:
        if front is not None:
            front.stop()
        cluster.stop()


def name(node) -> str:
    return node.config_path.stem


def node_metrics(cluster: StrongroomCluster, node) -> str:
    """The node's own Prometheus exposition (every worker), read from the node directly."""
    result = cluster.api(node, "GET", "sys/metrics", params={"format": "prometheus"})
    result.raise_for_status()
    return result.text


def counter(text: str, metric: str, **labels: str) -> float:
    """The sum of ``metric``'s samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        label_text, value = line[len(metric) + 1 :].rsplit("} ", 1)
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def served_transit(cluster, node, route: str) -> float:
    return counter(node_metrics(cluster, node), "strongroom_http_requests_total", route=route, method="POST")


def forwarded_writes(cluster, node) -> float:
    return counter(node_metrics(cluster, node), "strongroom_ha_forwarded_requests_total", reason="write")


def post(url: str, path: str, token: str, body: dict, **headers: str) -> requests.Response:
    return requests.post(f"{url}/v1/{path}", json=body, headers={"X-Vault-Token": token, **headers}, timeout=10)


@pytest.mark.slow
def test_standbys_serve_read_only_transit_posts_sent_by_haproxy(fronted):
    cluster, front = fronted
    active, standbys = cluster.active(), cluster.standbys()
    assert len(standbys) == 2
    token = cluster.root_token
    created = post(front.url, "transit/keys/k", token, {})
    assert created.status_code == 200
    assert created.headers["X-Strongroom-Route"] == f"{WRITE}/{name(active)}"
    assert post(front.url, "transit/keys/ed", token, {"type": "ed25519"}).status_code == 200
    before = {name(n): served_transit(cluster, n, "transit/encrypt/:name") for n in cluster.nodes}
    forwards_before = {name(n): forwarded_writes(cluster, n) for n in standbys}

    def encrypt(_: int) -> tuple[str, str, str]:
        result = post(front.url, "transit/encrypt/k", token, {"plaintext": PLAINTEXT})
        assert result.status_code == 200, result.text
        assert result.json()["data"]["ciphertext"].startswith("vault:v1:")
        return result.headers["X-Strongroom-Route"], result.headers["X-Strongroom-Node"], result.json()["data"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(encrypt, range(120)))
    served = Counter(node for _, node, _ in results)
    for route, node, _ in results:
        # HAProxy's read backend chose the node, and that node answered itself (no forward)
        assert route == f"{READ}/{node}"
    for standby in standbys:
        assert served[name(standby)] >= 10, served
    # Each node counted what it served (workers flush their counts every second
    # or so), and the standbys forwarded none of it.
    for node in cluster.nodes:
        wait_until(
            lambda node=node: (
                served_transit(cluster, node, "transit/encrypt/:name") - before[name(node)] == served[name(node)]
            ),
            METRICS_FLUSH,
            f"{name(node)}'s request counter to show the {served[name(node)]} encrypts it served",
        )
    for standby in standbys:
        assert forwarded_writes(cluster, standby) == forwards_before[name(standby)]

    # Every read-only operation, on both mounts, reaches the read backend and is served there.
    ciphertext = results[0][2]["ciphertext"]
    assert post(front.url, "team/eaas/keys/k", token, {}).status_code == 200
    cases = [
        ("transit/decrypt/k", {"ciphertext": ciphertext}),
        ("transit/rewrap/k", {"ciphertext": ciphertext}),
        ("transit/hmac/k", {"input": PLAINTEXT}),
        ("transit/hmac/k/sha2-512", {"input": PLAINTEXT}),
        ("transit/sign/ed", {"input": PLAINTEXT}),
        ("transit/hash", {"input": PLAINTEXT}),
        ("transit/hash/sha2-512", {"input": PLAINTEXT}),
        ("transit/random", {}),
        ("transit/random/16", {}),
        ("team/eaas/encrypt/k", {"plaintext": PLAINTEXT}),
        ("team/eaas/encrypt/k", {"batch_input": [{"plaintext": PLAINTEXT}] * 100}),
    ]
    for path, body in cases:
        seen = set()
        for _ in range(12):
            result = post(front.url, path, token, body)
            assert result.status_code == 200, (path, result.text)
            assert result.headers["X-Strongroom-Route"] == f"{READ}/{result.headers['X-Strongroom-Node']}", path
            seen.add(result.headers["X-Strongroom-Node"])
        assert seen & {name(s) for s in standbys}, (path, seen)
    signature = post(front.url, "transit/sign/ed", token, {"input": PLAINTEXT}).json()["data"]["signature"]
    for standby in standbys:
        verified = post(standby.url, "transit/verify/ed", token, {"input": PLAINTEXT, "signature": signature})
        assert verified.json()["data"]["valid"] is True
        assert verified.headers["X-Strongroom-Node"] == name(standby)
    # Key management stays on the write backend.
    rotated = post(front.url, "transit/keys/k/rotate", token, {})
    assert rotated.headers["X-Strongroom-Route"] == f"{WRITE}/{name(active)}"


@pytest.mark.slow
def test_rotation_on_the_active_is_used_by_every_standby_within_the_window(fronted):
    cluster, front = fronted
    active, standbys = cluster.active(), cluster.standbys()
    token = cluster.root_token
    assert post(active.url, "transit/keys/r", token, {}).status_code == 200
    v1 = {name(n): post(n.url, "transit/encrypt/r", token, {"plaintext": PLAINTEXT}).json() for n in cluster.nodes}
    assert all(r["data"]["ciphertext"].startswith("vault:v1:") for r in v1.values())

    rotated = post(active.url, "transit/keys/r/rotate", token, {})
    assert rotated.status_code == 200 and rotated.json()["data"]["latest_version"] == 2
    acknowledged = time.monotonic()
    windows = {}
    for standby in standbys:

        def sees_v2(standby=standby) -> bool:
            result = post(standby.url, "transit/encrypt/r", token, {"plaintext": PLAINTEXT})
            assert result.headers["X-Strongroom-Node"] == name(standby)
            return result.json()["data"]["ciphertext"].startswith("vault:v2:")

        wait_until(sees_v2, STALE_READ_WINDOW, f"{name(standby)} to encrypt with v2 after the rotation")
        windows[name(standby)] = time.monotonic() - acknowledged
    # With the rotation's X-Vault-Index (read-your-writes) the first request already uses v2.
    index = rotated.headers["X-Vault-Index"]
    for standby in standbys:
        first = post(standby.url, "transit/encrypt/r", token, {"plaintext": PLAINTEXT}, **{"X-Vault-Index": index})
        assert first.json()["data"]["ciphertext"].startswith("vault:v2:")
        assert first.headers["X-Strongroom-Node"] == name(standby)
    # Through HAProxy too, whichever node serves.
    for _ in range(10):
        assert (
            post(front.url, "transit/encrypt/r", token, {"plaintext": PLAINTEXT})
            .json()["data"]["ciphertext"]
            .startswith("vault:v2:")
        )

    # Ciphertexts of both versions decrypt on every node, locally.
    v2 = post(front.url, "transit/encrypt/r", token, {"plaintext": PLAINTEXT}).json()["data"]["ciphertext"]
    for node in cluster.nodes:
        for ciphertext in [r["data"]["ciphertext"] for r in v1.values()] + [v2]:
            result = post(node.url, "transit/decrypt/r", token, {"ciphertext": ciphertext})
            assert result.status_code == 200, result.text
            assert result.json()["data"]["plaintext"] == PLAINTEXT
            assert result.headers["X-Strongroom-Node"] == name(node)
    # min_decryption_version set on the active node is enforced by the standbys as well: within
    # the window (a standby caches what it read, and its workers keep the key parsed), and by the
    # first request that carries the change's X-Vault-Index.
    configured = post(active.url, "transit/keys/r/config", token, {"min_decryption_version": 2})
    assert configured.status_code == 200
    acknowledged = time.monotonic()
    old = next(iter(v1.values()))["data"]["ciphertext"]
    for standby in standbys:

        def refuses_v1(standby=standby) -> bool:
            refused = post(standby.url, "transit/decrypt/r", token, {"ciphertext": old})
            assert refused.headers["X-Strongroom-Node"] == name(standby)
            return refused.status_code == 400 and "too old" in refused.json()["errors"][0]

        wait_until(refuses_v1, STALE_READ_WINDOW, f"{name(standby)} to refuse v1 after min_decryption_version 2")
        windows[f"{name(standby)} min_decryption_version"] = time.monotonic() - acknowledged
    index = configured.headers["X-Vault-Index"]
    for standby in standbys:
        for _ in range(4):  # over its workers
            refused = post(standby.url, "transit/decrypt/r", token, {"ciphertext": old}, **{"X-Vault-Index": index})
            assert refused.status_code == 400 and "too old" in refused.json()["errors"][0]
    print(f"rotation seen by the standbys after {windows} s")


@pytest.mark.slow
def test_writes_and_logins_on_a_standby_are_forwarded(fronted):
    cluster, front = fronted
    active, standby = cluster.active(), cluster.standbys()[0]
    token = cluster.root_token
    forwards = forwarded_writes(cluster, standby)
    # An encrypt that must create its key (Vault's upsert) is a write: the standby forwards it ...
    created = post(standby.url, "transit/encrypt/upserted", token, {"plaintext": PLAINTEXT})
    assert created.status_code == 200, created.text
    assert created.headers["X-Strongroom-Node"] == name(active)
    wait_until(lambda: forwarded_writes(cluster, standby) == forwards + 1, METRICS_FLUSH, "the upsert's forward")
    # ... and the next encrypt with the key it made is served locally.
    again = post(standby.url, "transit/encrypt/upserted", token, {"plaintext": PLAINTEXT})
    assert again.headers["X-Strongroom-Node"] == name(standby)
    # Through HAProxy the upsert reaches the read backend first and still lands on the active node.
    through = post(front.url, "transit/encrypt/upserted-too", token, {"plaintext": PLAINTEXT})
    assert through.status_code == 200 and through.headers["X-Strongroom-Node"] == name(active)
    assert cluster.api(active, "GET", "transit/keys/upserted-too").status_code == 200

    for path, body in [
        ("transit/keys/k2", {}),
        ("transit/keys/upserted/rotate", {}),
        ("transit/keys/upserted/config", {"deletion_allowed": True}),
    ]:
        result = post(standby.url, path, token, body)
        assert result.status_code == 200, (path, result.text)
        assert result.headers["X-Strongroom-Node"] == name(active), path
    # the upsert and these three: the encrypt served locally forwarded nothing
    wait_until(lambda: forwarded_writes(cluster, standby) == forwards + 4, METRICS_FLUSH, "four forwarded writes")
    # A login writes a token: forwarded.  The token it gives is then used on the standby, locally.
    rules = 'path "transit/encrypt/upserted" { capabilities = ["update"] }'
    assert cluster.api(active, "PUT", "sys/policy/encrypter", json={"policy": rules}).status_code == 204
    assert cluster.api(active, "POST", "sys/auth/userpass", json={"type": "userpass"}).status_code == 204
    user = cluster.api(
        active, "POST", "auth/userpass/users/alice", json={"password": "pw-123456", "token_policies": "encrypter"}
    )
    assert user.status_code == 204
    login = requests.post(f"{standby.url}/v1/auth/userpass/login/alice", json={"password": "pw-123456"}, timeout=10)
    assert login.status_code == 200, login.text
    assert login.headers["X-Strongroom-Node"] == name(active)
    client_token = login.json()["auth"]["client_token"]
    wait_until(lambda: forwarded_writes(cluster, standby) == forwards + 5, METRICS_FLUSH, "the login's forward")

    def encrypts_locally() -> bool:
        used = post(standby.url, "transit/encrypt/upserted", client_token, {"plaintext": PLAINTEXT})
        assert used.headers["X-Strongroom-Node"] == name(standby)
        return used.status_code == 200

    wait_until(encrypts_locally, STALE_READ_WINDOW, "the login's token to be usable on the standby")
    refused = post(standby.url, "transit/encrypt/other", client_token, {"plaintext": PLAINTEXT})
    assert refused.status_code == 403
