"""A node is one seal state however many gunicorn workers serve it."""

import re

import requests

from tests.helpers.procs import wait_until


def test_unseal_and_seal_apply_to_every_worker(make_node):
    node = make_node(workers=4)
    init = node.init(3, 2)
    token = init["root_token"]
    # Shares go to whichever worker accepts each connection; the node unseals as one.
    node.unseal(init["keys"][:2])
    codes = [node.api("GET", "sys/mounts", token=token).status_code for _ in range(200)]
    assert codes == [200] * 200
    assert node.api("PUT", "sys/seal", token=token).status_code == 204
    codes = [node.api("GET", "sys/mounts", token=token).status_code for _ in range(200)]
    assert codes == [503] * 200


def test_changes_in_one_worker_are_seen_by_all(make_node):
    node = make_node(workers=4)
    init = node.init(1, 1)
    token = init["root_token"]
    node.unseal(init["keys"])
    assert node.api("POST", "sys/mounts/kv", token=token, json={"type": "kv"}).status_code == 204
    node.api("PUT", "sys/policy/reader", token=token, json={"policy": 'path "kv/*" { capabilities = ["read"] }'})
    child = node.api("POST", "auth/token/create", token=token, json={"policies": ["reader"]}).json()["auth"][
        "client_token"
    ]
    assert node.api("PUT", "kv/a", token=token, json={"v": "1"}).status_code == 204
    for _ in range(50):
        assert node.api("GET", "kv/a", token=child).json()["data"] == {"v": "1"}
    node.api("PUT", "sys/policy/reader", token=token, json={"policy": 'path "other/*" { capabilities = ["read"] }'})
    assert {node.api("GET", "kv/a", token=child).status_code for _ in range(50)} == {403}
    assert node.api("DELETE", "sys/mounts/kv", token=token).status_code == 204
    assert {node.api("GET", "kv/a", token=token).status_code for _ in range(50)} == {404}


def test_metrics_aggregate_all_workers(make_node):
    node = make_node(workers=4)
    init = node.init(1, 1)
    token = init["root_token"]
    node.unseal(init["keys"])
    for _ in range(40):
        # A fresh connection each time spreads the requests over the workers.
        requests.get(node.url + "/v1/sys/mounts", headers={"X-Vault-Token": token, "Connection": "close"}, timeout=5)

    def counted():
        """The scrape once every worker has written its tally (once a second)."""
        text = node.api("GET", "sys/metrics", token=token, params={"format": "prometheus"}).text
        counts = re.findall(
            r'strongroom_http_requests_total\{method="GET",route="sys/mounts",status="200"\} (\S+)', text
        )
        return text if counts and float(counts[0]) == 40.0 else None

    text = wait_until(counted, 10, "40 requests counted over 4 workers")
    assert re.search(r"^strongroom_core_unsealed(\{[^}]*\})? 1\.0$", text, re.M)
    assert node.api("GET", "sys/metrics", params={"format": "prometheus"}).status_code == 403


def test_restarted_node_comes_up_sealed_and_unseals_with_the_same_shares(make_node):
    node = make_node(workers=2)
    init = node.init(3, 2)
    node.unseal(init["keys"][1:])
    token = init["root_token"]
    node.api("POST", "sys/mounts/secret", token=token, json={"type": "kv-v2"})
    node.api("POST", "secret/data/app", token=token, json={"data": {"password": "s3cret"}})
    node.stop()
    node.start()
    assert node.api("GET", "sys/seal-status").json()["sealed"] is True
    assert node.api("GET", "secret/data/app", token=token).status_code == 503
    node.unseal(init["keys"][:2])
    assert node.api("GET", "secret/data/app", token=token).json()["data"]["data"] == {"password": "s3cret"}


def test_the_unseal_answers_once_the_node_takes_writes(make_node):
    """A script runs ``operator unseal`` and then ``secrets enable`` at once: the
    unseal that opens the node answers only after its election round, so the next
    write never meets "active cluster node not found" (it did about one time in six)."""
    node = make_node(workers=2)
    init = node.init(1, 1)
    token = init["root_token"]
    for attempt in range(15):
        assert node.unseal(init["keys"])["sealed"] is False
        answer = node.api("POST", f"sys/mounts/m{attempt}", token=token, json={"type": "kv"})
        assert answer.status_code == 204, (attempt, answer.text)
        assert node.api("PUT", "sys/seal", token=token).status_code == 204
