"""The TLS floor of connections to Consul, and urllib3's warning under tls_skip_verify.

Nothing connects here: the SSL contexts and pools are checked as built;
tests/integration/storage/test_consul_tls_min_version.py checks them against a
real Consul agent.
"""

from __future__ import annotations

import ssl
import warnings

import consul
import pytest
import urllib3.exceptions

from strongroom.storage.consul import ConsulBackend
from strongroom.storage.consul_client import endpoint_of
from strongroom.storage.consul_transport import Transport

UNVERIFIED = "Unverified HTTPS request is being made to host '{}'. Adding certificate verification is strongly advised."


def floors(backend: ConsulBackend) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    """(the transport's minimum TLS version, the one py-consul's HTTPS pool connects with)."""
    client = backend.client
    pool = client.http.session.get_adapter(client.http.base_uri).poolmanager.connection_from_url(client.http.base_uri)
    return Transport(backend.endpoint).ssl_context.minimum_version, pool.ssl_minimum_version


def test_default_floor_is_tls12():
    backend = ConsulBackend.from_config("https://127.0.0.1:8501")
    assert floors(backend) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    backend.close()


def test_tls13_floor_on_both_paths():
    backend = ConsulBackend.from_config("https://127.0.0.1:8501", tls_min_version="tls13", tls_skip_verify=True)
    assert floors(backend) == (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
    # The floor does not undo the other TLS settings.
    assert Transport(backend.endpoint).ssl_context.verify_mode == ssl.CERT_NONE
    backend.close()


def test_a_client_without_a_configured_session_gets_vault_s_default():
    """A client made elsewhere (not by ``from_config``) still never goes below TLS 1.2."""
    assert (
        Transport(endpoint_of(consul.Consul(host="127.0.0.1", port=8501, scheme="https"))).ssl_context.minimum_version
        == ssl.TLSVersion.TLSv1_2
    )


def test_unknown_version_is_a_value_error():
    with pytest.raises(ValueError, match="tls_min_version must be one of tls10, tls11, tls12, tls13, not 'tls14'"):
        ConsulBackend.from_config("https://127.0.0.1:8501", tls_min_version="tls14")


def test_tls_skip_verify_silences_urllib3s_warning_for_consul_only():
    """With tls_skip_verify the warning urllib3 prints on every unverified request
    is silenced for the Consul host alone, once py-consul's client (the only user
    of urllib3 towards Consul) is built; other hosts, and a verifying client, keep it."""

    def built(backend: ConsulBackend) -> None:
        assert backend.client is not None
        backend.close()

    category = urllib3.exceptions.InsecureRequestWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error", category)
        built(ConsulBackend.from_config("https://127.0.0.1:8501"))
        with pytest.raises(category):
            warnings.warn(UNVERIFIED.format("127.0.0.1"), category, stacklevel=1)
        built(ConsulBackend.from_config("https://127.0.0.1:8501", tls_skip_verify=True))
        warnings.warn(UNVERIFIED.format("127.0.0.1"), category, stacklevel=1)
        with pytest.raises(category):
            warnings.warn(UNVERIFIED.format("127.0.0.10"), category, stacklevel=1)
        with pytest.raises(category):
            warnings.warn(UNVERIFIED.format("10.0.0.5"), category, stacklevel=1)
        built(ConsulBackend.from_config("https://[::1]:8501", tls_skip_verify=True))
        warnings.warn(UNVERIFIED.format("::1"), category, stacklevel=1)
