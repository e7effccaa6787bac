"""No secret reaches Consul, the disk or a log line in plaintext."""

import base64
import glob
import os
import tempfile

from tests.helpers.procs import wait_until

SECRETS = ["correct-horse-battery-staple-v1", "Tr0ub4dor&3-kv2-secret", "patched-in-secret-9f3a"]


def _needles(values):
    out = set()
    for value in values:
        raw = value.encode()
        out |= {raw, base64.b64encode(raw), raw.hex().encode()}
    return out


def test_secrets_tokens_and_keys_never_stored_or_logged_in_plaintext(make_node, consul_agent, tmp_path):
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "strongroom-*")))
    audit_log = tmp_path / "audit.log"
    node = make_node(
        workers=2,
        prefix="sr-scan/",
        extra=f'audit "file" "file" {{\n  options {{\n    file_path = "{audit_log}"\n  }}\n}}\n',
    )
    init = node.init(3, 2)
    token = init["root_token"]
    node.unseal(init["keys"][:2])
    wait_until(
        lambda: "file/" in node.api("GET", "sys/audit", token=token).json().get("data", {}),
        10,
        "the declared audit device",
    )
    node.api("POST", "sys/mounts/kv", token=token, json={"type": "kv"})
    node.api("POST", "sys/mounts/secret", token=token, json={"type": "kv-v2"})
    assert node.api("PUT", "kv/app", token=token, json={"password": SECRETS[0]}).status_code == 204
    assert node.api("POST", "secret/data/app", token=token, json={"data": {"password": SECRETS[1]}}).status_code == 200
    assert (
        node.api(
            "PATCH",
            "secret/data/app",
            token=token,
            json={"data": {"other": SECRETS[2]}},
            headers={"Content-Type": "application/merge-patch+json"},
        ).status_code
        == 200
    )
    child = node.api("POST", "auth/token/create", token=token, json={"policies": ["default"]}).json()["auth"]
    assert node.api("GET", "kv/app", token=token).json()["data"]["password"] == SECRETS[0]
    assert node.api("GET", "secret/data/app", token=token).json()["data"]["data"]["other"] == SECRETS[2]
    node.api("POST", "sys/rotate", token=token)

    needles = _needles(SECRETS + init["keys"] + init["keys_base64"] + [token, child["client_token"], child["accessor"]])

    client = consul_agent.client()
    _, entries = client.kv.get("sr-scan/", recurse=True)
    assert entries, "the node stored nothing?"
    for entry in entries:
        value = entry["Value"] or b""
        for needle in needles:
            assert needle not in value, f"plaintext secret in Consul key {entry['Key']}"

    audit_text = audit_log.read_bytes()
    assert b"hmac-sha256:" in audit_text
    written = [audit_log, node.log_path, node.config_path]
    written += [
        p
        for d in set(glob.glob(os.path.join(tempfile.gettempdir(), "strongroom-*"))) - before
        for p in glob.glob(os.path.join(d, "**"), recursive=True)
        if os.path.isfile(p)
    ]
    for path in written:
        data = open(path, "rb").read()
        for needle in needles:
            assert needle not in data, f"plaintext secret in {path}"
