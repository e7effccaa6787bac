"""``sys/audit`` over HTTP: API creation only where the configuration allows
it, declared devices listed and out of the API's reach.

https://developer.hashicorp.com/vault/api-docs/system/audit
https://openbao.org/docs/configuration/audit
"""

from __future__ import annotations

import json
import os
import stat

import pytest
from falcon import testing

from strongroom.api.app import create_app
from strongroom.config.model import AuditDeviceConfig
from strongroom.core.core import Core, CoreConfig
from tests.helpers.unit_node import Node

REFUSED = "cannot enable audit device via API; use declarative, config-based audit device management instead"


class ConfiguredNode(Node):
    """The unit ``Node`` with a core built from ``config``."""

    def __init__(self, config: CoreConfig):
        super().__init__()
        self.core = Core(self.backend, self.seal, backends=self.backends, clock=self.clock, config=config)
        self.client = testing.TestClient(create_app(self.core, node_id="unit"))


def started(config: CoreConfig) -> ConfiguredNode:
    node = ConfiguredNode(config)
    node.init()
    node.unseal()
    return node


def declared(path: str, file_path: str, **kwargs) -> AuditDeviceConfig:
    return AuditDeviceConfig(type="file", path=path, options=(("file_path", file_path),), **kwargs)


def test_api_creation_is_refused_by_default(tmp_path):
    node = started(CoreConfig())
    victim = tmp_path / "victim"
    victim.write_text("secret\n")
    os.chmod(victim, 0o600)
    before = node.snapshot()
    answer = node.request(
        "PUT", "sys/audit/x", json={"type": "file", "options": {"file_path": str(victim), "mode": "0777"}}
    )
    assert answer.status_code == 400
    assert answer.json == {"errors": [REFUSED]}
    assert node.snapshot() == before
    assert node.request("GET", "sys/audit").json["data"] == {}
    assert victim.read_text() == "secret\n" and stat.S_IMODE(os.stat(victim).st_mode) == 0o600


def test_api_creation_works_when_the_configuration_allows_it(tmp_path):
    node = started(CoreConfig(unsafe_allow_api_audit_creation=True))
    log = tmp_path / "audit.log"
    answer = node.request("PUT", "sys/audit/x", json={"type": "file", "options": {"file_path": str(log)}})
    assert answer.status_code == 204, answer.text
    assert list(node.request("GET", "sys/audit").json["data"]) == ["x/"]
    node.request("GET", "sys/mounts")
    assert "sys/mounts" in log.read_text()
    assert node.request("DELETE", "sys/audit/x").status_code == 204
    assert node.request("GET", "sys/audit").json["data"] == {}


def test_even_when_allowed_a_symlink_gets_a_400_and_is_not_followed(tmp_path):
    node = started(CoreConfig(unsafe_allow_api_audit_creation=True))
    victim = tmp_path / "victim"
    victim.write_text("secret\n")
    os.chmod(victim, 0o600)
    (tmp_path / "audit.log").symlink_to(victim)
    before = node.snapshot()
    answer = node.request(
        "PUT",
        "sys/audit/x",
        json={"type": "file", "options": {"file_path": str(tmp_path / "audit.log"), "mode": "0777"}},
    )
    assert answer.status_code == 400
    assert "symbolic link" in answer.json["errors"][0]
    assert node.snapshot() == before
    assert victim.read_text() == "secret\n" and stat.S_IMODE(os.stat(victim).st_mode) == 0o600


def test_outside_audit_file_directory_gets_a_400_naming_it(tmp_path):
    directory = tmp_path / "audit"
    directory.mkdir()
    node = started(CoreConfig(unsafe_allow_api_audit_creation=True, audit_file_directory=str(directory)))
    answer = node.request(
        "PUT", "sys/audit/x", json={"type": "file", "options": {"file_path": str(directory / ".." / "escaped.log")}}
    )
    assert answer.status_code == 400
    assert f'audit_file_directory "{directory}"' in answer.json["errors"][0]
    assert not (tmp_path / "escaped.log").exists()
    inside = node.request(
        "PUT", "sys/audit/y", json={"type": "file", "options": {"file_path": str(directory / "audit.log")}}
    )
    assert inside.status_code == 204, inside.text


@pytest.mark.parametrize("allow_api", [False, True])
def test_declared_devices_are_listed_log_and_are_out_of_the_apis_reach(tmp_path, allow_api):
    log = tmp_path / "declared.log"
    node = started(
        CoreConfig(
            unsafe_allow_api_audit_creation=allow_api,
            audit_devices=(declared("to-file/", str(log), description="from config"),),
        )
    )
    node.core.sync_declared_audit()
    assert node.request("GET", "sys/audit").json["data"] == {
        "to-file/": {
            "type": "file",
            "description": "from config",
            "local": False,
            "options": {"file_path": str(log)},
            "path": "to-file/",
        }
    }
    node.request("GET", "sys/mounts")
    assert any(json.loads(line)["request"]["path"] == "sys/mounts" for line in log.read_text().splitlines())
    before = node.snapshot()
    deleted = node.request("DELETE", "sys/audit/to-file")
    assert deleted.status_code == 400
    assert "declared in the server configuration" in deleted.json["errors"][0]
    overwritten = node.request("PUT", "sys/audit/to-file", json={"type": "file", "options": {"file_path": "discard"}})
    assert overwritten.status_code == 400
    assert node.snapshot() == before
    assert list(node.request("GET", "sys/audit").json["data"]) == ["to-file/"]


def test_a_restart_without_the_block_removes_the_declared_device(tmp_path):
    node = started(CoreConfig(audit_devices=(declared("a/", "discard"), declared("b/", "discard"))))
    node.core.sync_declared_audit()
    hashed = node.request("POST", "sys/audit-hash/b", json={"input": "x"}).json["hash"]
    # The same storage, started again with one block fewer: the active node removes what is no longer declared.
    restarted = Core(
        node.backend,
        node.seal,
        backends=node.backends,
        clock=node.clock,
        config=CoreConfig(audit_devices=(declared("b/", "discard"),)),
    )
    restarted.sync_declared_audit()
    node.core.invalidate(["audit"])
    assert list(node.request("GET", "sys/audit").json["data"]) == ["b/"]
    assert node.request("POST", "sys/audit-hash/b", json={"input": "x"}).json["hash"] == hashed
