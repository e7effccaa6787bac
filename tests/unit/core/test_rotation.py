"""``sys/rotate/config`` and the active node's automatic rotation (core/rotation.py).

Answers compared with OpenBao 2.7.2's (read by hand from ``bao server -dev``):
defaults ``{"enabled": true, "interval": 0, "max_operations": 3865470566}``,
``interval`` read back as a Go duration (``"25h0m0s"``), the 24 h minimum and the
operations range in the same words.
"""

from __future__ import annotations

import pytest

from strongroom.core.rotation import CONFIG_PATH, AutoRotation, RotationConfig
from tests.helpers.unit_node import Node


@pytest.fixture
def node() -> Node:
    n = Node()
    n.init(1, 1)
    n.unseal()
    return n


def test_defaults_as_vault_reports_them(node):
    answer = node.request("GET", "sys/rotate/config")
    assert answer.status_code == 200
    assert answer.json["data"] == {"enabled": True, "interval": 0, "max_operations": 3865470566}


@pytest.mark.parametrize("path", ["sys/rotate/config", "sys/rotate/keyring/config"])
def test_a_written_config_reads_back_and_is_stored_encrypted(node, path):
    assert node.request("POST", path, json={"interval": "25h", "enabled": False}).status_code == 204
    assert node.request("GET", "sys/rotate/config").json["data"] == {
        "enabled": False,
        "interval": "25h0m0s",
        "max_operations": 3865470566,
    }
    stored = node.backend.get(CONFIG_PATH)
    assert stored is not None and b"interval" not in stored  # through the barrier
    # Fields not sent keep their value.
    node.request("POST", path, json={"max_operations": 2_000_000})
    assert node.request("GET", path).json["data"] == {
        "enabled": False,
        "interval": "25h0m0s",
        "max_operations": 2000000,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"interval": "1h"}, "interval must be greater or equal to 24h0m0s"),
        ({"interval": "soon"}, "interval"),
        ({"max_operations": 5}, "max_operations must be in the range [1000000,3865470566]"),
        ({"max_operations": 3865470567}, "max_operations must be in the range"),
        ({"enabled": "perhaps"}, "enabled"),
    ],
)
def test_bad_values_are_refused_and_change_nothing(node, body, message):
    before = node.snapshot()
    answer = node.request("POST", "sys/rotate/config", json=body)
    assert answer.status_code == 400
    assert message in answer.json["errors"][0]
    assert node.snapshot() == before


def test_rotate_keyring_is_the_same_sudo_operation_as_rotate(node):
    assert node.request("PUT", "sys/rotate/keyring").status_code == 204
    assert node.request("GET", "sys/key-status").json["term"] == 2
    node.request("PUT", "sys/policies/acl/ops", json={"policy": 'path "sys/rotate/*" { capabilities = ["update"] }'})
    token = node.request("POST", "auth/token/create", json={"policies": ["ops"]}).json["auth"]["client_token"]
    assert node.request("PUT", "sys/rotate/keyring", token=token).status_code == 403


def make_loop(node: Node, active: bool = True) -> AutoRotation:
    return AutoRotation(
        store=node.seal.barrier, keyring=node.seal.keyring, is_active=lambda: active, rotate=node.seal.rotate,
        clock=node.clock,
    )  # fmt: skip


def test_the_active_node_rotates_once_the_term_is_older_than_the_interval(node):
    loop = make_loop(node)
    assert loop.tick() is False  # no interval configured
    node.request("POST", "sys/rotate/config", json={"interval": "24h"})
    node.clock.advance(24 * 3600 - 1)
    assert loop.tick() is False
    node.clock.advance(1)
    assert loop.tick() is True
    assert node.seal.keyring().active_term == 2
    assert loop.tick() is False  # the new term is young
    # Data written under the old term still reads.
    node.request("POST", "sys/rotate/config", json={"enabled": False})
    node.clock.advance(48 * 3600)
    assert loop.tick() is False


def test_a_standby_or_sealed_node_never_rotates(node):
    node.request("POST", "sys/rotate/config", json={"interval": "24h"})
    node.clock.advance(30 * 3600)
    assert make_loop(node, active=False).tick() is False
    node.seal.seal()
    assert make_loop(node).tick() is False
    node.unseal()
    assert node.seal.keyring().active_term == 1


def test_the_default_config_never_asks_for_a_rotation(node):
    node.clock.advance(10 * 365 * 24 * 3600)
    assert RotationConfig().due(node.seal.keyring(), node.clock()) is False
