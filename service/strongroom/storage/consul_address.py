"""Where things are in Consul: the agent's address and a storage key's Consul key."""

from __future__ import annotations

import urllib.parse

from strongroom.errors import InvalidRequest


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
