"""The transit secrets engine: encryption as a service (Vault's ``transit``).

https://openbao.org/api-docs/secret/transit/

Keys live in the mount's storage view (``policy/<name>``), under the barrier
like every other value; ciphertexts, HMACs and exports are byte-compatible with
Vault's (see ``policy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.engines.transit.backend import Transit
from strongroom.sdk.logical import Clock
from strongroom.storage import Backend


def check_options(options: Mapping[str, Any]) -> None:
    """A transit mount takes no options (Vault ignores them)."""


def new_transit(options: Mapping[str, Any], view: Backend, clock: Clock) -> Transit:
    """The engine of a ``transit`` mount (an ``EngineType`` factory)."""
    return Transit(view, clock)


__all__ = ["Transit", "check_options", "new_transit"]
