"""``sys/rekey/*`` and ``sys/generate-root/*`` on an in-memory node (core/recovery.py).

The cluster behaviour (the CLI, forwarding from a standby, every node unsealing
with the new shares) is in tests/integration/node/test_operator_recovery.py;
here: Vault's response shapes, every refusal, and who may call them.
"""

from __future__ import annotations

import base64

import pytest

from strongroom.config import loads
from strongroom.core.core import Core
from strongroom.core.recovery import OTP_LENGTH, decode_root_token, encode_root_token
from strongroom.server.build import core_config
from tests.helpers.unit_node import Node

REKEY_STATUS_KEYS = {
    "nonce",
    "started",
    "t",
    "n",
    "progress",
    "required",
    "pgp_fingerprints",
    "backup",
    "verification_required",
}
ROOT_STATUS_KEYS = {
    "nonce",
    "started",
    "progress",
    "required",
    "complete",
    "encoded_token",
    "encoded_root_token",
    "pgp_fingerprint",
    "otp",
    "otp_length",
}


@pytest.fixture
def node() -> Node:
    n = Node()
    n.init(3, 2)
    n.unseal()
    return n


def test_encoded_root_token_round_trips_and_needs_an_otp_of_the_token_length():
    token, otp = "hvs." + "a" * 24, "Z" * OTP_LENGTH
    encoded = encode_root_token(token, otp)
    assert "=" not in encoded  # unpadded, as Vault's RawStdEncoding
    assert base64.b64decode(encoded + "=" * (-len(encoded) % 4)) == bytes(
        a ^ b for a, b in zip(token.encode(), otp.encode(), strict=True)
    )
    assert decode_root_token(encoded, otp) == token
    with pytest.raises(Exception, match="incorrect length"):
        encode_root_token(token, otp[:-1])


def test_rekey_status_before_anything_started(node):
    answer = node.request("GET", "sys/rekey/init")
    assert answer.status_code == 200
    assert answer.json == {
        "nonce": "",
        "started": False,
        "t": 0,
        "n": 0,
        "progress": 0,
        "required": 2,
        "pgp_fingerprints": None,
        "backup": False,
        "verification_required": False,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"secret_shares": 0, "secret_threshold": 1}, "shares must be at least one"),
        ({"secret_shares": 3, "secret_threshold": 4}, "threshold cannot be larger than shares"),
        ({"secret_shares": 3, "secret_threshold": 1}, "threshold must be greater than one"),
        ({"secret_shares": "3", "secret_threshold": 2}, "secret_shares must be an integer"),
        ({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": ["x", "y", "z"]}, "pgp_keys is not supported"),
        ({"secret_shares": 3, "secret_threshold": 2, "require_verification": "yes"}, "must be a boolean"),
    ],
)
def test_rekey_init_refuses_bad_parameters_and_starts_nothing(node, body, message):
    answer = node.request("PUT", "sys/rekey/init", json=body)
    assert answer.status_code == 400
    assert message in answer.json["errors"][0]
    assert node.request("GET", "sys/rekey/init").json["started"] is False


def test_rekey_update_refusals(node):
    assert (
        "no barrier rekey in progress"
        in node.request("PUT", "sys/rekey/update", json={"key": node.keys[0], "nonce": "x"}).json["errors"][0]
    )
    started = node.request("PUT", "sys/rekey/init", json={"secret_shares": 2, "secret_threshold": 2}).json
    assert set(started) == REKEY_STATUS_KEYS and started["started"] is True
    again = node.request("PUT", "sys/rekey/init", json={"secret_shares": 2, "secret_threshold": 2})
    assert again.status_code == 400 and "rekey already in progress" in again.json["errors"][0]
    nonce = started["nonce"]
    cases = [
        ({"nonce": nonce}, "'key' must be specified"),
        ({"key": "not hex or base64!", "nonce": nonce}, "valid hex or base64"),
        ({"key": 7, "nonce": nonce}, "valid hex or base64"),
        ({"key": node.keys[0], "nonce": "wrong"}, f'nonce for this rekey operation is "{nonce}"'),
    ]
    for body, message in cases:
        answer = node.request("PUT", "sys/rekey/update", json=body)
        assert answer.status_code == 400 and message in answer.json["errors"][0], (body, answer.json)
    first = node.request("PUT", "sys/rekey/update", json={"key": node.keys[0], "nonce": nonce})
    assert first.status_code == 200 and first.json["progress"] == 1
    twice = node.request("PUT", "sys/rekey/update", json={"key": node.keys[0], "nonce": nonce})
    assert twice.status_code == 400 and "already been provided" in twice.json["errors"][0]


def test_a_rekey_to_one_share_and_back(node):
    before = node.snapshot()
    nonce = node.request("PUT", "sys/rekey/init", json={"secret_shares": 1, "secret_threshold": 1}).json["nonce"]
    node.request("PUT", "sys/rekey/update", json={"key": node.keys[0], "nonce": nonce})
    done = node.request("PUT", "sys/rekey/update", json={"key": node.keys[1], "nonce": nonce}).json
    assert done["complete"] is True and len(done["keys"]) == 1 and len(bytes.fromhex(done["keys"][0])) == 32
    assert "verification_nonce" not in done
    after = node.snapshot()
    assert after["core/root-key"] != before["core/root-key"]
    assert after["core/keyring"] == before["core/keyring"]  # the data keys are untouched
    status = node.request("GET", "sys/seal-status").json
    assert (status["t"], status["n"]) == (1, 1)
    node.seal.seal()
    node.keys = done["keys"]
    node.unseal()


