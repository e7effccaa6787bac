"""Failover through the front door, with real nodes: after a kill -9 of the active
node, a write sent to HAProxy while no node is active is held (the failover
helper, ``strongroom_failover.lua``) and answered by the new active node, so the
client sees a 200 instead of HAProxy's 503.  The same on stand-in nodes, with
the timing of the helper's probe, is in ``test_haproxy_routing.py``; the time
figures are ``bench.failover``'s."""

from __future__ import annotations

import threading

import pytest
import requests

from tests.helpers.procs import HAProxyProcess, wait_until

WRITE = "strongroom_write"


def _name(node) -> str:
    return node.config_path.stem


@pytest.fixture
def front(cluster):
    # A long hold, so a loaded machine's slow unseal cannot turn the held write into a 503.
    proxy = HAProxyProcess(
        [{"name": _name(n), "address": f"127.0.0.1:{n.port}"} for n in cluster.nodes], write_hold_ms=20000
    )
    proxy.start()
    try:
        active = cluster.active()
        proxy.wait_servers_up(WRITE, {_name(active)})
        assert cluster.api(active, "POST", "sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        yield proxy
    finally:
        proxy.stop()


def _client_connections(proxy: HAProxyProcess) -> int:
    row = next(r for r in proxy.stats_rows() if r["pxname"] == "strongroom" and r["svname"] == "FRONTEND")
    return int(row["scur"])


def test_a_write_after_a_kill_of_the_active_waits_for_the_new_active_node(cluster, front):
    active, standbys = cluster.active(), cluster.standbys()
    # Both standbys sealed first: no node can take over until the test unseals one, so the write is
    # surely sent while the write backend is empty, however slow the machine is.
    for node in standbys:
        assert cluster.api(node, "PUT", "sys/seal").status_code == 204
    wait_until(lambda: all(cluster.health(n) == 503 for n in standbys), 10, "both standbys sealed")
    active.kill()
    front.wait_servers_up(WRITE, set(), timeout=10)

    answers: list[requests.Response | Exception] = []

    def write() -> None:
        try:
            answers.append(
                requests.post(
                    f"{front.url}/v1/secret/data/after-kill",
                    json={"data": {"v": "held"}},
                    headers={"X-Vault-Token": cluster.root_token},
                    timeout=60,
                )
            )
        except requests.RequestException as exc:
            answers.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    wait_until(lambda: _client_connections(front) >= 1, 10, "the write to reach HAProxy")
    assert not answers, f"answered while no node was active: {answers}"

    successor = standbys[0]
    successor.unseal(cluster.keys[:2])
    writer.join(60)
    assert answers, "the held write was never answered"
    answer = answers[0]
    assert isinstance(answer, requests.Response), answer
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Strongroom-Node"] == _name(successor)
    assert answer.headers["X-Strongroom-Route"] == f"{WRITE}/{_name(successor)}"
    stored = cluster.api(successor, "GET", "secret/data/after-kill")
    assert stored.status_code == 200 and stored.json()["data"]["data"] == {"v": "held"}
    assert stored.json()["data"]["metadata"]["version"] == 1  # written once, not replayed
