"""A performance standby's read cache, fed by the active node's change log (storage/changes.py).

Two real nodes (one active, one performance standby) on a real Consul.  Proves
that a read at the standby carrying the ``X-Vault-Index`` of a write acknowledged
by the active node never returns anything older than that write (KV v2 and
KV v1 values, deletes, token revocations; many writers at once), that a
revoked token is refused at once even without the index, that the
standby really serves from its cache (its storage cache hits grow) and in the
steady state makes no Consul read per KV read (its Consul GET count stays
flat over hundreds of reads), and that when the log moves past the standby
(records pruned before it saw them) it drops its whole cache rather than
keep serving a value storage no longer holds.
"""

from __future__ import annotations

import re
import threading
import uuid

import pytest
import requests

from tests.helpers.cluster import StrongroomCluster
from tests.helpers.procs import wait_until

CONSUL_GETS = 'strongroom_storage_operation_duration_seconds_count{backend="consul",operation="get"}'
CACHE_HITS = 'strongroom_cache_requests_total{cache="storage",result="hit"}'


@pytest.fixture
def pair(consul_agent, tmp_path):
    c = StrongroomCluster(tmp_path, consul_agent.address, n=2, workers=2).start()
    try:
        active = c.active()
        standby = c.standbys()[0]
        assert c.health(standby) == 473
        token = c.root_token
        assert c.api(active, "POST", "sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        assert c.api(active, "POST", "sys/mounts/kv", json={"type": "kv"}).status_code == 204
        wait_until(
            lambda: read(standby, "kv/absent", token).status_code == 404, 10, "the standby to see the new mounts"
        )
        yield c, active, standby, token
    finally:
        c.stop()


def read(node, path: str, token: str, index: str | None = None) -> requests.Response:
    headers = {"X-Vault-Token": token}
    if index:
        headers["X-Vault-Index"] = index
    return requests.get(f"{node.url}/v1/{path}", headers=headers, timeout=10)


def write(node, method: str, path: str, token: str, **kwargs) -> requests.Response:
    answer = requests.request(method, f"{node.url}/v1/{path}", headers={"X-Vault-Token": token}, timeout=10, **kwargs)
    assert answer.status_code in (200, 204), answer.text
    assert answer.headers.get("X-Vault-Index"), f"{method} {path} answered without X-Vault-Index"
    return answer


def metric(node, token: str, name: str) -> float:
    text = node.api("GET", "sys/metrics", token=token, params={"format": "prometheus"}).text
    found = re.findall(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found[0]) if found else 0.0


def test_reads_carrying_the_index_of_an_acknowledged_write_never_go_back(pair):
    c, active, standby, token = pair
    hits_before = metric(standby, token, CACHE_HITS)
    stale: list = []

    def writer(n: int) -> None:
        for i in range(40):
            index = write(active, "POST", f"secret/data/w{n}", token, json={"data": {"i": i}}).headers["X-Vault-Index"]
            for _ in range(3):
                answer = read(standby, f"secret/data/w{n}", token, index)
                got = answer.json()["data"]["data"] if answer.status_code == 200 else answer.status_code
                if got != {"i": i}:
                    stale.append((n, i, got))
            index = write(active, "PUT", f"kv/w{n}", token, json={"i": i}).headers["X-Vault-Index"]
            answer = read(standby, f"kv/w{n}", token, index)
            if answer.status_code != 200 or answer.json()["data"] != {"i": i}:
                stale.append((n, i, answer.status_code, answer.text[:100]))
        index = write(active, "DELETE", f"kv/w{n}", token).headers["X-Vault-Index"]
        if read(standby, f"kv/w{n}", token, index).status_code != 404:
            stale.append((n, "deleted", "still served"))
        index = write(active, "DELETE", f"secret/metadata/w{n}", token).headers["X-Vault-Index"]
        if read(standby, f"secret/data/w{n}", token, index).status_code != 404:
            stale.append((n, "metadata deleted", "still served"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert stale == []
    # The standby did serve from its cache meanwhile (not only from Consul).
    wait_until(lambda: metric(standby, token, CACHE_HITS) > hits_before + 100, 10, "standby cache hits counted")


def test_a_revoked_token_is_refused_by_the_standby_at_once(pair):
    c, active, standby, token = pair
    write(active, "PUT", "kv/app", token, json={"n": 1})
    assert (
        write(
            active, "PUT", "sys/policies/acl/reader", token, json={"policy": 'path "kv/*" { capabilities = ["read"] }'}
        )
        is not None
    )
    for _ in range(20):
        created = write(active, "POST", "auth/token/create", token, json={"policies": ["reader"]})
        child = created.json()["auth"]["client_token"]
        index = created.headers["X-Vault-Index"]
        assert read(standby, "kv/app", child, index).status_code == 200
        for _ in range(3):  # cached on the standby (reads carrying no index)
            assert read(standby, "kv/app", child).status_code == 200
        revoked = write(active, "POST", "auth/token/revoke", token, json={"token": child})
        # At once, without the index: the revocation was answered only once
        # the standby's cache could no longer vouch for the token.
        assert read(standby, "kv/app", child).status_code == 403
        assert read(standby, "kv/app", child, revoked.headers["X-Vault-Index"]).status_code == 403


def test_steady_state_reads_make_no_consul_call(pair):
    c, active, standby, token = pair
    for n in range(20):
        write(active, "POST", f"secret/data/k{n}", token, json={"data": {"n": n}})
    session = requests.Session()
    session.headers["X-Vault-Token"] = token

    def read_all() -> None:
        for n in range(20):
            answer = session.get(f"{standby.url}/v1/secret/data/k{n}", timeout=10)
            assert answer.status_code == 200 and answer.json()["data"]["data"] == {"n": n}

    for _ in range(3):  # every worker has them cached
        read_all()
    # Flushed counts settle (workers write theirs at least every second).
    settled = []
    wait_until(
        lambda: (
            settled.append(metric(standby, token, CONSUL_GETS)) or (len(settled) > 2 and settled[-1] == settled[-3])
        ),
        15,
        "the standby's Consul GET count to settle",
        interval=0.6,
    )
    gets_before, hits_before = settled[-1], metric(standby, token, CACHE_HITS)
    for _ in range(25):
        read_all()  # 500 KV reads
    wait_until(lambda: metric(standby, token, CACHE_HITS) >= hits_before + 500, 10, "the 500 reads' cache hits counted")
    gets = metric(standby, token, CONSUL_GETS) - gets_before
    assert gets < 10, f"{gets:.0f} Consul GETs for 500 steady-state reads at the standby"


def test_a_log_pruned_past_the_standby_drops_its_whole_cache(pair, consul_agent):
    """A change storage holds but the standby was never told of (a value put
    back in Consul directly, bypassing the log) stays invisible to its cache
    until the log says records were pruned beyond its position: then the whole
    cache goes, and the standby reads what storage holds."""
    c, active, standby, token = pair
    write(active, "PUT", "kv/pruned", token, json={"v": "old"})
    consul = f"http://{consul_agent.address}/v1/kv/{c.prefix}"
    keys = requests.get(consul + "logical/", params={"keys": ""}, timeout=5).json()
    (key,) = [k for k in keys if k.endswith("/pruned")]
    old_ciphertext = requests.get(f"http://{consul_agent.address}/v1/kv/{key}", params={"raw": ""}, timeout=5).content
    index = write(active, "PUT", "kv/pruned", token, json={"v": "new"}).headers["X-Vault-Index"]
    for _ in range(16):  # each worker that serves one of these caches "new"
        assert read(standby, "kv/pruned", token, index).json()["data"] == {"v": "new"}
    # Storage goes back to the old value with no change record: the standby's cache does not know.
    # (Only workers that served a read above hold "new"; one that served none reads storage.)
    assert requests.put(f"http://{consul_agent.address}/v1/kv/{key}", data=old_ciphertext, timeout=5).json() is True
    assert "new" in {read(standby, "kv/pruned", token).json()["data"]["v"] for _ in range(16)}
    # A prune beyond the standby's position: the highest index pruned is one the standby never reached.
    now = int(requests.get(consul + "logical/", params={"keys": ""}, timeout=5).headers["X-Consul-Index"])
    mark = requests.put(consul + "changes/~pruned", data=str(now).encode(), timeout=5)
    assert mark.json() is True
    wait_until(
        lambda: all(read(standby, "kv/pruned", token).json()["data"]["v"] == "old" for _ in range(16)),
        5,
        "the standby to drop its cache and read storage",
    )


def test_a_new_mount_and_policy_reach_the_standby(pair):
    """The tables the node core watches itself are never served from the standby's storage cache."""
    c, active, standby, token = pair
    path = f"m{uuid.uuid4().hex[:6]}"
    write(active, "POST", f"sys/mounts/{path}", token, json={"type": "kv"})
    index = write(active, "PUT", f"{path}/x", token, json={"a": 1}).headers["X-Vault-Index"]
    assert read(standby, f"{path}/x", token, index).json()["data"] == {"a": 1}
    write(
        active, "PUT", "sys/policies/acl/p1", token, json={"policy": f'path "{path}/*" {{ capabilities = ["read"] }}'}
    )
    child = write(active, "POST", "auth/token/create", token, json={"policies": ["p1"]})
    assert (
        read(standby, f"{path}/x", child.json()["auth"]["client_token"], child.headers["X-Vault-Index"]).status_code
        == 200
    )
    revoke = write(
        active, "PUT", "sys/policies/acl/p1", token, json={"policy": 'path "other/*" { capabilities = ["read"] }'}
    )
    assert (
        read(standby, f"{path}/x", child.json()["auth"]["client_token"], revoke.headers["X-Vault-Index"]).status_code
        == 403
    )
