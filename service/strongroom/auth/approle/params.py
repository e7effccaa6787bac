"""AppRole's parameters and shapes: role settings, CIDR restrictions, secret ID metadata and lookups.

https://developer.hashicorp.com/vault/api-docs/auth/approle

Pure functions of request data and stored records; ``backend.py`` does the storage.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from typing import Any

from strongroom.errors import InvalidRequest
from strongroom.fields import bool_field, int_field, kv_pairs_field, ttl_seconds
from strongroom.timefmt import rfc3339


def role_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The role's own settings present in ``data``, validated."""
    settings: dict[str, Any] = {}
    if "bind_secret_id" in data:
        settings["bind_secret_id"] = bool_field(data, "bind_secret_id", True)
    if "secret_id_ttl" in data:
        settings["secret_id_ttl"] = ttl_seconds(data.get("secret_id_ttl"), "secret_id_ttl")
    if "secret_id_num_uses" in data:
        uses = int_field(data, "secret_id_num_uses")
        if uses < 0:
            raise InvalidRequest("secret_id_num_uses cannot be negative")
        settings["secret_id_num_uses"] = uses
    if "secret_id_bound_cidrs" in data:
        settings["secret_id_bound_cidrs"] = cidr_blocks(data["secret_id_bound_cidrs"])
    return settings


def cidr_blocks(value: Any) -> list[str]:
    """A comma-separated string or a list of CIDR blocks (a bare address is a /32 or /128), validated."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    blocks = [str(item).strip() for item in items if str(item).strip()]
    for block in blocks:
        try:
            ipaddress.ip_network(block, strict=False)
        except ValueError:
            raise InvalidRequest(f"invalid CIDR block {block!r}") from None
    return blocks


def check_source(remote_addr: str, blocks: list[str], what: str) -> None:
    """Refuse a login from outside ``blocks`` (none: any source), as Vault's CIDR restrictions do."""
    if not blocks:
        return
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        address = None
    if address is None or not any(address in ipaddress.ip_network(b, strict=False) for b in blocks):
        raise InvalidRequest(f'source address "{remote_addr}" unauthorized through CIDR restrictions on the {what}')


def secret_id_metadata(raw: Any) -> dict[str, str]:
    """A secret ID's ``metadata``: a JSON object of strings, given as a string (Vault) or an object."""
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidRequest("failed to parse metadata") from None
    pairs = kv_pairs_field({"metadata": raw}, "metadata")
    return dict(pairs or {})


def render_secret_id(record: dict[str, Any]) -> dict[str, Any]:
    """A secret ID's properties as Vault's lookup shows them (never the secret ID itself)."""

    def at(seconds: float | None) -> str:
        return "0001-01-01T00:00:00Z" if seconds is None else rfc3339(datetime.fromtimestamp(seconds, UTC))

    return {
        "cidr_list": record.get("cidr_list", []),
        "creation_time": at(record["creation_time"]),
        "expiration_time": at(record.get("expiration_time")),
        "last_updated_time": at(record["last_updated_time"]),
        "metadata": record.get("metadata", {}),
        "secret_id_accessor": record["secret_id_accessor"],
        "secret_id_num_uses": record["secret_id_num_uses"],
        "secret_id_ttl": record["secret_id_ttl"],
        "token_bound_cidrs": [],
    }
