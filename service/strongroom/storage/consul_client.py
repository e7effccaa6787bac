"""The node core's py-consul client, built from the same ``ConsulEndpoint`` as the hot path.

Sessions, the lock, checks, service registration and blocking queries use
py-consul (storage/consul_session.py, consul_registry.py, consul_changes.py);
KV reads and transactions go through ``consul_transport``.  Only this module
and those import py-consul and requests (about 5 MiB of a process): the
gunicorn workers never do, since they only read and write KV.

``client_for(endpoint, connections)`` builds the py-consul client of an
endpoint; ``endpoint_of(client)`` reads an endpoint back from a client (a
client made elsewhere, as the tests make them).
"""

from __future__ import annotations

import re
import ssl
import warnings
from typing import Any

import consul
import requests
import requests.adapters
import urllib3.exceptions

from strongroom.storage.consul_address import DEFAULT_TLS_MIN_VERSION, ConsulEndpoint


def client_for(endpoint: ConsulEndpoint, connections: int) -> consul.Consul:
    """A py-consul client for ``endpoint`` whose session keeps ``connections``
    pooled connections, none below the endpoint's TLS floor.  An explicit
    token wins over ``CONSUL_HTTP_TOKEN`` (py-consul lets the environment win
    otherwise)."""
    client = consul.Consul(
        host=endpoint.host,
        port=endpoint.port,
        token=endpoint.token or None,
        scheme=endpoint.scheme,
        dc=endpoint.datacenter,
        verify=endpoint.verify,
        cert=endpoint.cert,
        connections_timeout=endpoint.timeout,
    )
    if endpoint.token:
        client.token = endpoint.token
    session = getattr(client.http, "session", None)
    if isinstance(session, requests.Session):
        # Consul is the storage, reached directly: looking up proxy settings in
        # the environment on every call cost a quarter of a read's CPU.
        session.trust_env = False
        # Consul gzips every answer for a client that accepts it: on the
        # node's own agent that is CPU on both sides for nothing (a tenth of
        # the agent's CPU under writes went to the change-log reads).
        session.headers["Accept-Encoding"] = "identity"
    configure_session(client, connections, endpoint.tls_min_version)
    if endpoint.scheme == "https" and endpoint.verify is False:
        quiet_unverified_requests(endpoint.host)
    return client


def endpoint_of(client: consul.Consul, timeout: float = 10.0) -> ConsulEndpoint:
    """The endpoint ``client`` talks to, with its token, datacenter, TLS settings and floor."""
    scheme, _, rest = client.http.base_uri.partition("://")
    host, _, port = rest.rpartition(":")
    return ConsulEndpoint(
        scheme=scheme,
        host=host,
        port=int(port),
        token=client.token,
        datacenter=client.dc,
        verify=getattr(client.http, "verify", True),
        cert=getattr(client.http, "cert", None),
        timeout=timeout,
        tls_min_version=minimum_version(client),
    )


class ConsulAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter for py-consul's session: its HTTPS connections never
    negotiate a TLS version below ``minimum_version`` (``tls_min_version``).

    ``endpoint_of`` reads ``minimum_version`` from here, so both paths to Consul
    hold to the one floor the client was configured with."""

    __attrs__ = [*requests.adapters.HTTPAdapter.__attrs__, "minimum_version"]

    def __init__(self, minimum_version: ssl.TLSVersion = DEFAULT_TLS_MIN_VERSION, **kwargs: Any) -> None:
        self.minimum_version = minimum_version
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = requests.adapters.DEFAULT_POOLBLOCK, **pool_kwargs: Any
    ) -> None:
        """urllib3 builds each connection's SSL context itself; ``ssl_minimum_version`` sets its floor."""
        pool_kwargs["ssl_minimum_version"] = self.minimum_version
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def configure_session(
    client: consul.Consul, connections: int, minimum_version: ssl.TLSVersion = DEFAULT_TLS_MIN_VERSION
) -> None:
    """Let ``connections`` concurrent py-consul calls each keep a pooled HTTP
    connection, none of them below TLS ``minimum_version``.

    requests' default pool keeps 10 connections per host and discards the rest
    (with a warning each time), which defeats connection reuse under load.
    """
    session = getattr(client.http, "session", None)
    if isinstance(session, requests.Session):
        adapter = ConsulAdapter(minimum_version, pool_connections=4, pool_maxsize=connections)
        session.mount("http://", adapter)
        session.mount("https://", adapter)


def quiet_unverified_requests(host: str) -> None:
    """Silence urllib3's ``InsecureRequestWarning`` for requests to Consul at ``host``.

    With ``tls_skip_verify`` the operator chose not to verify Consul's
    certificate; urllib3 would print the warning on every py-consul request
    (session renewals, watches) into the node's output.  Requests to any other
    host keep the warning.
    """
    name = re.escape(host.strip("[]"))
    warnings.filterwarnings(
        "ignore",
        message=rf"Unverified HTTPS request is being made to host '\[?{name}\]?'",
        category=urllib3.exceptions.InsecureRequestWarning,
    )


def minimum_version(client: consul.Consul) -> ssl.TLSVersion:
    """The TLS floor of ``client``'s session (``configure_session``); Vault's default otherwise."""
    session = getattr(client.http, "session", None)
    if isinstance(session, requests.Session):
        adapter = session.get_adapter(client.http.base_uri)
        if isinstance(adapter, ConsulAdapter):
            return adapter.minimum_version
    return DEFAULT_TLS_MIN_VERSION
