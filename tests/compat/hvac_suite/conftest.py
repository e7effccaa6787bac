"""hvac's own integration tests against Strongroom (see README.md).

One session fixture starts the nodes lazily (``SuiteNodes``) and hands them to
the vendored ``HvacIntegrationTestCase`` classes; it stops them by pid once the
last test of this directory has run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.hvac_suite.utils import server_manager
from tests.helpers.procs import ConsulAgent

VENDORED = Path(__file__).parent / "integration_tests"

#: Warnings hvac's own tests raise by their own code, expected in the module that raises
#: them (the vendored files stay as hvac wrote them); any other warning still shows.
EXPECTED_WARNINGS = {
    # hvac's TestToken.test_policy and test_role are generators (their loops ``yield``), so
    # calling them returns a generator, which Python 3.11's unittest deprecates.
    "api/auth_methods/test_token.py": [
        "ignore:It is deprecated to return a value that is not None from a test case:DeprecationWarning",
    ],
    # hvac's kv v2 tests (and hvac's own patch(), which reads the current version) call
    # read_secret_version without raise_on_deleted_version, whose default changes in hvac 3.
    "api/secrets_engines/test_kv_v2.py": [
        "ignore:The raise_on_deleted_version parameter will change its default value:DeprecationWarning",
    ],
    # hvac's test_unwrap calls client.write(path=..., wrap_ttl=...) with keywords, which hvac
    # 2.x deprecates in favour of write_data() (hvac issue 1034).
    "api/system_backend/test_wrapping.py": [
        r"ignore:write\(\) argument '.*' was supplied as a keyword argument:DeprecationWarning",
    ],
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(VENDORED):
            continue
        for expected in EXPECTED_WARNINGS.get(item.path.relative_to(VENDORED).as_posix(), ()):
            item.add_marker(pytest.mark.filterwarnings(expected))


@pytest.fixture(scope="package", autouse=True)
def hvac_suite_nodes(consul_agent: ConsulAgent, tmp_path_factory) -> Iterator[server_manager.SuiteNodes]:
    suite = server_manager.SuiteNodes(consul_agent, tmp_path_factory.mktemp("hvac-suite"))
    server_manager.install(suite)
    try:
        yield suite
    finally:
        server_manager.install(None)
        suite.stop()
