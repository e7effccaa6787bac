"""The node core's usage gauges (``server/usage.py``): published on the active
node every ``usage_gauge_period``, withdrawn elsewhere, off with ``none``."""

from __future__ import annotations

from strongroom import metrics_usage
from strongroom.config import TelemetryConfig
from strongroom.server.usage import UsageGauges


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gauges(node, role: list[str], period: str = "10m", clock: Clock | None = None) -> UsageGauges:
    return UsageGauges(
        TelemetryConfig(usage_gauge_period=period),
        node.backend,
        node.seal.keyring,
        lambda: role[0],
        lambda: True,
        clock=clock or Clock(),
        wall_clock=node.clock,
    )


def test_the_active_node_publishes_and_a_standby_withdraws(unsealed):
    token = unsealed.request("POST", "auth/token/create", json={"policies": ["p1"], "ttl": "90m"}).json
    assert token["auth"]["client_token"]
    role, clock = ["active"], Clock()
    usage = gauges(unsealed, role, "10m", clock)
    usage.tick()
    snapshot = metrics_usage.current()
    assert snapshot is not None
    assert snapshot["token_count"] == 2 and snapshot["num_leases"] == 1
    assert snapshot["by_policy"] == {"root": 1, "default": 1, "p1": 1}
    assert snapshot["by_ttl"] == {"+Inf": 1, "2h": 1}
    assert snapshot["by_auth"] == {"token": 2}
    # Not due again before the period: a new token is not counted yet.
    unsealed.request("POST", "auth/token/create", json={"policies": ["p1"]})
    clock.now += 599
    usage.tick()
    assert metrics_usage.current()["token_count"] == 2
    clock.now += 1
    usage.tick()
    assert metrics_usage.current()["token_count"] == 3
    role[0] = "perfstandby"
    usage.tick()
    assert metrics_usage.current() is None


def test_none_turns_the_walk_off(unsealed):
    metrics_usage.publish(None)
    gauges(unsealed, ["active"], "none").tick()
    assert metrics_usage.current() is None
