"""Fixtures shared by every test tier.  Only fixtures live here; the code that
starts real processes is in ``tests/helpers/procs/``.

``tests.helpers`` is importable because setup.cfg sets ``pythonpath = .``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import strongroom.api  # noqa: F401  (registers Vault's LIST verb before anything imports Falcon)
from strongroom.storage.consul import ConsulBackend
from tests.helpers.procs import ConsulAgent, OpenBaoDevServer, StrongroomDevServer, start_agent


@pytest.fixture(scope="session")
def consul_agent(request: pytest.FixtureRequest) -> Iterator[ConsulAgent]:
    """One real single-server Consul agent for the whole session, stopped by pid
    at the end.  Tests share it: use a unique key prefix (``consul_backend`` does).
    If any test failed, the agent's log tail is printed before it is removed."""
    agent = start_agent()
    try:
        yield agent
    finally:
        if request.session.testsfailed:
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"--- consul agent {agent.address} log tail ---\n{agent.log_tail()}")
        agent.stop()


@pytest.fixture
def consul_backend(consul_agent: ConsulAgent) -> Iterator[ConsulBackend]:
    """A ``ConsulBackend`` on the session agent under a prefix no other test uses;
    the prefix is deleted afterwards."""
    backend = ConsulBackend.from_config(consul_agent.address, prefix=f"test-{uuid.uuid4().hex}/")
    try:
        yield backend
    finally:
        backend.delete_prefix("")
        backend.close()


@pytest.fixture(scope="session")
def openbao_dev_server() -> Iterator[OpenBaoDevServer]:
    """A real ``bao server -dev`` (root token ``root``, KV v2 at ``secret/``,
    audit devices allowed through the API), stopped by pid at the end."""
    with OpenBaoDevServer() as server:
        yield server


@pytest.fixture(scope="session")
def strongroom_dev_server() -> Iterator[StrongroomDevServer]:
    """A real ``strongroom server -dev`` (root token ``root``, KV v2 at
    ``secret/``, audit devices allowed through the API like its OpenBao twin),
    stopped by pid at the end."""
    with StrongroomDevServer() as server:
        yield server
