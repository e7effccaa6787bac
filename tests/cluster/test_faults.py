"""Faults under a steady write load through the real HAProxy.

After each fault: exactly one active node, every acknowledged write readable
with its acknowledged value, and no write accepted by a node that did not hold
the lock (each node's audit log against the Consul lock history).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from tests.helpers.cluster import StrongroomCluster
from tests.helpers.faults import AUDIT_TO_OUTPUT, Harness
from tests.helpers.procs import ConsulCluster, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def harness(consul_agent, tmp_path):
    cluster = StrongroomCluster(tmp_path, consul_agent.address, n=3, extra=AUDIT_TO_OUTPUT)
    try:
        cluster.start()
        h = Harness(cluster, consul_agent.client())
        try:
            yield h
        finally:
            h.close()
    finally:
        cluster.stop()


def _wait_recovered(h: Harness, since: float, writes: int = 20, timeout: float = 15) -> None:
    wait_until(lambda: h.load.acked_since(since) >= writes, timeout, "writes through HAProxy to resume")


def test_kill_active(harness):
    old = harness.cluster.active()
    killed_at = time.monotonic()
    old.kill()
    _wait_recovered(harness, killed_at)
    survivors = [n for n in harness.cluster.nodes if n is not old]
    harness.finish(survivors)
    assert harness.load.longest_gap(killed_at - 1) < 5.0


def test_sigstop_active_is_fenced(harness):
    cluster = harness.cluster
    old = cluster.active()
    os.killpg(old.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    # Writes sent straight to the paused node wait in its socket backlog.
    direct: list[requests.Response | Exception] = []

    def write_direct(i):
        try:
            direct.append(
                requests.put(
                    f"{old.url}/v1/kv/direct-{i}",
                    json={"value": "stale"},
                    headers={"X-Vault-Token": cluster.root_token},
                    timeout=30,
                )
            )
        except requests.RequestException as exc:
            direct.append(exc)

    threads = [threading.Thread(target=write_direct, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        _wait_recovered(harness, stopped_at)
        survivors = [n for n in cluster.nodes if n is not old]
        cluster.wait_settled(expect_nodes=survivors)
    finally:
        os.killpg(old.pid, signal.SIGCONT)
    for thread in threads:
        thread.join(40)
    assert len(direct) == 4
    for answer in direct:
        # Refused, or (once it knew it was a standby) forwarded: a 2xx must come
        # from another node (a KV v1 write answers 204).
        assert (
            isinstance(answer, Exception)
            or answer.status_code >= 500
            or 200 <= answer.status_code < 300
            and answer.headers.get("X-Strongroom-Node") != old.config_path.stem
        ), (answer, dict(answer.headers))
    new_active = cluster.active()
    for i in range(4):
        assert cluster.api(new_active, "GET", f"kv/direct-{i}").status_code in (404, 200)
    # What the resumed node answered 2xx for must have been forwarded, never written by it.
    harness.finish(cluster.nodes)


def test_seal_active(harness):
    cluster = harness.cluster
    old = cluster.active()
    sealed_at = time.monotonic()
    sealed = cluster.api(old, "PUT", "sys/seal")
    assert sealed.status_code == 204, sealed.text
    _wait_recovered(harness, sealed_at)
    harness.finish([n for n in cluster.nodes if n is not old])
    assert harness.load.longest_gap(sealed_at - 1) < 3.0


def test_step_down(harness):
    cluster = harness.cluster
    old = cluster.active()
    at = time.monotonic()
    assert cluster.api(old, "PUT", "sys/step-down").status_code == 204
    _wait_recovered(harness, at)
    harness.finish(cluster.nodes)
    assert cluster.active() is not old or time.monotonic() - at > 2.0


def test_kill_consul_leader(tmp_path):
    consul = ConsulCluster(n=3).start()
    try:
        addresses = [agent.address for agent in consul.agents]
        cluster = StrongroomCluster(
            tmp_path, addresses[0], n=3, consul_addresses=addresses, extra=AUDIT_TO_OUTPUT
        ).start()
        try:
            h = Harness(cluster, consul.agents[0].client())
        except BaseException:
            cluster.stop()
            raise
        try:
            leader_pid = consul.leader_pid()
            dead = consul.agent_for_pid(leader_pid)
            killed_at = time.monotonic()
            consul.kill(leader_pid)
            consul.wait_for_leader(timeout=30)
            _wait_recovered(h, killed_at, timeout=45)
            survivors = [n for n, a in zip(cluster.nodes, addresses, strict=True) if a != dead.address]
            # Nodes whose own Consul agent died cannot serve; the others settle on one active.
            h.load.stop()
            h.history._client = [a for a in consul.agents if a is not dead][0].client()
            cluster.wait_settled(expect_nodes=survivors, timeout=30)
            live_reader = survivors[0]
            bad = h.load.unacknowledged_or_wrong(
                lambda key: (lambda r: r.json()["data"]["value"] if r.status_code == 200 else None)(
                    cluster.api(live_reader, "GET", f"kv/{key}")
                )
            )
            assert bad == []
        finally:
            h.close()
            cluster.stop()
    finally:
        consul.stop()
