"""The node core's periodic gauges: usage (tokens, leases) on the active node, and ``core_initialized``.

https://developer.hashicorp.com/vault/docs/configuration/telemetry#usage_gauge_period

Every ``telemetry.usage_gauge_period`` the active node reads every live token
through a private barrier holding the node's keyring, and publishes the
counts (``strongroom.metrics_usage``); a node that is not active withdraws
them at its next tick.  ``none`` turns the walk off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from strongroom import metrics, metrics_usage
from strongroom.config import TelemetryConfig, parse_duration
from strongroom.core.ha import ACTIVE

if TYPE_CHECKING:
    from strongroom.barrier.keyring import Keyring
    from strongroom.storage import Backend

log = logging.getLogger("strongroom.metrics")

#: How often the loop looks at the node's role and initialisation.
TICK = 1.0


class UsageGauges:
    """The loop behind the usage gauges (module docstring), a daemon thread.

    ``keyring()`` is the node's keyring (None while sealed), ``role()`` its HA
    role, ``initialized()`` whether the storage holds a seal configuration
    (asked each tick until it does); ``clock()`` paces the walks (monotonic
    seconds), ``wall_clock()`` tells expired tokens (the core's ``utcnow``)."""

    def __init__(
        self,
        telemetry: TelemetryConfig,
        backend: Backend,
        keyring: Callable[[], Keyring | None],
        role: Callable[[], str],
        initialized: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        period = telemetry.usage_gauge_period
        self._period = None if period in ("", "none") else max(parse_duration(period), TICK)
        self._max_cardinality = telemetry.maximum_gauge_cardinality
        self._backend = backend
        self._keyring = keyring
        self._role = role
        self._initialized = initialized
        self._clock = clock
        self._wall_clock = wall_clock
        self._next = 0.0
        self._published = False
        self._known_initialized = False

    def start(self) -> None:
        threading.Thread(target=self._run, name="usage-gauges", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # a gauge must never take the node core down
                log.exception("usage gauges")
            time.sleep(TICK)

    def tick(self) -> None:
        """One look: publish when due on the active node, withdraw elsewhere."""
        if not self._known_initialized and self._initialized():
            self._known_initialized = True
            metrics.core_initialized.set(1)
        keyring = self._keyring()
        if self._period is None or keyring is None or self._role() != ACTIVE:
            if self._published:
                metrics_usage.publish(None)
                self._published = False
            self._next = 0.0  # the next leadership publishes at once
            return
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._period
        metrics_usage.publish(self.scan(keyring))
        self._published = True

    def scan(self, keyring: Keyring) -> dict:
        """The usage snapshot of the tokens stored now."""
        from strongroom.auth.token_store import TokenStore
        from strongroom.barrier import Barrier, BarrierView
        from strongroom.core.core import utcnow
        from strongroom.core.mounts import AUTH_PATH, MountTable

        barrier = Barrier(self._backend)
        barrier.set_keyring(keyring)
        auth_mounts = MountTable(barrier, AUTH_PATH, "auth/").entries()
        tokens = TokenStore(BarrierView(barrier, "sys/token/"), self._wall_clock or utcnow)

        def auth_method_of(path: str) -> str:
            relative = path[len("auth/") :] if path.startswith("auth/") else path
            best = ""
            for mount_path, entry in auth_mounts.items():
                if relative.startswith(mount_path) and len(mount_path) > len(best):
                    best, method = mount_path, entry.type
            return method if best else "token"  # the built-in token method has no table entry until tuned

        return metrics_usage.summarize(tokens.live_entries(), auth_method_of, self._max_cardinality)
