"""``HAManager`` (core/ha.py) over in-memory storage: the times a node reports.

Vault renders every ``time.Time`` as Go's RFC3339Nano in UTC (trailing zeros of
the fraction trimmed, no fraction on a whole second); ``active_time`` in
``sys/leader`` and ``last_echo`` in ``sys/ha-status`` are such times.  The
election against a real Consul agent is tests/integration/core/test_ha.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from strongroom.core.ha import ACTIVE, LOCK_KEY, PERFSTANDBY, HAManager
from tests.helpers.unit_node import FakeClock


class InMemoryLockSessions:
    """``storage.LockSessions`` for one lock key; sessions never expire."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._index = 1
        self._value: bytes | None = None
        self._holder: str | None = None
        self._sessions = 0

    def create_session(self, name: str, checks: list[str], lock_delay: str = "0s", behavior: str = "release") -> str:
        with self._changed:
            self._sessions += 1
            return f"session-{self._sessions}"

    def destroy_session(self, session_id: str) -> None:
        self.release(LOCK_KEY, session_id)

    def acquire(self, key: str, value: bytes, session: str) -> bool:
        with self._changed:
            if self._holder not in (None, session):
                return False
            self._holder, self._value = session, value
            self._bump()
            return True

    def release(self, key: str, session: str) -> bool:
        with self._changed:
            if self._holder != session:
                return False
            self._holder, self._value = None, None
            self._bump()
            return True

    def wait_key(self, key: str, index: int, wait: str = "5s") -> tuple[int, bytes | None, str | None]:
        with self._changed:
            self._changed.wait_for(lambda: self._index != index, timeout=float(wait.removesuffix("s")))
            return self._index, self._value, self._holder

    def _bump(self) -> None:
        self._index += 1
        self._changed.notify_all()


class InMemoryRegistry:
    """``storage.ServiceRegistry`` keeping the catalog in a dict."""

    def __init__(self) -> None:
        self.instances: dict[str, dict] = {}

    def register_ttl_check(self, check_id: str, name: str, ttl: float) -> None:
        pass

    def pass_check(self, check_id: str) -> None:
        pass

    def deregister_check(self, check_id: str) -> None:
        pass

    def register_service(
        self, service_id: str, name: str, address: str, port: int, tags: list[str], meta: dict[str, str]
    ) -> None:
        self.instances[service_id] = {"Address": address, "Port": port, "Tags": tags, "Meta": meta}

    def deregister_service(self, service_id: str) -> None:
        self.instances.pop(service_id, None)

    def service_instances(self, name: str) -> list[dict]:
        return list(self.instances.values())


@pytest.fixture
def make_node() -> Iterator:
    """Makes started, unsealed nodes sharing one lock and one catalog; stops them at the end."""
    sessions, registry = InMemoryLockSessions(), InMemoryRegistry()
    made: list[HAManager] = []

    def make(name: str, clock: FakeClock) -> HAManager:
        ha = HAManager(
            sessions=sessions,
            registry=registry,
            is_unsealed=lambda: True,
            node_id=name,
            api_addr=f"https://{name}.example:8200",
            publish=lambda event: None,
            clock=clock,
        )
        made.append(ha)
        ha.seal_changed(True)
        ha.start(initialized=True)
        assert ha.settle(5.0)
        return ha

    yield make
    for ha in made:
        ha.stop()


@pytest.mark.parametrize(
    ("microsecond", "rendered"),
    [
        (120_000, "2026-01-02T03:04:05.12Z"),
        (123_456, "2026-01-02T03:04:05.123456Z"),
        (0, "2026-01-02T03:04:05Z"),
    ],
)
def test_active_time_is_rendered_as_go_rfc3339nano_and_standbys_report_the_leaders(make_node, microsecond, rendered):
    active = make_node("a", FakeClock(datetime(2026, 1, 2, 3, 4, 5, microsecond, tzinfo=UTC)))
    assert active.role == ACTIVE
    assert active.state()["active_time"] == rendered

    standby = make_node("b", FakeClock(datetime(2027, 1, 1, tzinfo=UTC)))
    assert standby.role == PERFSTANDBY
    assert standby.state()["leader_node"] == "a"
    assert standby.state()["active_time"] == rendered  # read from the lock's value, as written


def test_last_echo_of_a_standby_is_the_asking_nodes_time_in_go_rfc3339nano(make_node):
    active = make_node("a", FakeClock(datetime(2026, 1, 2, 3, 4, 5, 500_000, tzinfo=UTC)))
    make_node("b", FakeClock(datetime(2027, 1, 1, tzinfo=UTC)))

    nodes = {node["hostname"]: node for node in active.cluster_nodes()}
    assert nodes["a"]["last_echo"] is None
    assert nodes["b"]["last_echo"] == "2026-01-02T03:04:05.5Z"
