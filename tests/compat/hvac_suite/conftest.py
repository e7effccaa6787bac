"""hvac's own integration tests against Strongroom (see README.md).

One session fixture starts the nodes lazily (``SuiteNodes``) and hands them to
the vendored ``HvacIntegrationTestCase`` classes; it stops them by pid once the
last test of this directory has run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compat.hvac_suite.utils import server_manager
from tests.helpers.procs import ConsulAgent


@pytest.fixture(scope="package", autouse=True)
def hvac_suite_nodes(consul_agent: ConsulAgent, tmp_path_factory) -> Iterator[server_manager.SuiteNodes]:
    suite = server_manager.SuiteNodes(consul_agent, tmp_path_factory.mktemp("hvac-suite"))
    server_manager.install(suite)
    try:
        yield suite
    finally:
        server_manager.install(None)
        suite.stop()
