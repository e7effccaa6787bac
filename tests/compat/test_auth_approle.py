"""hvac's ``auth.approle`` against a real node, and ``bao write auth/approle/login`` (the real CLI).

https://developer.hashicorp.com/vault/api-docs/auth/approle
"""

from __future__ import annotations

import json
import subprocess

import hvac
import pytest

from tests.helpers.procs import openbao_binary


@pytest.fixture
def approle(vault, unique) -> str:
    """An AppRole mount of its own with role r1 (policy p1); its path."""
    path = unique("approle")
    vault.sys.enable_auth_method("approle", path=path)
    vault.auth.approle.create_or_update_approle("r1", token_policies=["p1"], token_ttl="1h", mount_point=path)
    yield path
    vault.sys.disable_auth_method(path)


def test_roles_and_secret_ids(vault, approle):
    ar = vault.auth.approle
    assert ar.list_roles(mount_point=approle)["data"]["keys"] == ["r1"]
    assert ar.read_role("r1", mount_point=approle)["data"]["token_policies"] == ["p1"]
    issued = ar.generate_secret_id("r1", metadata={"team": "x"}, mount_point=approle)["data"]
    looked = ar.read_secret_id("r1", issued["secret_id"], mount_point=approle)["data"]
    assert looked["metadata"] == {"team": "x"}
    accessors = ar.list_secret_id_accessors("r1", mount_point=approle)["data"]["keys"]
    assert accessors == [issued["secret_id_accessor"]]
    ar.destroy_secret_id("r1", issued["secret_id"], mount_point=approle)
    ar.create_custom_secret_id("r1", "custom-sid-1", mount_point=approle)
    ar.update_role_id("r1", "custom-rid-1", mount_point=approle)
    assert ar.read_role_id("r1", mount_point=approle)["data"]["role_id"] == "custom-rid-1"
    ar.delete_role("r1", mount_point=approle)
    with pytest.raises(hvac.exceptions.InvalidPath):
        ar.read_role("r1", mount_point=approle)


def test_login(compat_node, vault, approle):
    role_id = vault.auth.approle.read_role_id("r1", mount_point=approle)["data"]["role_id"]
    secret_id = vault.auth.approle.generate_secret_id("r1", mount_point=approle)["data"]["secret_id"]
    client = compat_node.client(token="")
    auth = client.auth.approle.login(role_id, secret_id, mount_point=approle)["auth"]
    assert auth["policies"] == ["default", "p1"]
    assert auth["metadata"] == {"role_name": "r1"}
    assert auth["lease_duration"] == 3600
    assert client.lookup_token()["data"]["path"] == f"auth/{approle}/login"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        compat_node.client(token="").auth.approle.login(role_id, "wrong", mount_point=approle)


def test_bao_write_approle_login(compat_node, vault, approle, tmp_path):
    role_id = vault.auth.approle.read_role_id("r1", mount_point=approle)["data"]["role_id"]
    secret_id = vault.auth.approle.generate_secret_id("r1", mount_point=approle)["data"]["secret_id"]
    env = {"HOME": str(tmp_path), "VAULT_ADDR": compat_node.url, "BAO_ADDR": compat_node.url, "PATH": "/usr/bin:/bin"}
    command = [
        openbao_binary(),
        "write",
        "-format=json",
        f"auth/{approle}/login",
        f"role_id={role_id}",
        f"secret_id={secret_id}",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["auth"]["metadata"] == {"role_name": "r1"}
