"""Rekey and root token generation on a real two-node cluster, driven with the
real CLI (``bao operator rekey`` / ``bao operator generate-root``) and the API.

The operations' progress lives in the active node's node core; the CLI talks to
the *standby* here, so every step is forwarded, as an operator behind HAProxy
would see it.  What a user relies on: after a rekey the old shares no longer
unseal any node and the new ones do (on every node, the standby included);
wrong shares change nothing; a verified rekey takes effect only once the new
shares were proven; a generated root token decodes with the OTP and is root;
and nobody without ``sudo`` on the path can start or cancel either operation.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.helpers.cluster import StrongroomCluster
from tests.helpers.procs import wait_until
from tests.helpers.procs.dev_servers import openbao_binary

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(consul_agent, tmp_path_factory):
    c = StrongroomCluster(tmp_path_factory.mktemp("recovery"), consul_agent.address, n=2).start()
    yield c
    c.stop()


def bao(url: str, token: str, *args: str, workdir: str = "/tmp") -> tuple[int, Any, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(VAULT_ADDR=url, VAULT_TOKEN=token, HOME=workdir)
    done = subprocess.run([openbao_binary(), *args], env=env, capture_output=True, text=True, timeout=30)
    try:
        out: Any = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        out = done.stdout
    return done.returncode, out, done.stderr


def reseal_and_unseal(cluster: StrongroomCluster, keys: list[str]) -> None:
    """Seal every node and unseal it with ``keys``; the cluster settles again."""
    for node in cluster.nodes:
        assert cluster.api(node, "PUT", "sys/seal").status_code == 204
    for node in cluster.nodes:
        status = node.unseal(keys)
        assert status["sealed"] is False, status
    cluster.wait_settled()


def unseal_error(node, keys: list[str]) -> str:
    """Submit ``keys`` to a sealed node; the error the last one got ("" if it unsealed)."""
    answer = None
    for key in keys:
        answer = node.api("PUT", "sys/unseal", json={"key": key})
        if answer.status_code != 200:
            break
    assert answer is not None
    if answer.status_code == 200 and answer.json()["sealed"] is False:
        return ""
    node.api("PUT", "sys/unseal", json={"reset": True})
    return " ".join(answer.json().get("errors", [])) or f"still sealed: {answer.json()}"


def test_rekey_through_the_cli_on_the_standby_replaces_the_shares_everywhere(cluster):
    standby = cluster.standbys()[0]
    old_keys = list(cluster.keys)
    code, out, err = bao(
        standby.url, cluster.root_token, "operator", "rekey", "-init", "-key-shares=5", "-key-threshold=3",
        "-format=json",
    )  # fmt: skip
    assert code == 0, err
    assert out["started"] is True and out["t"] == 3 and out["n"] == 5 and out["required"] == 2
    nonce = out["nonce"]
    code, out, err = bao(
        standby.url, cluster.root_token, "operator", "rekey", "-format=json", f"-nonce={nonce}", old_keys[0]
    )
    assert code == 0, err
    assert out["progress"] == 1 and out["complete"] is False if "complete" in out else out["progress"] == 1
    code, out, err = bao(
        standby.url, cluster.root_token, "operator", "rekey", "-format=json", f"-nonce={nonce}", old_keys[1]
    )
    assert code == 0, err
    new_keys = out["keys"]
    assert len(new_keys) == 5 and len(out["keys_base64"]) == 5
    assert not set(new_keys) & set(old_keys)
    # The operation is over: a new status shows nothing started.
    assert cluster.api(standby, "GET", "sys/rekey/init").json()["started"] is False
    status = cluster.api(standby, "GET", "sys/seal-status").json()
    assert (status["t"], status["n"]) == (3, 5)

    for node in cluster.nodes:
        assert cluster.api(node, "PUT", "sys/seal").status_code == 204
        # A sealed HA node answers sys/leader as Vault's does (issue 14, item 8).
        leader = node.api("GET", "sys/leader")
        assert (leader.status_code, leader.json()) == (503, {"errors": ["Vault is sealed"]})
    for node in cluster.nodes:
        assert "failed to decrypt" in unseal_error(node, old_keys[:3])
        assert unseal_error(node, new_keys[2:5]) == ""
    cluster.wait_settled()
    cluster.keys = new_keys[:3]


def test_wrong_shares_spend_the_attempt_and_change_nothing(cluster):
    active = cluster.active()
    started = cluster.api(active, "PUT", "sys/rekey/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
    nonce = started["nonce"]
    forged = ["00" * 32 + "01", "11" * 32 + "02", "22" * 32 + "03"]
    answers = [cluster.api(active, "PUT", "sys/rekey/update", json={"key": k, "nonce": nonce}) for k in forged]
    assert [a.status_code for a in answers] == [200, 200, 400]
    assert "root key verification failed" in answers[-1].json()["errors"][0]
    # The operation is still there, with no progress; the stored key is the same.
    status = cluster.api(active, "GET", "sys/rekey/init").json()
    assert status["started"] is True and status["nonce"] == nonce and status["progress"] == 0
    assert cluster.api(active, "DELETE", "sys/rekey/init").status_code == 204
    assert cluster.api(active, "GET", "sys/rekey/init").json()["started"] is False
    reseal_and_unseal(cluster, cluster.keys)


def test_a_verified_rekey_takes_effect_only_after_the_new_shares_are_proven(cluster):
    active = cluster.active()
    init = cluster.api(
        active, "PUT", "sys/rekey/init", json={"secret_shares": 3, "secret_threshold": 2, "require_verification": True}
    ).json()
    assert init["verification_required"] is True
    done = {}
    for key in cluster.keys:
        done = cluster.api(active, "PUT", "sys/rekey/update", json={"key": key, "nonce": init["nonce"]}).json()
    assert done["complete"] is True and done["verification_required"] is True
    new_keys, vnonce = done["keys"], done["verification_nonce"]
    # Not yet in effect: the seal configuration is still the old one.
    assert cluster.api(active, "GET", "sys/seal-status").json()["n"] == 5
    again = cluster.api(active, "PUT", "sys/rekey/update", json={"key": cluster.keys[0], "nonce": init["nonce"]})
    assert again.status_code == 400 and "verification must be performed" in again.json()["errors"][0]
    verify = cluster.api(active, "GET", "sys/rekey/verify").json()
    assert verify == {"nonce": vnonce, "started": True, "t": 2, "n": 3, "progress": 0}
    restarted = cluster.api(active, "DELETE", "sys/rekey/verify").json()
    assert restarted["nonce"] != vnonce and restarted["progress"] == 0
    vnonce = restarted["nonce"]
    first = cluster.api(active, "PUT", "sys/rekey/verify", json={"key": new_keys[0], "nonce": vnonce}).json()
    assert first["progress"] == 1
    final = cluster.api(active, "PUT", "sys/rekey/verify", json={"key": new_keys[2], "nonce": vnonce}).json()
    assert final == {"nonce": vnonce, "complete": True}
    assert cluster.api(active, "GET", "sys/seal-status").json()["n"] == 3
    old_keys = cluster.keys
    cluster.keys = new_keys[1:3]
    for node in cluster.nodes:
        assert cluster.api(node, "PUT", "sys/seal").status_code == 204
    for node in cluster.nodes:
        assert "failed to decrypt" in unseal_error(node, old_keys[:3])
        assert unseal_error(node, cluster.keys) == ""
    cluster.wait_settled()


def test_generate_root_through_the_cli_yields_a_working_root_token(cluster, tmp_path):
    standby = cluster.standbys()[0]
    code, out, err = bao(standby.url, cluster.root_token, "operator", "generate-root", "-init", "-format=json")
    assert code == 0, err
    otp, nonce = out["otp"], out["nonce"]
    assert out["started"] is True and out["otp_length"] == len(otp) == 28 and out["required"] == 2
    encoded = ""
    for key in cluster.keys:
        code, out, err = bao(
            standby.url, cluster.root_token, "operator", "generate-root", "-format=json", f"-nonce={nonce}", key
        )
        assert code == 0, err
        encoded = out.get("encoded_token") or encoded
    assert out["complete"] is True and encoded
    code, token, err = bao(
        standby.url, cluster.root_token, "operator", "generate-root", f"-decode={encoded}", f"-otp={otp}"
    )
    assert code == 0, err
    token = token.strip()
    assert token.startswith("hvs.") and token != cluster.root_token
    code, out, err = bao(standby.url, token, "token", "lookup", "-format=json")
    assert code == 0, err
    assert out["data"]["policies"] == ["root"]
    # The new root token mounts an engine and writes (through the standby, forwarded to the active node).
    code, _, err = bao(standby.url, token, "secrets", "enable", "-path=recovered", "kv-v2")
    assert code == 0, err
    code, _, err = bao(standby.url, token, "kv", "put", "recovered/after-generate-root", "a=1")
    assert code == 0, err
    assert cluster.api(standby, "GET", "sys/generate-root/attempt").json()["started"] is False


def test_generate_root_with_wrong_shares_mints_nothing(cluster):
    active = cluster.active()
    before = cluster.api(active, "LIST", "auth/token/accessors").json()["data"]["keys"]
    init = cluster.api(active, "PUT", "sys/generate-root/attempt", json={}).json()
    answers = [
        cluster.api(active, "PUT", "sys/generate-root/update", json={"key": k, "nonce": init["nonce"]})
        for k in ("00" * 32 + "01", "11" * 32 + "02")
    ]
    assert answers[0].status_code == 200
    assert answers[1].status_code == 400 and "root generation aborted" in answers[1].json()["errors"][0]
    assert cluster.api(active, "LIST", "auth/token/accessors").json()["data"]["keys"] == before
    assert cluster.api(active, "DELETE", "sys/generate-root/attempt").status_code == 204


@pytest.mark.parametrize("path", ["sys/rekey/init", "sys/generate-root/attempt", "sys/generate-root-token/attempt"])
def test_without_sudo_nobody_starts_or_cancels_an_operation(cluster, path):
    active = cluster.active()
    policy = f'path "{path}" {{ capabilities = ["create", "read", "update", "delete"] }}'
    assert cluster.api(active, "PUT", "sys/policies/acl/nosudo", json={"policy": policy}).status_code == 204
    token = cluster.api(active, "POST", "auth/token/create", json={"policies": ["nosudo"]}).json()["auth"][
        "client_token"
    ]
    body = {"secret_shares": 1, "secret_threshold": 1}
    for who in ("", token):
        for method in ("PUT", "DELETE", "GET"):
            answer = active.api(method, path, token=who or None, json=body if method == "PUT" else None)
            assert answer.status_code == 403, (who, method, answer.text)
    status = cluster.api(active, "GET", path).json()
    assert status.get("data", status)["started"] is False  # OpenBao's generate-root-token answers in "data"


def test_cancel_restores_a_clean_state_and_a_second_init_is_refused_while_one_runs(cluster):
    active = cluster.active()
    first = cluster.api(active, "PUT", "sys/generate-root/attempt", json={})
    assert first.status_code == 200
    second = cluster.api(active, "PUT", "sys/generate-root/attempt", json={})
    assert second.status_code == 400 and "already in progress" in second.json()["errors"][0]
    short = cluster.api(active, "PUT", "sys/rekey/init", json={"secret_shares": 3, "secret_threshold": 4})
    assert short.status_code == 400
    assert cluster.api(active, "DELETE", "sys/generate-root/attempt").status_code == 204
    wait_until(lambda: cluster.api(active, "GET", "sys/generate-root/attempt").json()["started"] is False, 5, "cancel")
