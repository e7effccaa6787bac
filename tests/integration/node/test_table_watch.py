"""The node core's watches on the mount, auth, policy and audit tables and the
keyring sleep while clients write secrets.

Consul answers a blocking query on a prefix that holds no key (``sys/audit/``
with no audit device, ``sys/policy/`` with no policy stored) whenever anything
changes under the nearest key-tree node above it.  With the standby change
log under ``sys/`` every KV write woke three watches, each a Consul query and
an HTTP answer in the node core: a third of the node's CPU per write; and
every token written woke the auth, policy and audit watches until the active
node stored the default tables and policy.  The node core counts each answer
in ``strongroom_table_watch_answers_total``."""

from __future__ import annotations

from tests.helpers.procs import wait_until
from tests.integration.node.test_metrics_complete import scrape

TABLES = ("mounts", "auth", "policy", "audit", "keyring")
WRITES = 300


def answers(node, token: str) -> dict[str, float]:
    metrics = scrape(node, token)
    return {table: metrics.value("strongroom_table_watch_answers_total", table=table) for table in TABLES}


def test_secret_and_token_writes_do_not_wake_the_table_watches(make_node):
    node = make_node(workers=2)
    init = node.init(1, 1)
    token = init["root_token"]
    node.unseal(init["keys"])
    assert node.api("POST", "sys/mounts/secret", token=token, json={"type": "kv-v2"}).status_code == 204

    def mounts_answered(after: float):
        # A new mount wakes the mounts watch; the node core flushes its counters
        # together, so a snapshot showing that answer also shows every answer before it.
        def check():
            now = answers(node, token)
            return now if now["mounts"] > after else None

        return check

    # Every watch's first query answers at once: counted before the baseline.
    start = wait_until(
        lambda: (now := answers(node, token)) and all(now.values()) and now, 15, "each watch's first answer"
    )
    assert node.api("POST", "sys/mounts/m0", token=token, json={"type": "kv"}).status_code == 204
    before = wait_until(mounts_answered(start["mounts"]), 15, "the mounts watch's answer in the metrics")
    for i in range(WRITES):
        write = node.api("POST", f"secret/data/k{i % 32}", token=token, json={"data": {"v": str(i)}})
        assert write.status_code == 200, write.text
    assert node.api("DELETE", "secret/metadata/k0", token=token).status_code == 204
    # Tokens live under sys/ beside the tables: the tables a new cluster writes keep them apart.
    for _ in range(30):
        assert node.api("POST", "auth/token/create", token=token, json={}).status_code == 200
    assert node.api("POST", "sys/mounts/m1", token=token, json={"type": "kv"}).status_code == 204
    after = wait_until(mounts_answered(before["mounts"]), 15, "the second mount's answer")
    woken = {table: after[table] - before[table] for table in TABLES}
    # At most a 10 s timeout each (and the second mount on its own watch).
    assert all(count <= 2 for table, count in woken.items() if table != "mounts"), woken
    assert woken["mounts"] <= 3, woken
