"""TLS to Consul: one floor (``tls_min_version``) and one set of settings for both paths.

py-consul's requests session gets ``ConsulAdapter`` (``configure_session``);
the hot-path transport (``consul_transport``) builds its ``ssl.SSLContext``
from the same client with ``tls_context`` and ``minimum_version``, so a
connection to Consul never negotiates below the configured version whichever
path it takes.
"""

from __future__ import annotations

import os
import re
import ssl
import warnings
from typing import Any

import consul
import requests
import requests.adapters
import urllib3.exceptions

#: Vault's ``tls_min_version`` values (go-secure-stdlib's ``tlsutil.TLSLookup``)
#: as Python names the TLS versions; Vault's default is ``tls12``.
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "tls10": ssl.TLSVersion.TLSv1,
    "tls11": ssl.TLSVersion.TLSv1_1,
    "tls12": ssl.TLSVersion.TLSv1_2,
    "tls13": ssl.TLSVersion.TLSv1_3,
}
DEFAULT_TLS_MIN_VERSION = TLS_VERSIONS["tls12"]


class ConsulAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter for py-consul's session: its HTTPS connections never
    negotiate a TLS version below ``minimum_version`` (``tls_min_version``).

    ``Transport`` reads ``minimum_version`` from here, so both paths to Consul
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


def tls_context(
    verify: bool | str, cert: str | tuple[str, str] | None, minimum_version: ssl.TLSVersion = DEFAULT_TLS_MIN_VERSION
) -> ssl.SSLContext:
    """The TLS settings py-consul hands requests, as an ``ssl.SSLContext``.

    py-consul keeps ``verify`` and ``cert`` on its HTTP client and passes them
    with every request; its requests session keeps requests' defaults (verify
    with the system CAs, no client certificate), so they must be read here, not
    from the session.  ``verify`` as in requests: False, True (system CAs), or
    the path of a CA bundle file or of a directory of CA certificates;
    ``minimum_version`` is ``tls_min_version``."""
    if isinstance(verify, str) and os.path.isdir(verify):
        context = ssl.create_default_context(capath=verify)
    elif isinstance(verify, str):
        context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context()
    context.minimum_version = minimum_version
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(*(cert if isinstance(cert, tuple) else (cert,)))
    return context
