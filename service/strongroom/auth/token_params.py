"""The token settings every login method stores with a user or role (Vault's ``tokenutil.TokenParams``).

https://developer.hashicorp.com/vault/docs/auth/userpass (the "token_*" parameters)

``TokenParams.parse`` reads them from a request as Vault does (the deprecated
``policies``, ``ttl``, ``max_ttl`` and ``period`` spellings included, the new
one winning when both are given), ``render`` gives the fields of a read, and
``login`` the ``Login`` the core mints a token from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from strongroom.errors import InvalidRequest
from strongroom.fields import bool_field, int_field, string_field, string_list_field, ttl_seconds
from strongroom.sdk.logical import Login

# Deprecated spelling -> current one (Vault still accepts and shows the old ones when used).
_DEPRECATED = {"policies": "token_policies", "ttl": "token_ttl", "max_ttl": "token_max_ttl", "period": "token_period"}
_TTL_FIELDS = ("token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period")


@dataclass(frozen=True)
class TokenParams:
    """A user's or role's token settings, as stored (seconds for durations)."""

    token_policies: tuple[str, ...] = ()
    token_ttl: int = 0
    token_max_ttl: int = 0
    token_explicit_max_ttl: int = 0
    token_period: int = 0
    token_num_uses: int = 0
    token_no_default_policy: bool = False
    token_type: str = "default"
    token_bound_cidrs: tuple[str, ...] = ()
    # Whether the legacy "policies" field was written (Vault then shows it on read).
    legacy_policies: bool = False

    def parse(self, data: Mapping[str, Any]) -> TokenParams:
        """These settings updated by the fields present in ``data``."""
        fields = dict(data)
        for old, new in _DEPRECATED.items():
            if old in fields and new not in fields:
                fields[new] = fields[old]
        changes: dict[str, Any] = {}
        if "token_policies" in fields:
            changes["token_policies"] = _comma_list(fields, "token_policies")
            changes["legacy_policies"] = "policies" in data and "token_policies" not in data
        for name in _TTL_FIELDS:
            if name in fields:
                changes[name] = ttl_seconds(fields.get(name), name)
        changes.update(_other_settings(fields))
        params = replace(self, **changes)
        if params.token_max_ttl and params.token_ttl > params.token_max_ttl:
            raise InvalidRequest("'token_ttl' cannot be greater than 'token_max_ttl'")
        return params

    def render(self) -> dict[str, Any]:
        """The token fields of a read, in Vault's shape."""
        shown: dict[str, Any] = {
            "token_bound_cidrs": list(self.token_bound_cidrs),
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_num_uses": self.token_num_uses,
            "token_period": self.token_period,
            "token_policies": list(self.token_policies),
            "token_strictly_bind_ip": False,
            "token_ttl": self.token_ttl,
            "token_type": self.token_type,
        }
        if self.legacy_policies:
            shown["policies"] = list(self.token_policies)
        return shown

    def login(self, display_name: str, metadata: Mapping[str, str]) -> Login:
        """The ``Login`` of a successful authentication under these settings."""
        return Login(
            policies=self.token_policies,
            metadata=dict(metadata),
            display_name=display_name,
            ttl=self.token_ttl,
            max_ttl=self.token_max_ttl,
            explicit_max_ttl=self.token_explicit_max_ttl,
            period=self.token_period,
            num_uses=self.token_num_uses,
            no_default_policy=self.token_no_default_policy,
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TokenParams:
        """The settings from their stored form."""
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        for name in ("token_policies", "token_bound_cidrs"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)


def _other_settings(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The settings other than policies and durations present in ``fields``, validated."""
    changes: dict[str, Any] = {}
    if "token_num_uses" in fields:
        uses = int_field(dict(fields), "token_num_uses")
        if uses < 0:
            raise InvalidRequest("token_num_uses cannot be negative")
        changes["token_num_uses"] = uses
    if "token_no_default_policy" in fields:
        changes["token_no_default_policy"] = bool_field(dict(fields), "token_no_default_policy", False)
    if "token_type" in fields:
        token_type = string_field(dict(fields), "token_type") or "default"
        if token_type not in ("default", "service", "default-service"):
            raise InvalidRequest(f"invalid 'token_type' value {token_type!r}: only service tokens are supported")
        changes["token_type"] = token_type
    if "token_bound_cidrs" in fields:
        if _comma_list(fields, "token_bound_cidrs"):
            # Stored but not enforced would be a restriction the operator believes in and nobody checks.
            raise InvalidRequest("token_bound_cidrs is not supported by Strongroom yet; nothing was stored")
        changes["token_bound_cidrs"] = ()
    return changes


def _comma_list(fields: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """Vault's ``TypeCommaStringSlice``: a list, or a comma-separated string; items trimmed, empty ones dropped."""
    items = [part.strip() for item in string_list_field(dict(fields), name) for part in item.split(",")]
    return tuple(item for item in items if item)
