"""The token auth method mounted at ``auth/token/``: Vault's ``/auth/token/*`` API.

https://developer.hashicorp.com/vault/api-docs/auth/token

Parses parameters the way Vault's framework does, applies Vault's rules for who
may create what (policy subsets, orphans, ids, periods need sudo) and renders
responses in Vault's exact shapes; the ``TokenStore`` does the storage.  The
ACL check on the path itself is the core's; the rules here are the ones Vault
enforces inside the handler.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Callable

from strongroom.auth.token_store import REVOCATION_PENDING, TokenEntry, TokenStore, sanitize_policies
from strongroom.config import parse_duration
from strongroom.core import logical
from strongroom.core.logical import Request, Response
from strongroom.errors import InvalidRequest, MethodNotAllowed, PermissionDenied, UnsupportedPath

_READ = frozenset({logical.READ})
_WRITE = frozenset({logical.CREATE, logical.UPDATE})
_LIST = frozenset({logical.LIST})
# Vault keeps these for its own machinery (response wrapping, control groups).
NON_ASSIGNABLE_POLICIES = ("response-wrapping", "control-group")


def parse_ttl(value, name: str = "ttl") -> int:
    """Whole seconds in a Vault duration (``"1h"``, ``"30m"``, ``"10s"``, ``3600``,
    ``"3600"``); None and ``""`` are 0.  Negative values raise ``InvalidRequest``
    in Vault's words ("ttl must be positive"), garbage names the field."""
    if value is None:
        return 0
    negative = (isinstance(value, str) and value.strip().startswith("-")) or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0)
    if negative:
        raise InvalidRequest(f"{name} must be positive")
    try:
        return int(parse_duration(value))
    except ValueError as exc:
        raise InvalidRequest(f'invalid value for "{name}": {exc}') from None


