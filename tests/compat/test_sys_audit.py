"""hvac's audit-device calls, and what the file device actually writes.

https://developer.hashicorp.com/vault/api-docs/system/audit
https://developer.hashicorp.com/vault/api-docs/system/audit-hash
"""

from __future__ import annotations

import json
import uuid

import hvac
import pytest

from tests.compat.support import read_kv2


def _entries(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_file_device_logs_hmacs_never_plaintext(vault, unique, tmp_path):
    device, mount = unique("file"), unique("audited")
    log_path = tmp_path / "audit.log"
    vault.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    assert (
        vault.sys.enable_audit_device(
            "file", path=device, description="compat", options={"file_path": str(log_path)}
        ).status_code
        == 204
    )
    try:
        listed = vault.sys.list_enabled_audit_devices()["data"][f"{device}/"]
        assert listed["type"] == "file" and listed["options"]["file_path"] == str(log_path)
        assert listed["description"] == "compat"

        plaintext = f"plaintext-{uuid.uuid4().hex}"
        vault.secrets.kv.v2.create_or_update_secret("app", secret={"password": plaintext}, mount_point=mount)
        reads = 10  # served by both workers: each must log
        for _ in range(reads):
            assert read_kv2(vault, "app", mount) == {"password": plaintext}

        hashed = vault.sys.calculate_hash(device, plaintext)["data"]["hash"]
        assert hashed.startswith("hmac-sha256:") and plaintext not in hashed
        assert vault.sys.calculate_hash(device, plaintext)["data"]["hash"] == hashed  # stable per device
    finally:
        assert vault.sys.disable_audit_device(device).status_code == 204
    assert f"{device}/" not in vault.sys.list_enabled_audit_devices()["data"]

    text = log_path.read_text()
    assert plaintext not in text and vault.token not in text
    entries = _entries(log_path)
    assert {e["type"] for e in entries} == {"request", "response"}

    writes = [
        e
        for e in entries
        if e["type"] == "request"
        and e["request"]["path"] == f"{mount}/data/app"
        and e["request"]["operation"] in ("create", "update")
    ]
    assert writes and writes[0]["request"]["data"]["data"]["password"] == hashed
    assert writes[0]["auth"]["client_token"].startswith("hmac-sha256:")

    read_responses = [
        e
        for e in entries
        if e["type"] == "response"
        and e["request"]["path"] == f"{mount}/data/app"
        and e["request"]["operation"] == "read"
    ]
    assert len(read_responses) == reads
    assert {e["response"]["data"]["data"]["password"] for e in read_responses} == {hashed}

    # Disabled: nothing more is written.
    before = log_path.read_text()
    read_kv2(vault, "app", mount)
    assert log_path.read_text() == before


def test_audit_errors(vault, unique, tmp_path):
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.enable_audit_device("no-such-device", path=unique("bad"))
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.sys.calculate_hash(unique("missing"), "x")
    device = unique("file")
    vault.sys.enable_audit_device("file", path=device, options={"file_path": str(tmp_path / "a.log")})
    try:
        with pytest.raises(hvac.exceptions.InvalidRequest):
            vault.sys.enable_audit_device("file", path=device, options={"file_path": str(tmp_path / "b.log")})
    finally:
        vault.sys.disable_audit_device(device)


def test_audit_needs_sudo(compat_node, vault, unique, tmp_path):
    token = vault.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.Forbidden):
        compat_node.client(token).sys.enable_audit_device(
            "file", path=unique("f"), options={"file_path": str(tmp_path / "x.log")}
        )
    with pytest.raises(hvac.exceptions.Forbidden):
        compat_node.client(token).sys.list_enabled_audit_devices()
