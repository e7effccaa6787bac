"""hvac's rekey, root generation, wrapping, remount and rotation calls against a real node
(issue 14, items 4, 5 and 8).

The node is shared by the tier: the rekey here ends with the same share count
and threshold, and ``compat_node.keys`` is updated in place to the new shares.
"""

from __future__ import annotations

import uuid

import hvac
import pytest

from strongroom.core.recovery import decode_root_token


def test_rekey_with_hvac_then_the_new_shares_unseal(compat_node, vault):
    started = vault.sys.start_rekey(secret_shares=3, secret_threshold=2)
    assert started["started"] is True and started["required"] == 2
    progress = vault.sys.read_rekey_progress()
    assert progress["nonce"] == started["nonce"] and progress["progress"] == 0
    result = vault.sys.rekey_multi(compat_node.keys[:2], nonce=started["nonce"])
    assert result["complete"] is True and len(result["keys"]) == 3
    compat_node.keys[:] = result["keys"]
    vault.sys.seal()
    try:
        for key in compat_node.keys[:2]:
            status = vault.sys.submit_unseal_key(key)
        assert status["sealed"] is False
    finally:
        for key in compat_node.keys:
            if not vault.sys.is_sealed():
                break
            vault.sys.submit_unseal_key(key)
    assert vault.sys.is_sealed() is False


def test_rekey_verification_then_cancel_changes_nothing(compat_node, vault):
    before = vault.sys.read_seal_status()
    started = vault.sys.start_rekey(secret_shares=5, secret_threshold=3, require_verification=True)
    result = vault.sys.rekey_multi(compat_node.keys[:2], nonce=started["nonce"])
    assert result["verification_required"] is True and result["verification_nonce"]
    verify = vault.sys.read_rekey_verify_progress()
    assert verify["nonce"] == result["verification_nonce"] and verify["started"] is True
    vault.sys.cancel_rekey()
    status = vault.sys.read_seal_status()
    assert (status["t"], status["n"]) == (before["t"], before["n"])
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.read_rekey_verify_progress()


def test_generate_root_with_hvac(compat_node, vault):
    started = vault.sys.start_root_token_generation()
    otp = started["otp"]
    assert started["started"] is True and len(otp) == started["otp_length"]
    encoded = ""
    for key in compat_node.keys[:2]:
        answer = vault.sys.generate_root(key=key, nonce=started["nonce"])
        encoded = answer.get("encoded_token") or encoded
    assert answer["complete"] is True
    token = decode_root_token(encoded, otp)
    assert compat_node.client(token=token).lookup_token()["data"]["policies"] == ["root"]
    assert vault.sys.read_root_generation_progress()["started"] is False


def test_wrap_and_unwrap_with_hvac(compat_node, vault):
    wrapped = vault.sys.wrap(payload={"colour": "green"}, ttl="2m")
    info = wrapped["wrap_info"]
    assert info["ttl"] == 120 and info["creation_path"] == "sys/wrapping/wrap"
    unwrapped = vault.sys.unwrap(token=info["token"])
    assert unwrapped["data"] == {"colour": "green"}
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.unwrap(token=info["token"])
    # The other way hvac users unwrap: a client holding the wrapping token itself.
    second = vault.sys.wrap(payload={"colour": "blue"}, ttl="1m")["wrap_info"]["token"]
    assert compat_node.client(token=second).sys.unwrap()["data"] == {"colour": "blue"}


def test_move_backend_with_hvac(vault):
    source, target = f"mv-{uuid.uuid4().hex[:8]}", f"mvd-{uuid.uuid4().hex[:8]}"
    vault.sys.enable_secrets_engine("kv", path=source, options={"version": "2"})
    vault.secrets.kv.v2.create_or_update_secret(path="x", secret={"a": "1"}, mount_point=source)
    vault.sys.move_backend(source, target)
    mounts = vault.sys.list_mounted_secrets_engines()["data"]
    assert f"{target}/" in mounts and f"{source}/" not in mounts
    assert vault.secrets.kv.v2.read_secret_version(path="x", mount_point=target, raise_on_deleted_version=True)["data"][
        "data"
    ] == {"a": "1"}
    vault.sys.disable_secrets_engine(target)


def test_rotate_and_key_status_with_hvac(vault):
    term = vault.sys.get_encryption_key_status()["data"]["term"]
    vault.sys.rotate_encryption_key()
    assert vault.sys.get_encryption_key_status()["data"]["term"] == term + 1
