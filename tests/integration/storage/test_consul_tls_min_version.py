"""storage "consul" ``tls_min_version`` against real Consul over HTTPS.

Consul 1.8 serves TLS 1.2 and 1.3 whatever its own ``tls_min_version`` says, so
it cannot show that a node refuses less than its floor.  A real HAProxy in
front of a real Consul agent, ending TLS with ``ssl-max-ver TLSv1.2``, can:
a node holding to ``tls13`` must then fail every kind of request (the KV
transport and py-consul's sessions alike), and one holding to ``tls12`` must
work through the same front.  A whole node then runs against a Consul agent
that itself refuses anything below TLS 1.3.  The PKI, the request mix and the
plain-HTTP reads of what Consul holds come from ``test_consul_tls``.

https://developer.hashicorp.com/vault/docs/configuration/storage/consul#tls_min_version
"""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.storage.consul_session import ConsulSessions
from tests.helpers.procs import HAProxyTLSFront, start_agent
from tests.integration.storage.test_consul_tls import (
    _tls_hcl,
    assert_every_request_unavailable,
    consul_backends,
    exercise,
    in_consul,
    node_keeps_a_secret_over_https,
    pki,  # noqa: F401  (the module-scoped certificates fixture)
)


@pytest.fixture(scope="module")
def tls13_agent(pki):  # noqa: F811
    """A real Consul agent whose HTTPS API refuses anything below TLS 1.3."""
    agent = start_agent(https=True, extra_hcl=_tls_hcl(pki) + 'tls_min_version = "tls13"\n')
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture(scope="module")
def tls12_front(pki, tls13_agent, tmp_path_factory):  # noqa: F811
    """HAProxy speaking at most TLS 1.2 (the certificate Consul uses) in front of the agent's HTTP port."""
    pem = tmp_path_factory.mktemp("tls-front") / "server-and-key.pem"
    pem.write_text(Path(pki.server_cert).read_text() + Path(pki.server_key).read_text())
    with HAProxyTLSFront(tls13_agent.http_addr.split("://")[-1], str(pem), bind_options="ssl-max-ver TLSv1.2") as front:
        yield front


@pytest.fixture
def backends(tls13_agent):
    """``ConsulBackend``s at ``address`` under a prefix of their own; removed afterwards over plain HTTP."""
    with consul_backends(tls13_agent) as make:
        yield make


def test_tls13_floor_refuses_a_consul_front_that_stops_at_tls12(backends, tls12_front, tls13_agent, pki):  # noqa: F811
    reachable = backends(tls12_front.address, tls_ca_file=pki.ca, tls_min_version="tls12")
    exercise(reachable)
    sessions = ConsulSessions.for_backend(reachable)
    sessions.destroy_session(sessions.create_session("strongroom-tls-test", ["serfHealth"]))
    assert in_consul(tls13_agent, reachable.prefix + "core/a") == b"one"

    floored = backends(tls12_front.address, tls_ca_file=pki.ca, tls_min_version="tls13")
    for error in assert_every_request_unavailable(floored):
        assert tls12_front.address in str(error) and "SSL" in str(error)
    assert in_consul(tls13_agent, floored.prefix + "core/a") is None


def test_node_with_tls13_floor_and_tls_skip_verify_on_a_tls13_consul(tls13_agent, tmp_path):
    """A whole node, ``tls_min_version = "tls13"``, against Consul requiring TLS 1.3:
    it initialises, unseals, becomes active, keeps a KV secret and registers
    itself; and ``tls_skip_verify`` puts no urllib3 InsecureRequestWarning in its output."""
    log = node_keeps_a_secret_over_https(
        tls13_agent, '  tls_min_version = "tls13"\n  tls_skip_verify = true\n', tmp_path / "node"
    )
    assert "InsecureRequestWarning" not in log and "Unverified HTTPS request" not in log
