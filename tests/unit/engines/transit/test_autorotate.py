"""``auto_rotate_period`` acting (engines/transit/autorotate.py): on a whole in-memory node
(its real mount table and barrier), the active node's loop rotates exactly the keys
whose newest version is older than their period, on every transit mount, never on a
standby or while sealed, and never twice for one period."""

from __future__ import annotations

import pytest

from strongroom.engines.transit.autorotate import TransitAutoRotation, due
from strongroom.engines.transit.policy import Policy
from tests.helpers.unit_node import Node

HOUR = 3600


@pytest.fixture
def node():
    node = Node()
    node.init()
    node.unseal()
    for mount in ("transit", "team/eaas"):
        assert node.request("POST", f"sys/mounts/{mount}", json={"type": "transit"}).status_code == 204
    assert node.request("POST", "sys/mounts/secret", json={"type": "kv"}).status_code == 204
    return node


def latest(node: Node, path: str) -> int:
    result = node.request("GET", path)
    assert result.status_code == 200, result.text
    return result.json["data"]["latest_version"]


def loop(node: Node, active: list[bool] | None = None) -> TransitAutoRotation:
    state = active if active is not None else [True]
    return TransitAutoRotation(node.seal.barrier, lambda: state[0], node.clock)


def test_keys_older_than_their_period_are_rotated_on_every_transit_mount(node):
    node.request("POST", "transit/keys/hourly", json={"auto_rotate_period": "1h"})
    node.request("POST", "transit/keys/daily", json={"auto_rotate_period": "24h"})
    node.request("POST", "transit/keys/never")
    node.request("POST", "team/eaas/keys/k", json={"type": "ed25519", "auto_rotate_period": "2h"})
    rotation = loop(node)
    assert rotation.tick() == 0
    node.clock.advance(HOUR - 1)
    assert rotation.tick() == 0
    node.clock.advance(1)
    assert rotation.tick() == 1
    assert latest(node, "transit/keys/hourly") == 2
    assert rotation.tick() == 0  # the new version is fresh: not again
    node.clock.advance(HOUR)
    assert rotation.tick() == 2  # hourly again, and team/eaas/k at two hours
    assert latest(node, "transit/keys/hourly") == 3 and latest(node, "team/eaas/keys/k") == 2
    node.clock.advance(22 * HOUR)
    assert rotation.tick() == 3  # hourly, k (2h) and daily
    assert latest(node, "transit/keys/daily") == 2 and latest(node, "transit/keys/never") == 1
    # The rotated keys work: the new version encrypts, the old ones still decrypt.
    old = node.request("POST", "transit/encrypt/never", json={"plaintext": "aGk="}).json["data"]["ciphertext"]
    fresh = node.request("POST", "transit/encrypt/hourly", json={"plaintext": "aGk="}).json["data"]["ciphertext"]
    assert fresh.startswith("vault:v4:") and old.startswith("vault:v1:")


def test_a_period_set_later_counts_from_the_newest_version(node):
    node.request("POST", "transit/keys/k")
    node.clock.advance(5 * HOUR)
    rotation = loop(node)
    assert rotation.tick() == 0
    result = node.request("POST", "transit/keys/k/config", json={"auto_rotate_period": "4h"})
    assert result.status_code == 200
    assert rotation.tick() == 1 and latest(node, "transit/keys/k") == 2
    # turned off again: nothing more
    node.request("POST", "transit/keys/k/config", json={"auto_rotate_period": "0"})
    node.clock.advance(10 * HOUR)
    assert rotation.tick() == 0


def test_nothing_happens_on_a_standby_or_while_sealed(node):
    node.request("POST", "transit/keys/k", json={"auto_rotate_period": "1h"})
    node.clock.advance(2 * HOUR)
    active = [False]
    rotation = loop(node, active)
    assert rotation.tick() == 0 and latest(node, "transit/keys/k") == 1
    sealed = TransitAutoRotation(lambda: None, lambda: True, node.clock)
    assert sealed.tick() == 0
    active[0] = True
    assert rotation.tick() == 1 and latest(node, "transit/keys/k") == 2


def test_a_rotation_by_hand_in_between_is_not_doubled(node):
    node.request("POST", "transit/keys/k", json={"auto_rotate_period": "1h"})
    node.clock.advance(HOUR)
    assert node.request("POST", "transit/keys/k/rotate").status_code == 200
    assert loop(node).tick() == 0 and latest(node, "transit/keys/k") == 2


def test_due_reads_the_newest_version_only():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = Policy(name="k", auto_rotate_period=HOUR)
    assert not due(policy, now)  # no version yet
    policy.rotate(now - timedelta(hours=5))
    policy.rotate(now - timedelta(minutes=30))
    assert not due(policy, now)
    assert due(policy, now + timedelta(minutes=30))


def test_a_storage_failure_is_logged_without_key_material_and_the_loop_goes_on(node, caplog):
    node.request("POST", "transit/keys/k", json={"auto_rotate_period": "1h"})
    node.clock.advance(HOUR)

    class Broken:
        def get(self, key):
            raise RuntimeError("consul unreachable: secret-looking detail")

    rotation = TransitAutoRotation(lambda: Broken(), lambda: True, node.clock)  # type: ignore[arg-type]
    assert rotation.tick() == 0
    assert "RuntimeError" in caplog.text and "secret-looking" not in caplog.text
    assert loop(node).tick() == 1
