"""Automatic rotation of the barrier's key: ``sys/rotate/config``.

https://developer.hashicorp.com/vault/api-docs/system/rotate-config

The configuration is stored through the barrier at ``core/rotate-config``.
The active node's node core asks ``rotate_if_due`` every minute: when
``enabled`` and the active term is older than ``interval``, it rotates (a new
term joins the keyring; older terms keep decrypting what they wrote).  As in
Vault, an interval below 24 hours is refused and 0 means "no interval".

``max_operations`` (Vault's bound on encryptions under one term, there
counted per node) is validated and stored, but Strongroom does not count
encryptions (``sys/key-status`` reports 0): it never triggers a rotation.
With random 96-bit nonces the risk it guards against starts near 2^32
encryptions under one key; rotate by interval, or by hand (``sys/rotate``),
well before a cluster could write that much.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from strongroom.durations import format_duration
from strongroom.errors import InvalidRequest
from strongroom.fields import to_bool, to_duration_seconds, to_int
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.barrier.keyring import Keyring
    from strongroom.core.core import Core

log = logging.getLogger("strongroom.rotation")

CONFIG_PATH = "core/rotate-config"
MINIMUM_INTERVAL = 24 * 3600
OPERATIONS_MINIMUM = 1_000_000
OPERATIONS_MAXIMUM = 3_865_470_566


class ValueStore(Protocol):
    """What the configuration is read from and written to: a barrier."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> int: ...


@dataclass(frozen=True)
class RotationConfig:
    enabled: bool = True
    interval: int = 0  # seconds; 0: no automatic rotation by age
    max_operations: int = OPERATIONS_MAXIMUM

    @classmethod
    def load(cls, store: ValueStore) -> RotationConfig:
        raw = store.get(CONFIG_PATH)
        return cls() if raw is None else cls(**json.loads(raw))

    def save(self, store: ValueStore) -> None:
        store.put(CONFIG_PATH, json.dumps(asdict(self)).encode())

    def updated(self, data: dict[str, Any]) -> RotationConfig:
        """This configuration with the fields ``data`` sets, validated as Vault does."""
        enabled, interval, operations = self.enabled, self.interval, self.max_operations
        if data.get("enabled") is not None:
            enabled = to_bool("enabled", data["enabled"])
        if data.get("interval") is not None:
            interval = to_duration_seconds("interval", data["interval"])
        if data.get("max_operations") is not None:
            operations = to_int("max_operations", data["max_operations"])
        if interval and interval < MINIMUM_INTERVAL:
            raise InvalidRequest(f"interval must be greater or equal to {format_duration(MINIMUM_INTERVAL)}")
        if not OPERATIONS_MINIMUM <= operations <= OPERATIONS_MAXIMUM:
            raise InvalidRequest(f"max_operations must be in the range [{OPERATIONS_MINIMUM},{OPERATIONS_MAXIMUM}]")
        return RotationConfig(enabled, interval, operations)

    def body(self) -> dict[str, Any]:
        """Vault's read body: ``interval`` as a Go duration, or the number 0."""
        return {
            "enabled": self.enabled,
            "interval": format_duration(self.interval) if self.interval else 0,
            "max_operations": self.max_operations,
        }

    def due(self, keyring: Keyring, now: datetime) -> bool:
        """Whether the active term is older than ``interval`` (and rotation is on)."""
        if not self.enabled or not self.interval:
            return False
        return (now - keyring.active_key().install_time).total_seconds() >= self.interval


def rotate_if_due(store: ValueStore, keyring: Keyring | None, now: datetime, rotate: Callable[[], object]) -> bool:
    """Rotate when the stored configuration says the active term is too old (the
    active node's node core calls this every minute); returns whether it did."""
    if keyring is None:
        return False
    if not RotationConfig.load(store).due(keyring, now):
        return False
    log.info("rotating the barrier key: term %d is older than the configured interval", keyring.active_term)
    rotate()
    return True


def rotate_config_path(core: Core) -> Path:
    """``sys/rotate/config`` (and OpenBao's ``sys/rotate/keyring/config``)."""

    def read(req: Request) -> Response:
        return Response(data=RotationConfig.load(core.barrier).body())

    def update(req: Request) -> Response:
        RotationConfig.load(core.barrier).updated(dict(req.data or {})).save(core.barrier)
        return Response(status=204)

    return Path(
        "rotate/(?:keyring/)?config",
        {logical.READ: read, logical.UPDATE: update},
        synopsis="Configures settings related to the backend encryption key management.",
        description="'enabled' and 'interval' (at least 24h, or 0 for none): the active node rotates the "
        "key when its term is older than the interval.  'max_operations' is stored but not acted on.",
    )


class AutoRotation:
    """The node core's loop: every ``period`` seconds, on the active node only,
    ``rotate_if_due`` over a store that reads through the node's keyring."""

    def __init__(
        self,
        store: Callable[[], ValueStore | None],
        keyring: Callable[[], Keyring | None],
        is_active: Callable[[], bool],
        rotate: Callable[[], object],
        clock: Callable[[], datetime],
        period: float = 60.0,
    ) -> None:
        self._store, self._keyring, self._is_active = store, keyring, is_active
        self._rotate, self._clock, self._period = rotate, clock, period
        self._stop = threading.Event()

    def tick(self) -> bool:
        """One look; whether it rotated.  Errors are logged, never raised: the next tick tries again."""
        if not self._is_active():
            return False
        store = self._store()
        if store is None:
            return False
        try:
            return rotate_if_due(store, self._keyring(), self._clock(), self._rotate)
        except Exception as exc:  # a storage hiccup or a lost lock must not end the loop
            log.warning("automatic key rotation: %s", exc)
            return False

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self._period):
                self.tick()

        threading.Thread(target=loop, name="auto-rotation", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
