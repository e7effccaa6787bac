"""Tokens for logins: what the core does with an auth method's ``Login`` (Vault's ``RegisterAuth``).

https://developer.hashicorp.com/vault/docs/concepts/tokens

An auth method only says who logged in and what their token may do; the
token is minted here, once, through the token store, so every method gets the
same rules: an orphan service token, ``default`` added unless the method says
otherwise, the TTL planned under the mount's default and max lease TTLs (the
system ones when the mount sets none), and the ``auth`` block as Vault renders
it.  Minting is the login's first write: on a performance standby it raises
``ReadOnly`` before anything was stored, and the request is forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.auth.token_entry import calculate_ttl, sanitize_policies
from strongroom.auth.token_response import auth_block
from strongroom.auth.token_store import TokenStore
from strongroom.sdk.logical import Login


def issue_token(
    store: TokenStore, login: Login, *, path: str, mount_type: str, mount_config: Mapping[str, Any]
) -> dict[str, Any]:
    """Mint the token of ``login`` made at ``path`` (``auth/userpass/login/alice``)
    on a mount of ``mount_type`` whose config is ``mount_config``; the ``auth`` block."""
    default_ttl = int(mount_config.get("default_lease_ttl") or 0) or store.default_ttl
    max_ttl = int(mount_config.get("max_lease_ttl") or 0) or store.max_ttl
    if 0 < login.max_ttl < max_ttl:
        max_ttl = login.max_ttl
    now = store.clock().timestamp()
    ttl, _ = calculate_ttl(
        now=now,
        start=now,
        default_ttl=min(default_ttl, max_ttl),
        max_ttl=max_ttl,
        ttl=login.ttl,
        period=login.period,
        explicit_max_ttl=login.explicit_max_ttl,
    )
    token_id, entry = store.create(
        policies=sanitize_policies(login.policies, add_default=not login.no_default_policy),
        add_default=False,
        parent=None,
        path=path,
        meta=dict(login.metadata),
        display_name=f"{mount_type}-{login.display_name}" if login.display_name else mount_type,
        num_uses=login.num_uses,
        ttl=ttl,
        explicit_max_ttl=login.explicit_max_ttl,
        period=login.period,
        renewable=ttl != 0,
    )
    return auth_block(entry, token_id)
