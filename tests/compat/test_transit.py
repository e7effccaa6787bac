"""hvac's ``secrets.transit`` calls against a real node.

https://openbao.org/api-docs/secret/transit/
"""

from __future__ import annotations

import base64

import hvac
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def transit(vault, unique):
    """A fresh transit mount; its path."""
    path = unique("transit")
    vault.sys.enable_secrets_engine("transit", path=path)
    yield path
    vault.sys.disable_secrets_engine(path)


def test_key_lifecycle(vault, transit):
    t = vault.secrets.transit
    t.create_key("k", exportable=True, mount_point=transit)
    t.create_key("k2", key_type="chacha20-poly1305", mount_point=transit)
    key = t.read_key("k", mount_point=transit)["data"]
    assert key["type"] == "aes256-gcm96" and key["latest_version"] == 1 and key["exportable"] is True
    assert t.list_keys(mount_point=transit)["data"]["keys"] == ["k", "k2"]
    assert t.rotate_key("k", mount_point=transit)["data"]["latest_version"] == 2
    t.rotate_key("k", mount_point=transit)
    t.update_key_configuration("k", min_decryption_version=2, min_encryption_version=3, mount_point=transit)
    assert t.trim_key("k", min_version=2, mount_point=transit)["data"]["min_available_version"] == 2
    assert set(t.read_key("k", mount_point=transit)["data"]["keys"]) == {"2", "3"}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="deletion is not allowed"):
        t.delete_key("k2", mount_point=transit)
    t.update_key_configuration("k2", deletion_allowed=True, mount_point=transit)
    t.delete_key("k2", mount_point=transit)
    with pytest.raises(hvac.exceptions.InvalidPath):
        t.read_key("k2", mount_point=transit)


def test_encrypt_decrypt_rewrap_and_export(vault, transit):
    t = vault.secrets.transit
    t.create_key("k", exportable=True, mount_point=transit)
    ciphertext = t.encrypt_data("k", plaintext=b64(b"secret"), mount_point=transit)["data"]["ciphertext"]
    assert t.decrypt_data("k", ciphertext=ciphertext, mount_point=transit)["data"]["plaintext"] == b64(b"secret")
    # The exported key opens the ciphertext with cryptography directly (Vault's nonce || ciphertext || tag).
    exported = t.export_key("k", key_type="encryption-key", mount_point=transit)["data"]["keys"]["1"]
    raw = base64.b64decode(ciphertext.split(":", 2)[2])
    assert AESGCM(base64.b64decode(exported)).decrypt(raw[:12], raw[12:], None) == b"secret"
    t.rotate_key("k", mount_point=transit)
    rewrapped = t.rewrap_data("k", ciphertext=ciphertext, mount_point=transit)["data"]
    assert rewrapped["key_version"] == 2 and rewrapped["ciphertext"].startswith("vault:v2:")
    batch = t.encrypt_data("k", batch_input=[{"plaintext": b64(b"a")}, {"plaintext": b64(b"b")}], mount_point=transit)
    items = [{"ciphertext": r["ciphertext"]} for r in batch["data"]["batch_results"]]
    plain = t.decrypt_data("k", batch_input=items, mount_point=transit)["data"]["batch_results"]
    assert [p["plaintext"] for p in plain] == [b64(b"a"), b64(b"b")]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid ciphertext: no prefix"):
        t.decrypt_data("k", ciphertext="nope", mount_point=transit)


def test_derived_convergent_keys_are_deterministic(vault, transit):
    t = vault.secrets.transit
    t.create_key("c", derived=True, convergent_encryption=True, mount_point=transit)
    args = {"plaintext": b64(b"same"), "context": b64(b"ctx"), "mount_point": transit}
    first = t.encrypt_data("c", **args)["data"]["ciphertext"]
    assert t.encrypt_data("c", **args)["data"]["ciphertext"] == first
    assert t.decrypt_data("c", ciphertext=first, context=b64(b"ctx"), mount_point=transit)["data"]["plaintext"] == b64(
        b"same"
    )


def test_datakey_hmac_random_hash(vault, transit):
    t = vault.secrets.transit
    t.create_key("k", mount_point=transit)
    datakey = t.generate_data_key("k", key_type="plaintext", bits=256, mount_point=transit)["data"]
    assert len(base64.b64decode(datakey["plaintext"])) == 32
    opened = t.decrypt_data("k", ciphertext=datakey["ciphertext"], mount_point=transit)["data"]["plaintext"]
    assert opened == datakey["plaintext"]
    assert "plaintext" not in t.generate_data_key("k", key_type="wrapped", mount_point=transit)["data"]
    mac = t.generate_hmac("k", hash_input=b64(b"msg"), algorithm="sha2-512", mount_point=transit)["data"]["hmac"]
    verified = t.verify_signed_data(
        "k", hash_input=b64(b"msg"), hmac=mac, hash_algorithm="sha2-512", mount_point=transit
    )
    assert verified["data"]["valid"] is True
    random = t.generate_random_bytes(n_bytes=16, output_format="hex", mount_point=transit)["data"]["random_bytes"]
    assert len(bytes.fromhex(random)) == 16
    digest = t.hash_data(hash_input=b64(b"hi"), algorithm="sha2-256", mount_point=transit)["data"]["sum"]
    assert digest == "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"


def test_cli_enables_transit(compat_node, unique):
    """``sys/mounts/<path> {"type": "transit"}`` is what ``bao secrets enable transit`` sends."""
    path = unique("transit")
    body = compat_node.client().adapter.post(f"/v1/sys/mounts/{path}", json={"type": "transit"})
    assert body.status_code == 204
    assert compat_node.client().sys.list_mounted_secrets_engines()["data"][f"{path}/"]["type"] == "transit"


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256", "rsa-2048"])
def test_sign_verify_and_public_key(vault, transit, key_type):
    t = vault.secrets.transit
    t.create_key("s", key_type=key_type, mount_point=transit)
    signed = t.sign_data("s", hash_input=b64(b"msg"), mount_point=transit)["data"]
    assert signed["key_version"] == 1 and signed["signature"].startswith("vault:v1:")
    verified = t.verify_signed_data("s", hash_input=b64(b"msg"), signature=signed["signature"], mount_point=transit)
    assert verified["data"]["valid"] is True
    tampered = t.verify_signed_data("s", hash_input=b64(b"x"), signature=signed["signature"], mount_point=transit)
    assert tampered["data"]["valid"] is False
    # hvac's export_key refuses "public-key" client-side; the path is Vault's.
    public = vault.adapter.get(f"/v1/{transit}/export/public-key/s")["data"]["keys"]["1"]
    assert public.strip() == t.read_key("s", mount_point=transit)["data"]["keys"]["1"]["public_key"].strip()


def test_backup_and_restore(vault, transit):
    t = vault.secrets.transit
    t.create_key("b", exportable=True, allow_plaintext_backup=True, mount_point=transit)
    ciphertext = t.encrypt_data("b", plaintext=b64(b"kept"), mount_point=transit)["data"]["ciphertext"]
    backup = t.backup_key("b", mount_point=transit)["data"]["backup"]
    t.restore_key(backup, name="copy", mount_point=transit)
    assert t.decrypt_data("copy", ciphertext=ciphertext, mount_point=transit)["data"]["plaintext"] == b64(b"kept")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already exists"):
        t.restore_key(backup, name="copy", mount_point=transit)
    t.restore_key(backup, name="copy", force=True, mount_point=transit)
