"""Where things are in Consul: the agent's address and a storage key's Consul key."""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass

from strongroom.errors import InvalidRequest

#: Vault's ``tls_min_version`` values (go-secure-stdlib's ``tlsutil.TLSLookup``)
#: as Python names the TLS versions; Vault's default is ``tls12``.
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "tls10": ssl.TLSVersion.TLSv1,
    "tls11": ssl.TLSVersion.TLSv1_1,
    "tls12": ssl.TLSVersion.TLSv1_2,
    "tls13": ssl.TLSVersion.TLSv1_3,
}
DEFAULT_TLS_MIN_VERSION = TLS_VERSIONS["tls12"]


@dataclass(frozen=True)
class ConsulEndpoint:
    """How to reach one Consul agent: everything a request to it needs.

    ``host`` keeps IPv6 brackets (as it goes into URLs); ``verify`` is as in
    requests (False, True for the system CAs, or a CA file or directory);
    ``cert`` a client certificate file, or (certificate, key) files;
    ``timeout`` bounds connecting and each read (seconds); ``tls_min_version``
    is the lowest TLS version a connection may negotiate.  Plain data: the
    workers' storage path reaches Consul with it alone, and only the node
    core builds a py-consul client from it (storage/consul_client.py)."""

    scheme: str = "http"
    host: str = "127.0.0.1"
    port: int = 8500
    token: str | None = None
    datacenter: str | None = None
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    timeout: float = 10.0
    tls_min_version: ssl.TLSVersion = DEFAULT_TLS_MIN_VERSION

    @property
    def base_uri(self) -> str:
        """``scheme://host:port``, as py-consul names the agent (never the token)."""
        return f"{self.scheme}://{self.host}:{self.port}"


def consul_key(prefix: str, key: str) -> str:
    """The Consul key of storage ``key`` under ``prefix`` (the storage ``path``)."""
    if key.startswith("/"):
        raise InvalidRequest(f"storage key {key!r} must not start with '/'")
    return prefix + key


def parse_address(address: str, scheme: str | None) -> tuple[str, str, int]:
    """(scheme, host, port) from ``host:port``, ``host`` or ``scheme://host:port``."""
    text = address.strip()
    parts = urllib.parse.urlsplit(text if "//" in text else "//" + text)
    found = parts.scheme or None
    if found and scheme and found != scheme:
        raise ValueError(f"consul address {address!r} says {found!r} but scheme is {scheme!r}")
    final = found or scheme or "http"
    if final not in ("http", "https"):
        raise ValueError(f"consul scheme must be 'http' or 'https', not {final!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"consul address {address!r} has an invalid port") from None
    if not parts.hostname:
        raise ValueError(f"consul address {address!r} has no host")
    # py-consul pastes the host into its URLs verbatim, so IPv6 keeps its brackets.
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return final, host, port or (8501 if final == "https" else 8500)
