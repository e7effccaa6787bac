"""sys/init, sys/unseal, sys/seal-status, sys/seal through the HTTP API."""

import base64

import pytest


def test_init_returns_shares_and_root_token(fresh):
    body = fresh.client.simulate_put("/v1/sys/init", json={"secret_shares": 5, "secret_threshold": 3}).json
    assert len(body["keys"]) == 5 and len(body["keys_base64"]) == 5
    assert [base64.b64decode(k).hex() for k in body["keys_base64"]] == body["keys"]
    assert body["root_token"].startswith("hvs.")
    status = fresh.client.simulate_get("/v1/sys/seal-status").json
    assert status["initialized"] is True and status["sealed"] is True
    assert (status["t"], status["n"], status["progress"]) == (3, 5, 0)
    assert fresh.client.simulate_get("/v1/sys/init").json == {"initialized": True}


@pytest.mark.parametrize(
    "body,message",
    [
        ({"secret_shares": 0, "secret_threshold": 0}, "shares must be at least one"),
        ({"secret_shares": 3, "secret_threshold": 1}, "threshold must be greater than one"),
        ({"secret_shares": 2, "secret_threshold": 3}, "threshold cannot be larger than shares"),
        ({"secret_shares": "3", "secret_threshold": 2}, "must be an integer"),
        ({}, "must be an integer"),
    ],
)
def test_init_rejects_bad_parameters_and_writes_nothing(fresh, body, message):
    result = fresh.client.simulate_put("/v1/sys/init", json=body)
    assert result.status_code == 400
    assert message in result.json["errors"][0]
    assert fresh.snapshot() == {}


def test_init_twice_is_refused(node):
    result = node.client.simulate_put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
    assert result.status_code == 400
    assert result.json == {"errors": ["Vault is already initialized"]}


def test_unseal_progress_then_unsealed(node):
    first = node.client.simulate_put("/v1/sys/unseal", json={"key": node.keys[0]}).json
    assert first["sealed"] is True and first["progress"] == 1 and first["nonce"]
    second = node.client.simulate_put("/v1/sys/unseal", json={"key": node.keys[2]}).json
    assert second["sealed"] is False and second["progress"] == 0


def test_unseal_with_base64_share(node):
    b64 = [base64.b64encode(bytes.fromhex(k)).decode() for k in node.keys]
    node.client.simulate_put("/v1/sys/unseal", json={"key": b64[1]})
    assert node.client.simulate_put("/v1/sys/unseal", json={"key": b64[0]}).json["sealed"] is False


def test_repeated_share_makes_no_progress(node):
    node.client.simulate_put("/v1/sys/unseal", json={"key": node.keys[0]})
    again = node.client.simulate_put("/v1/sys/unseal", json={"key": node.keys[0]})
    assert again.status_code == 200 and again.json["progress"] == 1 and again.json["sealed"] is True


@pytest.mark.parametrize("key", ["zz-not-a-key", 12, ""])
def test_malformed_share_is_400_and_keeps_progress(node, key):
    node.client.simulate_put("/v1/sys/unseal", json={"key": node.keys[0]})
    result = node.client.simulate_put("/v1/sys/unseal", json={"key": key})
    assert result.status_code == 400
    assert node.seal.status()["progress"] == 1


def test_wrong_shares_fail_and_reset_progress(node):
    other = type(node)()
    other.init()
    node.client.simulate_put("/v1/sys/unseal", json={"key": other.keys[0]})
    result = node.client.simulate_put("/v1/sys/unseal", json={"key": other.keys[1]})
    assert result.status_code == 400
    assert "failed to decrypt keys from storage" in result.json["errors"][0]
    status = node.seal.status()
    assert status["sealed"] is True and status["progress"] == 0
    node.unseal()


def test_reset_clears_progress(node):
    node.client.simulate_put("/v1/sys/unseal", json={"key": node.keys[0]})
    assert node.client.simulate_put("/v1/sys/unseal", json={"reset": True}).json["progress"] == 0


def test_unseal_before_init_is_400(fresh):
    result = fresh.client.simulate_put("/v1/sys/unseal", json={"key": "ab" * 33})
    assert result.status_code in (400, 503)
    assert result.json["errors"]


def test_sealed_node_refuses_data_requests(node):
    result = node.request("GET", "secret/data/foo")
    assert result.status_code == 503
    assert result.json == {"errors": ["Vault is sealed"]}


def test_seal_needs_a_token_with_sudo(unsealed):
    assert unsealed.request("PUT", "sys/seal", token="").status_code == 403
    assert unsealed.request("PUT", "sys/seal").status_code == 204
    assert unsealed.seal.status()["sealed"] is True
    assert unsealed.request("GET", "sys/mounts").status_code == 503


def test_restart_keeps_data_and_unseals_with_same_shares(unsealed):
    unsealed.request("POST", "sys/mounts/kv", json={"type": "kv"})
    unsealed.request("PUT", "kv/app", json={"password": "hunter2"})
    from falcon import testing

    from strongroom.api.app import create_app
    from strongroom.core.core import Core
    from strongroom.core.seal import SealManager

    seal = SealManager(unsealed.backend, unsealed.clock)
    restarted = testing.TestClient(
        create_app(Core(unsealed.backend, seal, backends=unsealed.backends, clock=unsealed.clock))
    )
    assert restarted.simulate_get("/v1/sys/seal-status").json["sealed"] is True
    for key in unsealed.keys[:2]:
        restarted.simulate_put("/v1/sys/unseal", json={"key": key})
    read = restarted.simulate_get("/v1/kv/app", headers={"X-Vault-Token": unsealed.root_token})
    assert read.status_code == 200 and read.json["data"] == {"password": "hunter2"}


def test_rotate_and_key_status(unsealed):
    assert unsealed.request("GET", "sys/key-status").json["data"]["term"] == 1
    assert unsealed.request("POST", "sys/rotate").status_code == 204
    assert unsealed.request("GET", "sys/key-status").json["term"] == 2
    # Data written under term 1 and term 2 both stay readable.
    unsealed.request("POST", "sys/mounts/kv", json={"type": "kv"})
    unsealed.request("PUT", "kv/x", json={"a": "1"})
    assert unsealed.request("GET", "kv/x").json["data"] == {"a": "1"}
    assert unsealed.request("GET", "sys/policy/default").status_code == 200


def test_sealing_drops_what_the_token_store_keeps_decoded(unsealed):
    """Decoded token entries (kept to save decoding unchanged records) leave
    memory with the keyring; the barrier keeps no plaintext at all."""
    assert unsealed.request("POST", "sys/mounts/kv", json={"type": "kv"}).status_code == 204
    assert unsealed.request("PUT", "kv/app", json={"password": "s3cret"}).status_code == 204
    assert unsealed.request("GET", "kv/app").json["data"] == {"password": "s3cret"}
    assert not any(b"s3cret" in value for value in vars(unsealed.core.barrier).values() if isinstance(value, bytes))
    assert unsealed.core.tokens._records._decoded
    assert unsealed.request("PUT", "sys/seal").status_code == 204
    unsealed.core.sync_keyring()  # what a worker does when the node core pushes the seal
    assert unsealed.core.tokens._records._decoded == {}
