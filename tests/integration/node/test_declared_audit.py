"""Audit devices declared in the configuration, through real nodes on real Consul:
written to the table by the active node, logging on every worker of every node,
kept across restarts with their salt, removed once their block is gone, and out
of the API's reach; the API itself creates none (CVE-2025-6000 class).

https://openbao.org/docs/configuration/audit
"""

from __future__ import annotations

import json
import os
import stat
import uuid

from tests.helpers.procs import wait_until

REFUSED = "cannot enable audit device via API; use declarative, config-based audit device management instead"


def _block(audit_log) -> str:
    return (
        f'audit "file" "to-file" {{\n  description = "declared"\n  options {{\n'
        f'    file_path = "{audit_log}"\n    mode = "0640"\n  }}\n}}\n'
    )


def _devices(node, token) -> dict:
    return node.api("GET", "sys/audit", token=token).json().get("data", {})


def _logged_paths(audit_log) -> list[str]:
    return [json.loads(line)["request"]["path"] for line in audit_log.read_text().splitlines()]


def test_declared_device_on_every_worker_and_node_and_removed_with_its_block(make_node, tmp_path):
    audit_log = tmp_path / "audit.log"
    prefix = f"sr-{uuid.uuid4().hex[:12]}/"
    first = make_node(workers=2, prefix=prefix, extra=_block(audit_log))
    init = first.init(3, 2)
    token = init["root_token"]
    first.unseal(init["keys"][:2])
    wait_until(lambda: "to-file/" in _devices(first, token), 10, "the declared device on the active node")
    assert _devices(first, token)["to-file/"]["description"] == "declared"
    assert stat.S_IMODE(os.stat(audit_log).st_mode) == 0o640  # created by the device, with its mode

    # Every worker loaded it: each request (new connection, spread over the workers) is logged.
    markers = [f"sys/policies/acl/m-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    for marker in markers:
        first.api("GET", marker, token=token)
    assert set(markers) <= set(_logged_paths(audit_log))

    # A second node with the same configuration: nothing to change, and it logs too.
    second = make_node(workers=2, prefix=prefix, extra=_block(audit_log))
    second.unseal(init["keys"][:2])
    wait_until(lambda: "to-file/" in _devices(second, token), 10, "the declared device on the second node")
    hashed = first.api("POST", "sys/audit-hash/to-file", token=token, json={"input": "x"}).json()["data"]["hash"]

    # Out of the API's reach, and the API creates nothing.
    deleted = first.api("DELETE", "sys/audit/to-file", token=token)
    assert deleted.status_code == 400 and "declared in the server configuration" in deleted.json()["errors"][0]
    victim = tmp_path / "victim"
    victim.write_text("secret\n")
    os.chmod(victim, 0o600)
    created = first.api(
        "PUT", "sys/audit/x", token=token, json={"type": "file", "options": {"file_path": str(victim), "mode": "0777"}}
    )
    assert (created.status_code, created.json()) == (400, {"errors": [REFUSED]})
    assert victim.read_text() == "secret\n" and stat.S_IMODE(os.stat(victim).st_mode) == 0o600

    # The active node restarts with the same block: the second node takes over, same device, same salt.
    first.stop()
    wait_until(lambda: second.api("GET", "sys/health").status_code == 200, 15, "the second node to be active")
    assert (
        second.api("POST", "sys/audit-hash/to-file", token=token, json={"input": "x"}).json()["data"]["hash"] == hashed
    )

    # The block is removed from the configuration of the node that becomes active: the device goes.
    second.stop()
    first.config_path.write_text(first.config_path.read_text().replace(_block(audit_log), ""))
    first.start()
    first.unseal(init["keys"][:2])
    wait_until(lambda: first.api("GET", "sys/health").status_code == 200, 15, "the first node to be active again")
    wait_until(lambda: _devices(first, token) == {}, 10, "the undeclared device to be removed")
    before = len(_logged_paths(audit_log))
    first.api("GET", "sys/mounts", token=token)
    assert len(_logged_paths(audit_log)) == before


def test_in_memory_node_enables_its_declared_device_when_unsealed(make_node, tmp_path):
    """A node without a node core (storage "inmem") is active once unsealed: its one worker writes the devices."""
    audit_log = tmp_path / "audit.log"
    node = make_node(workers=1, storage='storage "inmem" {}\n', extra=_block(audit_log))
    init = node.init(1, 1)
    token = init["root_token"]
    node.unseal(init["keys"][:1])
    assert list(_devices(node, token)) == ["to-file/"]
    node.api("GET", "sys/mounts", token=token)
    assert "sys/mounts" in _logged_paths(audit_log)
    created = node.api("PUT", "sys/audit/x", token=token, json={"type": "file", "options": {"file_path": "discard"}})
    assert (created.status_code, created.json()) == (400, {"errors": [REFUSED]})


def test_dev_server_refuses_api_audit_devices_unless_its_config_allows_them(tmp_path):
    """``server -dev`` refuses like ``bao server -dev``; ``-dev -config FILE`` adds the file's settings."""
    from tests.helpers.procs import StrongroomDevServer

    with StrongroomDevServer(config_hcl="") as dev:
        created = dev.api("PUT", "sys/audit/x", json={"type": "file", "options": {"file_path": "discard"}})
        assert (created.status_code, created.json()) == (400, {"errors": [REFUSED]})
    audit_log = tmp_path / "dev.log"
    with StrongroomDevServer(config_hcl=_block(audit_log)) as dev:
        assert list(dev.api("GET", "sys/audit").json()["data"]) == ["to-file/"]
        assert "sys/mounts" in _logged_paths(audit_log)  # the readiness check asked for it
        assert dev.api("DELETE", "sys/audit/to-file").status_code == 400
