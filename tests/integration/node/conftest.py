"""Fixtures for tests that run real ``strongroom server`` nodes on real Consul."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers.procs import StrongroomServer, free_port


@pytest.fixture
def make_node(consul_agent, tmp_path):
    """Start nodes on the session Consul agent; every node is stopped by pid afterwards."""
    started: list[StrongroomServer] = []

    def start(workers: int = 2, prefix: str | None = None, **kwargs) -> StrongroomServer:
        node = StrongroomServer(
            tmp_path / f"node{len(started)}",
            consul_agent.address,
            free_port(),
            workers=workers,
            prefix=prefix or f"sr-{uuid.uuid4().hex[:12]}/",
            node_id=f"node{len(started)}",
            **kwargs,
        )
        started.append(node)
        return node.start()

    yield start
    for node in started:
        node.stop()
