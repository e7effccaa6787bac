"""Deploy-tier fixtures: the playbooks of ``ansible/`` on systemd hosts that are
podman containers (tests/helpers/container_cluster.py, DESIGN.md "systemd hosts
in podman").

One cluster of containers per module, shared by its tests in file order (each
step a test of its own, so a later failure does not hide what already
worked); removed by container id afterwards, whatever happened.  When a test
failed, the journals of the services on every host are printed first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.container_cluster import ContainerCluster

UNITS = ("consul", "strongroom", "haproxy", "prometheus")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deploy: Ansible playbooks on podman systemd hosts (tests/deploy)")


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Lines the module's tests measured (durations, outages), printed at its end."""
    lines: list[str] = []
    yield lines
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and lines:
        reporter.write_line(f"\n--- {request.module.__name__}: measured ---")
        for line in lines:
            reporter.write_line(line)


@pytest.fixture(scope="module")
def containers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerCluster]:
    """The containers inventory's hosts, booted and empty (nothing provisioned yet)."""
    failed_before = request.session.testsfailed
    cluster = ContainerCluster(tmp_path_factory.mktemp("deploy")).up()
    try:
        yield cluster
    finally:
        if request.session.testsfailed > failed_before:
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"--- deploy cluster in {cluster.directory} (playbook logs there) ---")
                for host in cluster.hosts.hosts:
                    if cluster.hosts.running(host):
                        reporter.write_line(f"--- {host}: journal ---\n{cluster.journal(host, *UNITS)}")
        cluster.down()
