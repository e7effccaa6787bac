"""The node core's own writes are fenced like the workers' (server/nodecore.py)."""

from __future__ import annotations

import pytest

from strongroom.errors import ReadOnly
from strongroom.server.nodecore import NodeCore


class HA:
    def __init__(self, fence: tuple[str, str] | None):
        self._fence = fence

    def fence(self) -> tuple[str, str] | None:
        return self._fence


class Seal:
    def __init__(self, unsealed: bool):
        self._keyring = object() if unsealed else None

    def keyring(self) -> object | None:
        return self._keyring


def fence_of(ha: HA, seal: Seal) -> tuple[str, str] | None:
    """``NodeCore._fence`` over the two parts it reads (the rest of a node core needs Consul)."""
    node_core = NodeCore.__new__(NodeCore)
    node_core.ha, node_core.seal = ha, seal
    return node_core._fence()


def test_the_active_node_core_writes_with_its_session():
    assert fence_of(HA(("core/lock", "s1")), Seal(unsealed=True)) == ("core/lock", "s1")


def test_an_unsealed_node_core_without_the_lock_never_writes():
    """rotate checks the role, then writes: a lock lost in between must not let the write out unfenced."""
    with pytest.raises(ReadOnly):
        fence_of(HA(None), Seal(unsealed=True))


def test_a_sealed_node_core_writes_unfenced_only_to_initialise():
    """sys/init writes the first keys while every node is sealed and no lock can be held yet."""
    assert fence_of(HA(None), Seal(unsealed=False)) is None
