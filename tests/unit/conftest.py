"""Unit-tier fixtures: an in-memory node behind Falcon's TestClient."""

from __future__ import annotations

import pytest

from tests.helpers.unit_node import FakeClock, Node  # noqa: F401  (FakeClock re-exported for tests)


@pytest.fixture
def node() -> Node:
    """An initialised but sealed node."""
    n = Node()
    n.init()
    return n


@pytest.fixture
def unsealed(node) -> Node:
    """An initialised, unsealed node with its root token."""
    node.unseal()
    return node


@pytest.fixture
def fresh() -> Node:
    """A node whose storage is not initialised."""
    return Node()
