"""hvac's ``sys`` auth-method calls and ``auth.userpass`` against a real node, and
``bao login -method=userpass`` (the real CLI).

https://developer.hashicorp.com/vault/api-docs/system/auth
https://developer.hashicorp.com/vault/api-docs/auth/userpass
"""

from __future__ import annotations

import json
import subprocess

import hvac
import pytest

from tests.helpers.procs import openbao_binary


@pytest.fixture
def userpass(vault, unique) -> str:
    """A userpass mount of its own, with user alice (password ``pw``, policy p1); its path."""
    path = unique("userpass")
    vault.sys.enable_auth_method("userpass", path=path, description="people")
    vault.auth.userpass.create_or_update_user("alice", password="pw", policies=["p1"], mount_point=path)
    yield path
    vault.sys.disable_auth_method(path)


def test_enable_list_read_tune_disable(vault, unique):
    path = unique("up")
    vault.sys.enable_auth_method("userpass", path=path, description="d1")
    methods = vault.sys.list_auth_methods()["data"]
    assert methods[f"{path}/"]["type"] == "userpass"
    assert methods[f"{path}/"]["description"] == "d1"
    assert vault.sys.read_auth_method_tuning(path)["data"]["default_lease_ttl"] == 2764800
    vault.sys.tune_auth_method(path, default_lease_ttl="1h", description="d2")
    assert vault.sys.read_auth_method_tuning(path)["data"]["default_lease_ttl"] == 3600
    assert vault.sys.list_auth_methods()["data"][f"{path}/"]["description"] == "d2"
    vault.sys.disable_auth_method(path)
    assert f"{path}/" not in vault.sys.list_auth_methods()["data"]


def test_unknown_type_is_refused(vault, unique):
    with pytest.raises(hvac.exceptions.InvalidRequest, match="plugin not found in the catalog"):
        vault.sys.enable_auth_method("no-such-method", path=unique("x"))


def test_users_crud(vault, userpass):
    up = vault.auth.userpass
    up.create_or_update_user("bob", password="pw2", policies="a,b", mount_point=userpass)
    assert up.read_user("bob", mount_point=userpass)["data"]["token_policies"] == ["a", "b"]
    assert sorted(up.list_user(mount_point=userpass)["data"]["keys"]) == ["alice", "bob"]
    up.update_password_on_user("bob", "pw3", mount_point=userpass)
    up.delete_user("bob", mount_point=userpass)
    with pytest.raises(hvac.exceptions.InvalidPath):
        up.read_user("bob", mount_point=userpass)


def test_login_gives_a_working_token(compat_node, userpass):
    client = compat_node.client(token="")
    result = client.auth.userpass.login("alice", "pw", mount_point=userpass)
    auth = result["auth"]
    assert auth["policies"] == ["default", "p1"]
    assert auth["metadata"] == {"username": "alice"}
    assert (auth["token_type"], auth["orphan"], auth["renewable"]) == ("service", True, True)
    assert client.token == auth["client_token"]
    assert client.lookup_token()["data"]["display_name"] == "userpass-alice"


def test_wrong_password_and_unknown_user_are_refused_alike(compat_node, userpass):
    client = compat_node.client(token="")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid username or password"):
        client.auth.userpass.login("alice", "wrong", mount_point=userpass)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid username or password"):
        client.auth.userpass.login("nobody", "wrong", mount_point=userpass)


def test_bao_login_method_userpass(compat_node, userpass, tmp_path):
    """``bao login -method=userpass`` as a user would run it (no token in the environment)."""
    env = {"HOME": str(tmp_path), "VAULT_ADDR": compat_node.url, "BAO_ADDR": compat_node.url, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [
            openbao_binary(),
            "login",
            "-format=json",
            "-method=userpass",
            f"-path={userpass}",
            "username=alice",
            "password=pw",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    auth = json.loads(result.stdout)["auth"]
    assert auth["metadata"] == {"username": "alice"}
    assert auth["client_token"]
    looked = compat_node.client(token=auth["client_token"]).lookup_token()["data"]
    assert looked["meta"] == {"username": "alice"}
