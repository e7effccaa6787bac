"""The active node's read cache (storage/cache.py) under real gunicorn workers on
real Consul: every worker answers with the latest acknowledged write at once,
revoked tokens stop working on every worker at once, and the cache is really
used (or not, with ``disable_cache``)."""

import os
import re
import signal
import threading
import time
import uuid

import requests

from tests.helpers.procs import freeze, wait_until


def fresh(node, method: str, path: str, token: str, **kwargs) -> requests.Response:
    """One request on a new connection: the kernel spreads these over the workers."""
    headers = {"X-Vault-Token": token, "Connection": "close"}
    return requests.request(method, f"{node.url}/v1/{path}", headers=headers, timeout=10, **kwargs)


def storage_cache(node, token: str, result: str) -> float:
    text = node.api("GET", "sys/metrics", token=token, params={"format": "prometheus"}).text
    found = re.findall(rf'strongroom_cache_requests_total\{{cache="storage",result="{result}"\}} (\S+)', text)
    return float(found[0]) if found else 0.0


def ready(node, workers: int = 4, extra: str = "", prefix: str | None = None):
    node = node(workers=workers, extra=extra, prefix=prefix)
    init = node.init(1, 1)
    node.unseal(init["keys"])
    token = init["root_token"]
    assert node.api("POST", "sys/mounts/secret", token=token, json={"type": "kv-v2"}).status_code == 204
    assert node.api("POST", "sys/mounts/kv", token=token, json={"type": "kv"}).status_code == 204
    return node, token


def test_every_worker_reads_the_latest_write_at_once(make_node):
    node, token = ready(make_node)
    for i in range(60):
        assert fresh(node, "POST", "secret/data/app", token, json={"data": {"n": i}}).status_code == 200
        assert fresh(node, "PUT", "kv/app", token, json={"n": i}).status_code == 204
        for _ in range(4):
            assert fresh(node, "GET", "secret/data/app", token).json()["data"]["data"] == {"n": i}
            assert fresh(node, "GET", "kv/app", token).json()["data"] == {"n": i}
    assert fresh(node, "DELETE", "kv/app", token).status_code == 204
    assert {fresh(node, "GET", "kv/app", token).status_code for _ in range(12)} == {404}
    wait_until(lambda: storage_cache(node, token, "hit") > 100, 10, "cache hits counted in sys/metrics")


def test_concurrent_writes_through_every_worker_lose_and_repeat_no_version(make_node):
    """Writers on new connections (spread over the workers) change one secret
    at once: each write's metadata read comes from the worker's cache, the
    values another worker left, or Consul, and must be the latest every time:
    a stale one would conflict again and again (503) or repeat a version."""
    node, token = ready(make_node)
    versions, failures = [], []

    def writer(n: int) -> None:
        for i in range(25):
            answer = fresh(node, "POST", "secret/data/shared", token, json={"data": {"writer": n, "i": i}})
            if answer.status_code == 200:
                versions.append(answer.json()["data"]["version"])
            else:
                failures.append((answer.status_code, answer.text[:200]))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert sorted(versions) == list(range(1, 201))
    meta = fresh(node, "GET", "secret/metadata/shared", token).json()["data"]
    assert meta["current_version"] == 200


def test_a_revoked_token_fails_on_every_worker_at_once(make_node):
    node, token = ready(make_node)
    fresh(node, "PUT", "kv/app", token, json={"v": 1})
    for _ in range(5):
        child = fresh(node, "POST", "auth/token/create", token, json={"policies": ["default"]})
        child = child.json()["auth"]["client_token"]
        # Every worker caches the child's entry...
        assert {fresh(node, "GET", "auth/token/lookup-self", child).status_code for _ in range(12)} == {200}
        assert fresh(node, "POST", "auth/token/revoke", token, json={"token": child}).status_code == 204
        # ...and none of them answers with it after the revocation was acknowledged.
        assert {fresh(node, "GET", "auth/token/lookup-self", child).status_code for _ in range(12)} == {403}


def test_disable_cache_reads_storage_every_time(make_node):
    node, token = ready(make_node, workers=2, extra="disable_cache = true\n")
    fresh(node, "PUT", "kv/app", token, json={"v": 1})
    for _ in range(20):
        assert fresh(node, "GET", "kv/app", token).json()["data"] == {"v": 1}

    def reads_counted():
        # A worker writes its tally in the order it was recorded: once its
        # reads are counted, any cache hit they had is too.
        text = node.api("GET", "sys/metrics", token=token, params={"format": "prometheus"}).text
        found = re.findall(r'strongroom_http_requests_total\{method="GET",route="kv/[^"]*",status="200"\} (\S+)', text)
        return found and float(found[0]) >= 20

    wait_until(reads_counted, 10, "the reads counted in sys/metrics")
    assert storage_cache(node, token, "hit") == 0


def test_a_hung_node_core_stops_cache_hits_within_its_ttl(make_node, consul_agent):
    """The workers trust their caches only while the node core renews its lease
    (heartbeats reaching Consul, the lock confirmed): with the node core frozen,
    reads go back to storage within the check TTL (500 ms here)."""
    prefix = f"sr-{uuid.uuid4().hex[:12]}/"
    node, token = ready(make_node, workers=2, prefix=prefix)
    assert fresh(node, "PUT", "kv/app", token, json={"v": 1}).status_code == 204
    for _ in range(6):  # cached by both workers
        assert fresh(node, "GET", "kv/app", token).status_code == 200
    freeze(node.pid)
    try:
        # Every secret of every mount goes, behind the node's back.
        consul_agent.client().kv.delete(prefix + "logical/", recurse=True)
        stopped = time.monotonic()
        wait_until(lambda: fresh(node, "GET", "kv/app", token).status_code == 404, 5, "reads from storage")
        assert time.monotonic() - stopped < 1.5
    finally:
        os.kill(node.pid, signal.SIGCONT)
