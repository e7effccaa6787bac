"""ACL policies as hvac sees them: denied paths raise Forbidden, granted ones work.

https://developer.hashicorp.com/vault/docs/concepts/policies
"""

from __future__ import annotations

import hvac
import pytest

from tests.compat.support import read_kv2
from tests.helpers.procs import wait_until

POLICY = """
path "{m}/data/app/*"      {{ capabilities = [{app}] }}
path "{m}/data/app/secret" {{ capabilities = ["deny"] }}
path "{m}/metadata/app/*"  {{ capabilities = ["list"] }}
path "{m}/data/writable"   {{ capabilities = ["create", "update", "read"] }}
path "{m}/data/once"       {{ capabilities = ["create"] }}
"""


@pytest.fixture
def restricted(compat_node, vault, unique):
    """(client with a token holding only POLICY and default, mount, policy name)."""
    mount, policy = unique("acl"), unique("restricted")
    vault.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    for path in ("app/one", "app/secret", "other"):
        vault.secrets.kv.v2.create_or_update_secret(path, secret={"v": path}, mount_point=mount)
    vault.sys.create_or_update_acl_policy(policy, POLICY.format(m=mount, app='"read"'))
    token = vault.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    return compat_node.client(token), mount, policy


def test_granted_paths_work(restricted):
    client, mount, _ = restricted
    assert read_kv2(client, "app/one", mount) == {"v": "app/one"}
    assert client.secrets.kv.v2.list_secrets("app", mount_point=mount)["data"]["keys"] == ["one", "secret"]
    client.secrets.kv.v2.create_or_update_secret("writable", secret={"a": "1"}, mount_point=mount)
    client.secrets.kv.v2.create_or_update_secret("writable", secret={"a": "2"}, mount_point=mount)
    assert read_kv2(client, "writable", mount) == {"a": "2"}
    assert client.auth.token.lookup_self()["data"]["policies"] == ["default", restricted[2]]
    client.auth.token.renew_self()


def test_denied_paths_raise_forbidden(restricted):
    client, mount, _ = restricted
    kv = client.secrets.kv.v2
    denied = [
        lambda: read_kv2(client, "other", mount),
        lambda: read_kv2(client, "app/secret", mount),  # explicit deny beats the glob
        lambda: kv.create_or_update_secret("app/one", secret={"v": "x"}, mount_point=mount),
        lambda: kv.list_secrets("", mount_point=mount),
        lambda: kv.read_secret_metadata("app/one", mount_point=mount),
        lambda: kv.delete_metadata_and_all_versions("app/one", mount_point=mount),
        lambda: kv.destroy_secret_versions("app/one", versions=[1], mount_point=mount),
        lambda: client.sys.list_mounted_secrets_engines(),
        lambda: client.sys.enable_secrets_engine("kv", path="sneaky"),
        lambda: client.sys.create_or_update_acl_policy("sneaky", 'path "*" { capabilities = ["sudo"] }'),
        lambda: client.sys.read_acl_policy("default"),
        lambda: client.sys.list_acl_policies(),
        lambda: client.auth.token.create(policies=["default"]),
        lambda: client.auth.token.list_accessors(),
        lambda: client.sys.get_encryption_key_status(),
    ]
    for attempt in denied:
        with pytest.raises(hvac.exceptions.Forbidden):
            attempt()


def test_create_only_capability(restricted):
    client, mount, _ = restricted
    client.secrets.kv.v2.create_or_update_secret("once", secret={"a": "1"}, mount_point=mount)
    with pytest.raises(hvac.exceptions.Forbidden):  # now it exists: that is an update
        client.secrets.kv.v2.create_or_update_secret("once", secret={"a": "2"}, mount_point=mount)


def test_capabilities_self(restricted):
    client, mount, _ = restricted
    caps = client.sys.get_capabilities([f"{mount}/data/app/one"])
    assert caps["capabilities"] == ["read"] and caps[f"{mount}/data/app/one"] == ["read"]
    many = client.sys.get_capabilities([f"{mount}/data/app/one", f"{mount}/data/app/secret", "sys/mounts"])
    assert many["data"] == {
        f"{mount}/data/app/one": ["read"],
        f"{mount}/data/app/secret": ["deny"],
        "sys/mounts": ["deny"],
    }


def test_policy_changes_apply_to_live_tokens(vault, restricted):
    client, mount, policy = restricted
    vault.sys.create_or_update_acl_policy(policy, POLICY.format(m=mount, app='"read", "create", "update"'))
    # Every worker sees the new policy at once (each write may land on either).
    for i in range(6):
        client.secrets.kv.v2.create_or_update_secret("app/one", secret={"v": i}, mount_point=mount)

    vault.sys.delete_acl_policy(policy)
    for _ in range(6):
        with pytest.raises(hvac.exceptions.Forbidden):
            read_kv2(client, "app/one", mount)


def test_revoked_token_is_forbidden_everywhere(vault, restricted):
    client, mount, _ = restricted
    vault.auth.token.revoke(client.token)
    for _ in range(6):
        with pytest.raises(hvac.exceptions.Forbidden):
            read_kv2(client, "app/one", mount)


def test_missing_and_bogus_tokens_are_forbidden(compat_node, restricted):
    _, mount, _ = restricted
    for token in ("", "hvs.bogus"):
        with pytest.raises(hvac.exceptions.Forbidden):
            read_kv2(compat_node.client(token), "app/one", mount)


def test_expired_token_is_forbidden(compat_node, vault, restricted):
    _, mount, policy = restricted
    token = vault.auth.token.create(policies=[policy], ttl="1s")["auth"]["client_token"]
    client = compat_node.client(token)

    def expired() -> bool:
        try:
            read_kv2(client, "app/one", mount)
        except hvac.exceptions.Forbidden:
            return True
        return False

    wait_until(expired, 15.0, "a 1s token to expire", interval=0.2)
