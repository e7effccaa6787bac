"""Vault's token auth method: the token store and the ``auth/token/`` mount.

https://developer.hashicorp.com/vault/docs/concepts/tokens
https://developer.hashicorp.com/vault/api-docs/auth/token

The store (``token_store.py``) keeps tokens by salted hash and owns expiry,
use counts and the revocation tree; the mount (``path_token.py``) is the HTTP
surface.  This module is the import point for the rest of Strongroom.
"""

from strongroom.auth.path_token import TokenAuthBackend, display_name, parse_ttl, rfc3339
from strongroom.auth.token_store import (
    DEFAULT_TTL,
    REVOCATION_PENDING,
    TokenEntry,
    TokenStore,
    format_duration,
    sanitize_policies,
)

__all__ = [
    "DEFAULT_TTL",
    "REVOCATION_PENDING",
    "TokenAuthBackend",
    "TokenEntry",
    "TokenStore",
    "display_name",
    "format_duration",
    "parse_ttl",
    "rfc3339",
    "sanitize_policies",
]
