"""Deploy-tier fixtures: the playbooks of ``ansible/`` on systemd hosts that are
podman containers (tests/helpers/container_cluster.py, DESIGN.md "systemd hosts
in podman").

One cluster of containers per module, shared by its tests in file order (each
step a test of its own, so a later failure does not hide what already
worked); removed by container id afterwards, whatever happened.  When a test
failed, the journals of the services on every host are printed first.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.helpers.container_cluster import ContainerCluster

UNITS = ("consul", "strongroom", "haproxy", "prometheus")


# What the tests measured and, after a failure, the hosts' journals: printed in
# pytest's terminal summary (output written during a fixture's teardown would be
# captured and shown for a failed test only).
SUMMARY: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deploy: Ansible playbooks on podman systemd hosts (tests/deploy)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.write_sep("-", "deploy tier")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def report() -> list[str]:
    """Lines the module's tests measured (durations, outages), printed in the terminal summary."""
    return SUMMARY


@pytest.fixture(scope="module")
def containers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerCluster]:
    """The containers inventory's hosts, booted and empty (nothing provisioned yet)."""
    failed_before = request.session.testsfailed
    started = time.monotonic()
    # TLS on throughout (issue 13: "a test run with TLS on between clients,
    # HAProxy and nodes"): the roles' TLS paths are the ones proven on hosts;
    # `make cluster` runs them off unless TLS=1.
    cluster = ContainerCluster(tmp_path_factory.mktemp("deploy"), tls=True).up()
    SUMMARY.append(f"{len(cluster.hosts.hosts)} hosts booted in {time.monotonic() - started:.1f} s (image, wheelhouse)")
    try:
        yield cluster
    finally:
        if request.session.testsfailed > failed_before:
            SUMMARY.append(f"--- deploy cluster in {cluster.directory} (playbook logs there) ---")
            for host in cluster.hosts.hosts:
                if cluster.hosts.running(host):
                    SUMMARY.append(f"--- {host}: journal ---\n{cluster.journal(host, *UNITS)}")
        cluster.down()
        SUMMARY.append(f"deploy module, containers up to removed: {time.monotonic() - started:.0f} s")