def test_rekey_verify_without_a_rekey(node):
    answer = node.request("GET", "sys/rekey/verify")
    assert answer.status_code == 400 and "no rekey configuration found" in answer.json["errors"][0]
    answer = node.request("PUT", "sys/rekey/verify", json={"key": node.keys[0], "nonce": "x"})
    assert answer.status_code == 400 and "no rekey verification in progress" in answer.json["errors"][0]


def test_verification_with_the_wrong_new_shares_keeps_the_old_key(node):
    before = node.snapshot()
    nonce = node.request(
        "PUT", "sys/rekey/init", json={"secret_shares": 3, "secret_threshold": 2, "require_verification": True}
    ).json["nonce"]
    for key in node.keys[:2]:
        done = node.request("PUT", "sys/rekey/update", json={"key": key, "nonce": nonce}).json
    vnonce = done["verification_nonce"]
    assert node.request("GET", "sys/rekey/init").json["verification_nonce"] == vnonce
    for key in node.keys[:2]:  # the OLD shares do not verify the new key
        answer = node.request("PUT", "sys/rekey/verify", json={"key": key, "nonce": vnonce})
    assert answer.status_code == 400 and "rekey verification failed" in answer.json["errors"][0]
    assert node.snapshot() == before
    assert node.request("DELETE", "sys/rekey/init").status_code == 204
    node.seal.seal()
    node.unseal()  # the old shares still unseal


def test_generate_root_status_init_and_refusals(node):
    status = node.request("GET", "sys/generate-root/attempt").json
    assert set(status) == ROOT_STATUS_KEYS
    assert status["started"] is False and status["otp_length"] == OTP_LENGTH and status["required"] == 2
    bad = node.request("PUT", "sys/generate-root/attempt", json={"otp": "short"})
    assert bad.status_code == 400 and "OTP string has incorrect length" in bad.json["errors"][0]
    pgp = node.request("PUT", "sys/generate-root/attempt", json={"pgp_key": "abc"})
    assert pgp.status_code == 400 and "pgp_key is not supported" in pgp.json["errors"][0]
    chosen = "b" * OTP_LENGTH
    started = node.request("PUT", "sys/generate-root/attempt", json={"otp": chosen}).json
    assert started["started"] is True and started["otp"] == ""  # a caller's own OTP is not echoed
    # Vault's name and OpenBao's name are the same attempt; OpenBao's answers in "data".
    openbao = node.request("GET", "sys/generate-root-token/attempt").json["data"]
    assert openbao["nonce"] == started["nonce"]
    wrong = node.request("PUT", "sys/generate-root/update", json={"key": node.keys[0], "nonce": "x"})
    assert wrong.status_code == 400 and "incorrect nonce" in wrong.json["errors"][0]
    node.request("PUT", "sys/generate-root/update", json={"key": node.keys[0], "nonce": started["nonce"]})
    done = node.request(
        "PUT", "sys/generate-root-token/update", json={"key": node.keys[1], "nonce": started["nonce"]}
    ).json["data"]
    token = decode_root_token(done["encoded_token"], chosen)
    assert "encoded_root_token" not in done and "otp" not in done  # OpenBao's update fields
    lookup = node.request("GET", "auth/token/lookup-self", token=token)
    assert lookup.status_code == 200 and lookup.json["data"]["policies"] == ["root"]


def test_operations_need_an_unsealed_node(node):
    node.seal.seal()
    for path in ("sys/rekey/init", "sys/generate-root/attempt"):
        assert node.request("GET", path).status_code == 503


def test_by_default_a_caller_without_a_token_is_refused():
    node = Node()
    node.init(1, 1)
    node.unseal()
    for path in ("sys/rekey/init", "sys/rekey/update", "sys/generate-root/attempt", "sys/generate-root/update"):
        assert node.request("PUT", path, token="", json={}).status_code == 403, path


def test_the_listener_settings_restore_vaults_unauthenticated_endpoints():
    config = loads(
        'storage "inmem" {}\n'
        'listener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n'
        "  disable_unauthed_rekey_endpoints = false\n  disable_unauthed_generate_root_endpoints = false\n}\n"
    )
    node = Node()
    node.core = Core(
        node.backend, node.seal, backends=Node.backends, auth_backends=Node.auth_backends, config=core_config(config)
    )
    from strongroom.api.app import create_app
    from tests.helpers.vault_client import VaultTestClient

    node.client = VaultTestClient(create_app(node.core, node_id="unit"))
    node.init(1, 1)
    node.unseal()
    assert node.request("GET", "sys/rekey/init", token="").status_code == 200
    started = node.request("PUT", "sys/generate-root/attempt", token="", json={})
    assert started.status_code == 200 and len(started.json["otp"]) == OTP_LENGTH
    # Only those: everything else still needs a token.
    assert node.request("GET", "sys/mounts", token="").status_code == 403
    assert node.request("PUT", "sys/rotate", token="").status_code == 403
