"""hvac's seal, health, leader and keyring calls against a real node.

https://developer.hashicorp.com/vault/api-docs/system/seal-status and siblings.
"""

from __future__ import annotations

import hvac
import pytest
import requests

from tests.compat.support import read_kv2


def test_init_status(vault):
    assert vault.sys.is_initialized() is True
    assert vault.sys.read_init_status() == {"initialized": True}


def test_initialize_again_is_invalid_request(compat_node):
    with pytest.raises(hvac.exceptions.InvalidRequest):
        compat_node.client(token="").sys.initialize(secret_shares=3, secret_threshold=2)


def test_seal_status_unsealed(vault):
    status = vault.sys.read_seal_status()
    assert status["sealed"] is False and status["initialized"] is True
    assert (status["t"], status["n"], status["progress"]) == (2, 3, 0)
    assert status["type"] == "shamir" and status["storage_type"] == "consul"
    assert vault.sys.is_sealed() is False


def test_health_get_and_head(compat_node, vault):
    health = vault.sys.read_health_status(method="GET")
    assert isinstance(health, dict), health
    assert (health["initialized"], health["sealed"], health["standby"]) == (True, False, False)
    head = vault.sys.read_health_status(method="HEAD")
    assert head.status_code == 200 and head.content == b""
    custom = vault.sys.read_health_status(method="GET", standby_ok=True, active_code=299)
    assert custom.status_code == 299 and custom.json()["sealed"] is False
    head_custom = requests.head(
        f"{compat_node.url}/v1/sys/health", params={"activecode": 204, "standbyok": "true"}, timeout=10
    )
    assert head_custom.status_code == 204


def test_health_needs_no_token(compat_node):
    health = compat_node.client(token="").sys.read_health_status(method="GET")
    assert health["initialized"] is True


def test_leader_status(compat_node, vault):
    leader = vault.sys.read_leader_status()
    assert leader["ha_enabled"] is True
    assert leader["is_self"] is True
    assert leader["leader_address"] == compat_node.url


def test_key_status_and_rotate(vault, unique):
    mount = unique("rot")
    vault.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    vault.secrets.kv.v2.create_or_update_secret("before", secret={"v": "old-term"}, mount_point=mount)
    before = vault.sys.get_encryption_key_status()
    term = before["term"]
    assert isinstance(term, int) and term >= 1
    assert before["install_time"]

    response = vault.sys.rotate_encryption_key()
    assert response.status_code == 204

    after = vault.sys.get_encryption_key_status()
    assert after["term"] == term + 1
    # Data written under the old term stays readable, new data uses the new one.
    assert read_kv2(vault, "before", mount) == {"v": "old-term"}
    vault.secrets.kv.v2.create_or_update_secret("after", secret={"v": "new-term"}, mount_point=mount)
    assert read_kv2(vault, "after", mount) == {"v": "new-term"}


def test_rotate_and_seal_need_sudo(compat_node, vault):
    token = vault.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    limited = compat_node.client(token)
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.sys.rotate_encryption_key()
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.sys.seal()
    assert vault.sys.is_sealed() is False


def test_seal_and_unseal_with_shares(compat_node, vault, unique):
    mount = unique("seal")
    vault.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    vault.secrets.kv.v2.create_or_update_secret("kept", secret={"survives": "sealing"}, mount_point=mount)
    anonymous = compat_node.client(token="")
    try:
        assert vault.sys.seal().status_code == 204
        assert vault.sys.is_sealed() is True
        # Every worker of the node is sealed, not just the one that served the seal.
        for _ in range(10):
            with pytest.raises(hvac.exceptions.VaultDown):
                read_kv2(vault, "kept", mount)
        with pytest.raises(hvac.exceptions.VaultDown):
            vault.auth.token.lookup_self()
        assert vault.sys.read_health_status(method="GET").status_code == 503
        assert vault.sys.read_health_status(method="HEAD").status_code == 503
        assert vault.sys.read_health_status(method="GET", sealed_code=299).status_code == 299

        status = anonymous.sys.read_seal_status()
        assert (status["sealed"], status["t"], status["n"], status["progress"]) == (True, 2, 3, 0)

        status = anonymous.sys.submit_unseal_key(compat_node.keys[0])
        assert (status["sealed"], status["progress"]) == (True, 1)
        status = anonymous.sys.submit_unseal_key(reset=True)
        assert (status["sealed"], status["progress"]) == (True, 0)

        with pytest.raises(hvac.exceptions.InvalidRequest):
            anonymous.sys.submit_unseal_key("this is not a share")
        assert anonymous.sys.read_seal_status()["progress"] == 0

        status = anonymous.sys.submit_unseal_keys(compat_node.keys[1:3])
        assert status["sealed"] is False and status["progress"] == 0
    finally:
        compat_node.unseal()
    # Both workers are unsealed and read the data written before sealing.
    for _ in range(20):
        assert read_kv2(vault, "kept", mount) == {"survives": "sealing"}


def test_unseal_reset_while_unsealed_is_invalid_request(compat_node):
    """Vault answers ``{"reset": true}`` on an unsealed node with 400 "vault is unsealed"."""
    with pytest.raises(hvac.exceptions.InvalidRequest):
        compat_node.client(token="").sys.submit_unseal_key(reset=True)
