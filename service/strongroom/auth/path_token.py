"""The token auth method mounted at ``auth/token/``: Vault's ``/auth/token/*`` API.

https://developer.hashicorp.com/vault/api-docs/auth/token

The endpoints are one path table (``strongroom.sdk.framework``).  Each
handler parses its parameters the way Vault's framework does
(``strongroom.fields``), applies Vault's rules for who may create what (policy
subsets, orphans, ids, periods need sudo), calls the ``TokenStore``, which does
the storage, and renders the response in Vault's exact shapes
(``token_response.py``).  The ACL check on the path itself is the core's; the
rules here are the ones Vault enforces inside the handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from strongroom import metrics
from strongroom.auth.path_token_roles import role_paths
from strongroom.auth.token_entry import REVOCATION_PENDING, TokenEntry, sanitize_policies
from strongroom.auth.token_response import auth_block, lookup_data
from strongroom.auth.token_roles import (
    ROLE_NAME,
    TokenRole,
    TokenRoles,
    comma_list,
    has_policy_rules,
    merge_lifetime,
    resolve_policies,
    role_num_uses,
)
from strongroom.auth.token_store import TokenStore
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.fields import (
    bool_field,
    int_field,
    kv_pairs_field,
    string_field,
    to_duration_seconds,
)
from strongroom.fields import ttl_seconds as parse_ttl
from strongroom.sdk import framework, logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

# Vault keeps these for its own machinery (response wrapping, control groups).
NON_ASSIGNABLE_POLICIES = ("response-wrapping", "control-group")


def display_name(name: str) -> str:
    """Vault's display name for a created token: ``token-<name>`` with every
    character outside ``[a-zA-Z0-9-]`` replaced by ``-`` and one trailing ``-``
    dropped; plain ``token`` without a name."""
    if not name:
        return "token"
    full = "".join(c if (c.isascii() and c.isalnum()) or c == "-" else "-" for c in "token-" + name)
    return full[:-1] if full.endswith("-") else full


def _is_root_caller(req: Request) -> bool:
    return req.token is not None and "root" in req.token.policies


def _check_token_type(token_type: str) -> None:
    """Only service tokens exist here (``""`` is the default, service)."""
    if token_type == "batch":
        raise InvalidRequest("batch tokens are not supported")
    if token_type not in ("", "service"):
        raise InvalidRequest("invalid 'token_type' value")


@dataclass(frozen=True)
class _Lifetime:
    """How long a token to create lives, and the warnings planning it gave."""

    ttl: int
    explicit_max_ttl: int
    period: int
    warnings: list[str]


class TokenAuthBackend(framework.Backend):
    """The ``auth/token/`` mount (an ``Engine``): create, lookup, renew, revoke.

    ``has_sudo(req)`` says whether the caller holds ``sudo`` on ``req.path``; by
    default only root tokens do.  The core should pass its ACL check so that
    sudo policies work as in Vault.  ``policy_exists(name)``, when given, adds
    Vault's "Policy ... does not exist" warnings on create.
    """

    def __init__(
        self,
        store: TokenStore,
        *,
        has_sudo: Callable[[Request], bool] | None = None,
        policy_exists: Callable[[str], bool] | None = None,
    ):
        self._store = store
        self._has_sudo = has_sudo or _is_root_caller
        self._policy_exists = policy_exists
        self._roles = TokenRoles(store.view)
        super().__init__(self._paths())

    def _paths(self) -> list[Path]:
        """The table (Vault's ``token_store.go`` paths)."""
        return [
            *role_paths(self._roles),
            Path(
                "create",
                {logical.UPDATE: partial(self._create, orphan=False)},
                synopsis="The token create path is used to create new tokens.",
                description="A child of the calling token, with a subset of its policies unless the caller has "
                "sudo; 'no_parent' (sudo) makes an orphan.",
            ),
            Path(
                "create-orphan",
                {logical.UPDATE: partial(self._create, orphan=True)},
                synopsis="The token create path is used to create new orphan tokens.",
                description="As create, but the new token has no parent: revoking the caller leaves it alone.",
            ),
            Path(
                f"create/(?P<role_name>{ROLE_NAME})",
                {logical.UPDATE: self._create_against_role},
                synopsis="This token create path is used to create new tokens adhering to the given role.",
                description="The role decides the allowed policies, orphan, renewable, period, explicit max TTL "
                "and use limit; the token's path is auth/token/create/<role>[/<path_suffix>].",
            ),
            Path(
                "lookup",
                {logical.READ: self._lookup, logical.UPDATE: self._lookup},
                synopsis="This endpoint will lookup a token and its properties.",
                description="The token is given as 'token'; without one, the calling token.",
            ),
            Path(
                "lookup-self",
                {logical.READ: self._lookup_self, logical.UPDATE: self._lookup_self},
                synopsis="This endpoint will lookup the calling token and its properties.",
                description="A token on its last use still sees itself, with num_uses -1.",
            ),
            Path(
                "lookup-accessor",
                {logical.UPDATE: self._lookup_accessor},
                synopsis="This endpoint will lookup a token associated with the given accessor and its properties.",
                description="The answer never carries the token's id.",
            ),
            Path(
                "renew",
                {logical.UPDATE: self._renew},
                synopsis="This endpoint will renew the given token and prevent expiration.",
                description="'increment' asks for a new TTL from now, bounded by the token's maximum.",
            ),
            Path(
                "renew-self",
                {logical.UPDATE: self._renew_self},
                synopsis="This endpoint will renew the token used to call it and prevent expiration.",
                description="'increment' asks for a new TTL from now, bounded by the token's maximum.",
            ),
            Path(
                "renew-accessor",
                {logical.UPDATE: self._renew_accessor},
                synopsis="This endpoint will renew a token associated with the given accessor and its properties.",
                description="The answer never carries the token's id.",
            ),
            Path(
                "revoke",
                {logical.UPDATE: self._revoke},
                synopsis="This endpoint will delete the given token and all of its child tokens.",
                description="An unknown or expired token answers 204 as well.",
            ),
            Path(
                "revoke-self",
                {logical.UPDATE: self._revoke_self},
                synopsis="This endpoint will delete the token used to call it and all of its child tokens.",
                description="The calling token and its children are revoked.",
            ),
            Path(
                "revoke-accessor",
                {logical.UPDATE: self._revoke_accessor},
                synopsis="This endpoint will delete the token associated with the accessor and all of its "
                "child tokens.",
                description="An unknown accessor answers with a warning.",
            ),
            Path(
                "revoke-orphan",
                {logical.UPDATE: self._revoke_orphan},
                synopsis="This endpoint will delete the token and orphan its child tokens.",
                description="Needs sudo: the children survive their parent.",
            ),
            Path(
                "accessors/?",
                {logical.LIST: self._list_accessors},
                synopsis="List token accessors, which can then be used to iterate and discover their properties "
                "or revoke them.",
                description="Needs sudo.",
            ),
            Path(
                "tidy",
                {logical.UPDATE: self._tidy},
                synopsis="This endpoint performs cleanup tasks that can be run if certain error conditions have "
                "occurred.",
                description="Revokes dead tokens and removes dangling index entries; it runs to completion.",
            ),
        ]

    # --- create ----------------------------------------------------------------

    def _create_against_role(self, req: Request, role_name: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#create-token (``create/:role_name``)"""
        role = self._roles.get(role_name)
        if role is None:
            raise InvalidRequest(f"unknown role {role_name}")
        return self._create(req, orphan=False, role=role)

    def _create(self, req: Request, orphan: bool, role: TokenRole | None = None) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#create-token"""
        data = req.data
        if data.get("wrap_ttl") not in (None, "", 0):
            # A client that asked for a wrapped token must never get it in plain text.
            raise InvalidRequest("response wrapping (wrap_ttl) is not supported by Strongroom; no token was created")
        parent = self._parent(req)
        is_sudo = self._has_sudo(req)

        token_type = string_field(data, "type")
        if role is not None and role.token_type == "service":
            token_type = "service"  # a role fixed to service overrides the request; default-service lets it choose
        _check_token_type(token_type)
        renewable = bool_field(data, "renewable", True)
        num_uses = int_field(data, "num_uses")
        if num_uses < 0:
            raise InvalidRequest("number of uses cannot be negative")
        if string_field(data, "entity_alias"):
            if role is None:
                raise InvalidRequest("'entity_alias' is only allowed in combination with token role")
            raise InvalidRequest("'entity_alias' is not supported by Strongroom (it has no identity store)")
        meta = kv_pairs_field(data, "meta")
        name = display_name(string_field(data, "display_name"))
        token_id = string_field(data, "id")
        if token_id and not is_sudo:
            raise InvalidRequest("root or sudo privileges required to specify token id")

        policies = self._assignable_policies(parent, data, is_sudo, role)
        path = "auth/token/" + req.relative_path
        if role is not None:
            # The role decides: no_parent is ignored, as in Vault.
            orphan = role.orphan
            renewable = renewable and role.renewable
            num_uses = role_num_uses(role, num_uses)
            path = role.creation_path()
        elif bool_field(data, "no_parent", False):
            if not is_sudo:
                raise InvalidRequest("root or sudo privileges required to create orphan token")
            orphan = True
        lifetime = self._lifetime(data, parent, policies, is_sudo, role)

        token_id, entry = self._store.create(
            policies=policies,
            add_default=False,
            parent=None if orphan else parent,
            path=path,
            meta=meta,
            display_name=name,
            num_uses=num_uses,
            ttl=lifetime.ttl,
            explicit_max_ttl=lifetime.explicit_max_ttl,
            period=lifetime.period,
            renewable=renewable and lifetime.ttl != 0,
            token_id=token_id or None,
            role=role.name if role is not None else "",
        )
        metrics.count_token_creation("token", req.mount_point or "auth/token/", entry.ttl)
        warnings = list(lifetime.warnings)
        if self._policy_exists is not None:
            warnings += [
                f'Policy "{p}" does not exist' for p in entry.policies if p != "root" and not self._policy_exists(p)
            ]
        return Response(auth=auth_block(entry, token_id), warnings=warnings)

    def _parent(self, req: Request) -> TokenEntry:
        """The calling token, as stored now: the parent of the token to create."""
        parent = self._store.refresh(req.token) if req.token is not None and req.token.num_uses >= 0 else None
        if parent is None:
            raise InvalidRequest("parent token lookup failed: no parent found")
        # A limited-use token could otherwise escape its count through children.
        if parent.num_uses > 0:
            raise InvalidRequest("restricted use token cannot generate child tokens")
        return parent

    def _assignable_policies(
        self, parent: TokenEntry, data: dict[str, Any], is_sudo: bool, role: TokenRole | None
    ) -> list[str]:
        """The new token's policies, refused when one is Vault's own or is root without a root parent."""
        if role is not None and has_policy_rules(role):
            no_default = bool_field(data, "no_default_policy", False)
            policies = resolve_policies(role, comma_list(data.get("policies"), "policies"), parent.policies, no_default)
            if no_default:
                policies = [p for p in policies if p != "default"]
        else:
            policies = self._child_policies(parent, data, is_sudo)
        for policy in policies:
            if policy in NON_ASSIGNABLE_POLICIES:
                raise InvalidRequest(f'cannot assign policy "{policy}"')
        if "root" in policies and "root" not in parent.policies:
            raise InvalidRequest("root tokens may not be created without parent token being root")
        return policies

    def _lifetime(
        self, data: dict[str, Any], parent: TokenEntry, policies: list[str], is_sudo: bool, role: TokenRole | None
    ) -> _Lifetime:
        """The new token's TTL, explicit max TTL and period, as Vault plans them
        (the lesser of the request's and the role's, when there is a role)."""
        explicit_max_ttl = parse_ttl(data.get("explicit_max_ttl"), "explicit_max_ttl")
        period = parse_ttl(data.get("period"), "period")
        if period and not is_sudo:
            raise InvalidRequest("root or sudo privileges required to create periodic token")
        warnings: list[str] = []
        if role is not None:
            explicit_max_ttl, period = merge_lifetime(role, explicit_max_ttl, period, warnings)
        if data.get("ttl") not in (None, ""):
            ttl = parse_ttl(data.get("ttl"), "ttl")
        else:
            ttl = parse_ttl(data.get("lease"), "lease")

        # Root tokens may live forever; everything else gets a TTL.
        if period > 0 or ttl > 0 or "root" not in policies:
            ttl, planned = self._store.plan_ttl(ttl=ttl, period=period, explicit_max_ttl=explicit_max_ttl)
            warnings += planned
        if ttl == 0 and explicit_max_ttl > 0:
            ttl = explicit_max_ttl
        if ttl == 0 and parent.ttl != 0:
            raise InvalidRequest("expiring root tokens cannot create non-expiring root tokens")
        return _Lifetime(ttl=ttl, explicit_max_ttl=explicit_max_ttl, period=period, warnings=warnings)

    @staticmethod
    def _child_policies(parent: TokenEntry, data: dict[str, Any], is_sudo: bool) -> list[str]:
        """Vault's policy rules for a token created without a role."""
        requested = comma_list(data.get("policies"), "policies")
        no_default = bool_field(data, "no_default_policy", False)
        if not requested:
            # Inherit the parent's policies; "default" only if the parent has it.
            policies = sanitize_policies(parent.policies, add_default=False)
        elif not is_sudo:
            wanted = sanitize_policies(requested, add_default=False)
            held = sanitize_policies(parent.policies, add_default=False)
            if not set(wanted) <= set(held):
                raise InvalidRequest("child policies must be subset of parent")
            policies = sanitize_policies(requested, add_default=not no_default and "default" in parent.policies)
        else:
            policies = sanitize_policies(requested, add_default=not no_default)
        if no_default:
            policies = [p for p in policies if p != "default"]
        return policies

    # --- lookup ----------------------------------------------------------------

    def _lookup(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token"""
        token_id = string_field(req.data, "token")
        if not token_id:
            return self._lookup_self(req)
        entry = self._store.lookup(token_id)
        if entry is None:
            raise PermissionDenied("bad token")
        return Response(data=lookup_data(entry, self._store.clock().timestamp()))

    def _lookup_self(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self"""
        # The caller's own entry, as the core resolved (and used) it: a token on
        # its last use still sees itself, with num_uses -1 as in Vault.
        if req.token is None:
            raise InvalidRequest("missing token ID")
        return Response(data=lookup_data(req.token, self._store.clock().timestamp()))

    def _lookup_accessor(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-accessor"""
        entry = self._by_accessor(req)
        data = lookup_data(entry, self._store.clock().timestamp())
        data["id"] = ""
        return Response(data=data)

    def _list_accessors(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#list-accessors (sudo)"""
        if not self._has_sudo(req):
            raise PermissionDenied("permission denied")
        return Response(data={"keys": self._store.list_accessors()})

    # --- renew -----------------------------------------------------------------

    def _renew(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#renew-a-token"""
        token_id = string_field(req.data, "token")
        if not token_id:
            raise InvalidRequest("missing token ID")
        entry = self._store.lookup(token_id)
        if entry is None:
            raise InvalidRequest("token not found")
        return self._renewed(entry, req, token_id)

    def _renew_self(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#renew-a-token-self"""
        if req.token is None or req.token.num_uses == REVOCATION_PENDING:
            raise InvalidRequest("token not found")
        return self._renewed(req.token, req, req.token.id)

    def _renew_accessor(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#renew-a-token-accessor"""
        return self._renewed(self._by_accessor(req), req, "")

    def _renewed(self, entry: TokenEntry, req: Request, client_token: str) -> Response:
        increment = to_duration_seconds("increment", req.data.get("increment"), validated=True)
        renewed, warnings = self._store.renew(entry, increment)
        return Response(auth=auth_block(renewed, client_token), warnings=warnings)

    # --- revoke ----------------------------------------------------------------

    def _revoke(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token"""
        token_id = string_field(req.data, "token")
        if not token_id:
            raise InvalidRequest("missing token ID")
        # An unknown, expired or pending token answers 204 as well, as in Vault.
        self._store.revoke_live(token_id)
        return Response(status=204)

    def _revoke_self(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token-self"""
        if req.token is not None and req.token.id:
            self._store.revoke(req.token.id)
        return Response(status=204)

    def _revoke_accessor(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token-accessor"""
        accessor = string_field(req.data, "accessor")
        if not accessor:
            raise InvalidRequest("missing accessor")
        if not self._store.revoke_accessor(accessor):
            return Response(warnings=["No token found with this accessor"])
        return Response(status=204)

    def _revoke_orphan(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-token-and-orphan-children"""
        token_id = string_field(req.data, "token")
        if not token_id:
            raise InvalidRequest("missing token ID")
        if not self._has_sudo(req):
            raise InvalidRequest("root or sudo privileges required to revoke and orphan")
        if not self._store.revoke_orphan(token_id):
            raise InvalidRequest("token to revoke not found")
        return Response(status=204)

    def _tidy(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#tidy-tokens (runs to completion)"""
        revoked = self._store.tidy()
        return Response(
            status=202,
            warnings=[f"Tidy operation completed: {revoked} dead tokens revoked, dangling index entries removed."],
        )

    # --- shared ----------------------------------------------------------------

    def _by_accessor(self, req: Request) -> TokenEntry:
        accessor = string_field(req.data, "accessor")
        if not accessor:
            raise InvalidRequest("missing accessor")
        entry = self._store.lookup_accessor(accessor)
        if entry is None:
            raise InvalidRequest("invalid accessor")
        return entry
