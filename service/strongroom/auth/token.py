"""Vault's token auth method: the token store and the ``auth/token/`` mount.

https://developer.hashicorp.com/vault/docs/concepts/tokens
https://developer.hashicorp.com/vault/api-docs/auth/token

The store (``token_store.py``) keeps tokens by salted hash and owns expiry,
use counts and revocation, over the token model (``token_entry.py``), the
storage layout (``token_records.py``) and the revocation tree
(``token_tree.py``).  The mount (``path_token.py``) is the HTTP surface, with
its parameter parsing (``strongroom.fields``) and response shapes
(``token_response.py``).  This module is the import point for the rest of
Strongroom.
"""

from strongroom.auth.path_token import TokenAuthBackend, display_name
from strongroom.auth.token_entry import DEFAULT_TTL, REVOCATION_PENDING, TokenEntry, sanitize_policies
from strongroom.auth.token_store import TokenStore

__all__ = [
    "DEFAULT_TTL",
    "REVOCATION_PENDING",
    "TokenAuthBackend",
    "TokenEntry",
    "TokenStore",
    "display_name",
    "sanitize_policies",
]
