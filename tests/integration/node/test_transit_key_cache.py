"""Transit's parsed-key cache (engines/transit/store.py) under real gunicorn
workers on real Consul: after every worker has encrypted and decrypted with a
key (so each keeps it parsed), a rotation, a ``min_decryption_version`` change
and a delete made through one worker are honoured by the very next request on
every worker."""

import base64

import requests

HI = base64.b64encode(b"hi").decode()
#: Requests on new connections after each change: the kernel spreads them over the workers.
SPREAD = 16


def fresh(node, path: str, token: str, body: dict | None = None, method: str = "POST") -> requests.Response:
    """One request on a new connection."""
    headers = {"X-Vault-Token": token, "Connection": "close"}
    return requests.request(method, f"{node.url}/v1/{path}", headers=headers, json=body, timeout=10)


def test_key_changes_are_honoured_by_the_next_request_on_every_worker(make_node):
    node = make_node(workers=3)
    init = node.init(1, 1)
    node.unseal(init["keys"])
    token = init["root_token"]
    assert node.api("POST", "sys/mounts/transit", token=token, json={"type": "transit"}).status_code == 204
    assert fresh(node, "transit/keys/k", token, {}).status_code == 200
    first = fresh(node, "transit/encrypt/k", token, {"plaintext": HI}).json()["data"]["ciphertext"]
    for _ in range(SPREAD):  # every worker parses and keeps the key
        assert fresh(node, "transit/decrypt/k", token, {"ciphertext": first}).json()["data"]["plaintext"] == HI

    for version in (2, 3, 4):
        assert fresh(node, "transit/keys/k/rotate", token, {}).status_code == 200
        for _ in range(SPREAD):
            answer = fresh(node, "transit/encrypt/k", token, {"plaintext": HI})
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["key_version"] == version

    assert fresh(node, "transit/keys/k/config", token, {"min_decryption_version": 2}).status_code == 200
    for _ in range(SPREAD):
        refused = fresh(node, "transit/decrypt/k", token, {"ciphertext": first})
        assert refused.status_code == 400
        assert refused.json() == {"errors": ["ciphertext or signature version is disallowed by policy (too old)"]}

    assert fresh(node, "transit/keys/k/config", token, {"min_decryption_version": 1}).status_code == 200
    for _ in range(SPREAD):
        assert fresh(node, "transit/decrypt/k", token, {"ciphertext": first}).json()["data"]["plaintext"] == HI

    assert fresh(node, "transit/keys/k/config", token, {"deletion_allowed": True}).status_code == 200
    assert fresh(node, "transit/keys/k", token, method="DELETE").status_code == 204
    for _ in range(SPREAD):
        gone = fresh(node, "transit/decrypt/k", token, {"ciphertext": first})
        assert gone.status_code == 400
        assert gone.json() == {"errors": ["encryption key not found"]}
