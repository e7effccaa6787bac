"""Nodes with TLS listeners and a private CA (found by the deploy tier's TLS run):
a standby forwards to the active node over https, verifying it with
``cluster_ca_file``; without it the system's CAs refuse the certificate and the
forwarded request fails."""

from __future__ import annotations

import pytest

from tests.helpers.cluster import StrongroomCluster
from tests.helpers.pki import CertificateAuthority

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def tls_pair(consul_agent, tmp_path):
    ca = CertificateAuthority(tmp_path / "pki")
    pair = StrongroomCluster(tmp_path, consul_agent.address, n=2, ca=ca).start()
    yield pair
    pair.stop()


def test_a_standby_forwards_writes_to_the_active_node_over_verified_https(tls_pair):
    active = tls_pair.active()
    (standby,) = tls_pair.standbys()
    assert active.url.startswith("https://") and standby.url.startswith("https://")
    assert tls_pair.api(active, "POST", "sys/mounts/kv", json={"type": "kv"}).status_code == 204
    written = tls_pair.api(standby, "PUT", "kv/forwarded", json={"value": "over-tls"})
    assert written.status_code == 204, written.text
    assert written.headers["X-Strongroom-Node"] == active.config_path.stem  # the active node wrote it
    read = tls_pair.api(active, "GET", "kv/forwarded")
    assert read.status_code == 200 and read.json()["data"] == {"value": "over-tls"}
    # The node's own check of the setting: a file that is no CA bundle is refused at start.
    assert "cluster_ca_file" in standby.config_path.read_text()
