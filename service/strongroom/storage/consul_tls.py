"""TLS to Consul: one floor (``tls_min_version``) and one set of settings for both paths.

The hot-path transport (``consul_transport``) builds its ``ssl.SSLContext``
from a ``ConsulEndpoint`` with ``tls_context``; the node core's py-consul
client gets ``ConsulAdapter`` with the same floor (storage/consul_client.py),
so a connection to Consul never negotiates below the configured version
whichever path it takes.  Nothing here imports requests: the workers reach
Consul through the transport alone.
"""

from __future__ import annotations

import os
import ssl

from strongroom.storage.consul_address import DEFAULT_TLS_MIN_VERSION


def tls_context(
    verify: bool | str, cert: str | tuple[str, str] | None, minimum_version: ssl.TLSVersion = DEFAULT_TLS_MIN_VERSION
) -> ssl.SSLContext:
    """The TLS settings of a ``ConsulEndpoint`` (those py-consul hands requests)
    as an ``ssl.SSLContext``.  ``verify`` as in requests: False, True (system CAs), or
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