def rfc3339(timestamp: float) -> str:
    """A unix time in Go's RFC 3339 (UTC, fractional seconds without trailing zeros)."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


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


class TokenAuthBackend:
    """The ``auth/token/`` mount (an ``Engine``): create, lookup, renew, revoke.

    ``has_sudo(req)`` says whether the caller holds ``sudo`` on ``req.path``; by
    default only root tokens do.  The core should pass its ACL check so that
    sudo policies work as in Vault.  ``policy_exists(name)``, when given, adds
    Vault's "Policy ... does not exist" warnings on create.
    """

    def __init__(self, store: TokenStore, *, has_sudo: Callable[[Request], bool] | None = None,
                 policy_exists: Callable[[str], bool] | None = None):
        self._store = store
        self._has_sudo = has_sudo or _is_root_caller
        self._policy_exists = policy_exists
        self._routes: dict[str, tuple[frozenset, Callable[[Request], Response]]] = {
            "create": (_WRITE, lambda req: self._create(req, orphan=False)),
            "create-orphan": (_WRITE, lambda req: self._create(req, orphan=True)),
            "lookup": (_READ | _WRITE, self._lookup),
            "lookup-self": (_READ | _WRITE, self._lookup_self),
            "lookup-accessor": (_WRITE, self._lookup_accessor),
            "renew": (_WRITE, self._renew),
            "renew-self": (_WRITE, self._renew_self),
            "renew-accessor": (_WRITE, self._renew_accessor),
            "revoke": (_WRITE, self._revoke),
            "revoke-self": (_WRITE, self._revoke_self),
            "revoke-accessor": (_WRITE, self._revoke_accessor),
            "revoke-orphan": (_WRITE, self._revoke_orphan),
            "accessors": (_LIST, self._list_accessors),
            "tidy": (_WRITE, self._tidy),
        }

    # --- the Engine protocol ---------------------------------------------------

    def handle(self, req: Request) -> Response:
        """Dispatch ``req.relative_path`` (``create``, ``lookup-self``, ...)."""
        path = req.relative_path
        if path == "accessors/":
            path = "accessors"
        route = self._routes.get(path)
        if route is None:
            raise UnsupportedPath("unsupported path")
        operations, handler = route
        if req.operation not in operations:
            raise MethodNotAllowed()
        return handler(req)

    def exists(self, req: Request) -> bool | None:
        """No existence checks: every write is an ``update`` for the ACL, as in Vault."""
        return None

    def unauthenticated_paths(self) -> list[str]:
        """Every token endpoint needs a token."""
        return []

    # --- create ----------------------------------------------------------------

    def _create(self, req: Request, orphan: bool) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#create-token"""
        data = req.data
        parent = self._store.refresh(req.token) if req.token is not None and req.token.num_uses >= 0 else None
        if parent is None:
            raise InvalidRequest("parent token lookup failed: no parent found")
        # A limited-use token could otherwise escape its count through children.
        if parent.num_uses > 0:
            raise InvalidRequest("restricted use token cannot generate child tokens")
        is_sudo = self._has_sudo(req)

        token_type = _string(data, "type")
        if token_type == "batch":
            raise InvalidRequest("batch tokens are not supported")
        if token_type not in ("", "service"):
            raise InvalidRequest("invalid 'token_type' value")
        renewable = _bool(data, "renewable", True)
        num_uses = _int(data, "num_uses")
        if num_uses < 0:
            raise InvalidRequest("number of uses cannot be negative")
        meta = _kv_pairs(data, "meta")
        name = display_name(_string(data, "display_name"))
        token_id = _string(data, "id")
        if token_id and not is_sudo:
            raise InvalidRequest("root or sudo privileges required to specify token id")

        policies = self._child_policies(parent, data, is_sudo)
        for policy in policies:
            if policy in NON_ASSIGNABLE_POLICIES:
                raise InvalidRequest(f'cannot assign policy "{policy}"')
        if "root" in policies and "root" not in parent.policies:
            raise InvalidRequest("root tokens may not be created without parent token being root")

        if _bool(data, "no_parent", False):
            if not is_sudo:
                raise InvalidRequest("root or sudo privileges required to create orphan token")
            orphan = True

        explicit_max_ttl = parse_ttl(data.get("explicit_max_ttl"), "explicit_max_ttl")
        period = parse_ttl(data.get("period"), "period")
        if period and not is_sudo:
            raise InvalidRequest("root or sudo privileges required to create periodic token")
        if data.get("ttl") not in (None, ""):
            ttl = parse_ttl(data.get("ttl"), "ttl")
        else:
            ttl = parse_ttl(data.get("lease"), "lease")

        warnings: list[str] = []
        # Root tokens may live forever; everything else gets a TTL.
        if period > 0 or ttl > 0 or "root" not in policies:
            ttl, warnings = self._store.plan_ttl(ttl=ttl, period=period, explicit_max_ttl=explicit_max_ttl)
        if ttl == 0 and explicit_max_ttl > 0:
            ttl = explicit_max_ttl
        if ttl == 0:
            if parent.ttl != 0:
                raise InvalidRequest("expiring root tokens cannot create non-expiring root tokens")
            renewable = False

        token_id, entry = self._store.create(
            policies=policies, add_default=False, parent=None if orphan else parent,
            path="auth/token/" + req.relative_path, meta=meta, display_name=name, num_uses=num_uses, ttl=ttl,
            explicit_max_ttl=explicit_max_ttl, period=period, renewable=renewable, token_id=token_id or None)
        if self._policy_exists is not None:
            warnings += [f'Policy "{p}" does not exist' for p in entry.policies
                         if p != "root" and not self._policy_exists(p)]
        return Response(auth=self._auth(entry, token_id), warnings=warnings)

    @staticmethod
    def _child_policies(parent: TokenEntry, data: dict, is_sudo: bool) -> list[str]:
        """Vault's policy rules for a token created without a role."""
        requested = _string_list(data, "policies")
        no_default = _bool(data, "no_default_policy", False)
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
        token_id = _string(req.data, "token")
        if not token_id:
            return self._lookup_self(req)
        entry = self._store.lookup(token_id)
        if entry is None:
            raise PermissionDenied("bad token")
        return Response(data=self._lookup_data(entry))

    def _lookup_self(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self"""
        # The caller's own entry, as the core resolved (and used) it: a token on
        # its last use still sees itself, with num_uses -1 as in Vault.
        if req.token is None:
            raise InvalidRequest("missing token ID")
        return Response(data=self._lookup_data(req.token))

    def _lookup_accessor(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-accessor"""
        entry = self._by_accessor(req)
        data = self._lookup_data(entry)
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
        token_id = _string(req.data, "token")
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
        increment = parse_ttl(req.data.get("increment"), "increment")
        renewed, warnings = self._store.renew(entry, increment)
        return Response(auth=self._auth(renewed, client_token), warnings=warnings)

    # --- revoke ----------------------------------------------------------------

    def _revoke(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token"""
        token_id = _string(req.data, "token")
        if not token_id:
            raise InvalidRequest("missing token ID")
        if self._store.lookup(token_id) is not None:
            self._store.revoke(token_id)
        return Response(status=204)

    def _revoke_self(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token-self"""
        if req.token is not None and req.token.id:
            self._store.revoke(req.token.id)
        return Response(status=204)

    def _revoke_accessor(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token-accessor"""
        accessor = _string(req.data, "accessor")
        if not accessor:
            raise InvalidRequest("missing accessor")
        if not self._store.revoke_accessor(accessor):
            return Response(warnings=["No token found with this accessor"])
        return Response(status=204)

    def _revoke_orphan(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-token-and-orphan-children"""
        token_id = _string(req.data, "token")
        if not token_id:
            raise InvalidRequest("missing token ID")
        if not self._has_sudo(req):
            raise InvalidRequest("root or sudo privileges required to revoke and orphan")
        if self._store.lookup(token_id) is None:
            raise InvalidRequest("token to revoke not found")
        self._store.revoke_orphan(token_id)
        return Response(status=204)

    def _tidy(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#tidy-tokens (runs to completion)"""
        revoked = self._store.tidy()
        return Response(status=202, warnings=[f"Tidy operation completed: {revoked} dead tokens revoked, "
                                              "dangling index entries removed."])

    # --- rendering -------------------------------------------------------------

    def _by_accessor(self, req: Request) -> TokenEntry:
        accessor = _string(req.data, "accessor")
        if not accessor:
            raise InvalidRequest("missing accessor")
        entry = self._store.lookup_accessor(accessor)
        if entry is None:
            raise InvalidRequest("invalid accessor")
        return entry

    @staticmethod
    def _auth(entry: TokenEntry, client_token: str) -> dict[str, Any]:
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

    def _lookup_data(self, entry: TokenEntry) -> dict[str, Any]:
        """The ``data`` block of the lookup endpoints (the parent is never shown)."""
        now = self._store.clock().timestamp()
        data: dict[str, Any] = {
            "accessor": entry.accessor,
            "creation_time": entry.creation_time,
            "creation_ttl": entry.ttl,
            "display_name": entry.display_name,
            "entity_id": entry.entity_id,
            "expire_time": rfc3339(entry.expire_at) if entry.expire_at is not None else None,
            "explicit_max_ttl": entry.explicit_max_ttl,
            "id": entry.id,
            "issue_time": rfc3339(entry.issue_time),
            "meta": entry.meta,
            "num_uses": entry.num_uses,
            "orphan": entry.orphan,
            "path": entry.path,
            "policies": list(entry.policies),
            "renewable": entry.renewable and entry.expire_at is not None,
            "ttl": max(0, int(entry.expire_at - now)) if entry.expire_at is not None else 0,
            "type": entry.type,
        }
        if entry.period:
            data["period"] = entry.period
        if entry.last_renewal is not None:
            data["last_renewal_time"] = int(entry.last_renewal)
            data["last_renewal"] = rfc3339(entry.last_renewal)
        return data


# --- parameter parsing in the way of Vault's framework.FieldData ---------------


def _string(data: dict, name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise InvalidRequest(f'invalid value for "{name}": expected a string')
    return str(value)


def _bool(data: dict, name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "t", "true"):
            return True
        if lowered in ("0", "f", "false"):
            return False
    raise InvalidRequest(f'invalid value for "{name}": expected a boolean')


def _int(data: dict, name: str) -> int:
    value = data.get(name)
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise InvalidRequest(f'invalid value for "{name}": expected an integer')
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidRequest(f'invalid value for "{name}": expected an integer')


def _string_list(data: dict, name: str) -> list[str]:
    # Vault's TypeStringSlice: a list, or one string taken as a single element.
    value = data.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidRequest(f'invalid value for "{name}": expected a list of strings')


def _kv_pairs(data: dict, name: str) -> dict[str, str] | None:
    # Vault's TypeKVPairs: an object (values weakly turned into strings), or one
    # "key=value" string or a list of them, split at the first "=" and kept verbatim.
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                raise InvalidRequest(f'invalid value for "{name}": values must be strings')
            if isinstance(item, bool):
                out[str(key)] = "1" if item else "0"
            elif isinstance(item, float) and item == int(item):
                out[str(key)] = str(int(item))
            else:
                out[str(key)] = "" if item is None else str(item)
        return out
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        out = {}
        for position, pair in enumerate(value):
            key, sep, item = pair.partition("=")
            if not sep:
                raise InvalidRequest(f'Field validation failed: error converting input for field "{name}": '
                                     f'invalid key pair at index {position} in field "{name}"')
            out[key] = item
        return out
    raise InvalidRequest(f'invalid value for "{name}": expected key/value pairs')
