"""The response shapes of the ``auth/token/`` endpoints, exactly as Vault renders them.

https://developer.hashicorp.com/vault/api-docs/auth/token

``auth_block`` is the ``auth`` object of the create and renew responses,
``lookup_data`` the ``data`` object of the lookup endpoints.  Field names,
``null`` versus absent (Go's ``omitempty``) and time formats follow Vault's
JSON.  The secret ``client_token`` appears only where the caller passes it in;
the parent's id hash is never shown.  Pure functions of the entry.
"""

from __future__ import annotations

from typing import Any

from strongroom.auth.token_entry import TokenEntry
from strongroom.timefmt import rfc3339_timestamp


def auth_block(entry: TokenEntry, client_token: str) -> dict[str, Any]:
    """The ``auth`` block of create and renew responses."""
    auth: dict[str, Any] = {
        "client_token": client_token,
        "accessor": entry.accessor,
        "policies": list(entry.policies),
        "token_policies": list(entry.policies),
        "metadata": entry.meta,
        "lease_duration": entry.lease_ttl,
        "renewable": entry.renewable and entry.expire_at is not None,
        "entity_id": entry.entity_id,
        "token_type": entry.type,
        "orphan": entry.orphan,
        "mfa_requirement": None,
        "num_uses": entry.num_uses,
    }
    if not entry.policies:
        del auth["token_policies"]  # Go's omitempty
    return auth


def lookup_data(entry: TokenEntry, now: float) -> dict[str, Any]:
    """The ``data`` block of the lookup endpoints at unix time ``now`` (the parent
    is never shown)."""
    data: dict[str, Any] = {
        "accessor": entry.accessor,
        "creation_time": entry.creation_time,
        "creation_ttl": entry.ttl,
        "display_name": entry.display_name,
        "entity_id": entry.entity_id,
        "expire_time": rfc3339_timestamp(entry.expire_at) if entry.expire_at is not None else None,
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": entry.id,
        "issue_time": rfc3339_timestamp(entry.issue_time),
        "meta": entry.meta,
        "num_uses": entry.num_uses,
        "orphan": entry.orphan,
        "path": entry.path,
        "policies": list(entry.policies),
        "renewable": entry.renewable and entry.expire_at is not None,
        "ttl": max(0, int(entry.expire_at - now)) if entry.expire_at is not None else 0,
        "type": entry.type,
    }
    if entry.role:
        data["role"] = entry.role
    if entry.period:
        data["period"] = entry.period
    if entry.last_renewal is not None:
        data["last_renewal_time"] = int(entry.last_renewal)
        data["last_renewal"] = rfc3339_timestamp(entry.last_renewal)
    return data
