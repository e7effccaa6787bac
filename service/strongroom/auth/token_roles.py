"""Token roles: ``auth/token/roles/<name>``, the templates ``auth/token/create/<name>`` creates tokens from.

https://developer.hashicorp.com/vault/api-docs/auth/token#create-update-token-role

A role lets a token create children its own policies would not allow (any
subset of ``allowed_policies``, none of ``disallowed_policies``, globs for
both), orphans without sudo, periodic tokens without sudo, and marks the
tokens it makes with its name and ``path_suffix`` in their creation path
(``auth/token/create/<role>/<suffix>``, so ``sys/leases/revoke-prefix`` can
revoke one revision of a role's tokens).

``TokenRole`` is the stored role with Vault's create/update rules (``parse``)
and its read shape (``render``); ``resolve_policies`` and ``merge_lifetime``
are Vault's rules for a token created against a role; ``TokenRoles`` keeps
roles as JSON under ``roles/`` in the token store's view (the barrier encrypts
them).  Nothing is cached: every use reads the role, so a change made through
any worker or node applies to the next request.

Only service tokens exist in Strongroom: a role asking for batch tokens is
refused, as are ``token_bound_cidrs`` (stored but not enforced would be a
restriction nobody checks).  ``allowed_entity_aliases`` is stored and shown;
``entity_alias`` on create is refused, there being no identity store.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from strongroom.auth.token_entry import sanitize_policies
from strongroom.errors import InvalidRequest
from strongroom.fields import bool_field, to_duration_seconds, to_int, to_string, to_string_slice
from strongroom.storage import Backend

#: Vault's ``framework.GenericNameRegex``: a role name in a path (Go's ``\w`` is ASCII).
ROLE_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_])?"
#: Vault's ``pathSuffixSanitize``, matched against the whole suffix here (Vault
#: searches it anywhere, which lets ``a/b`` and ``../x`` through its regex).
_PATH_SUFFIX = re.compile(r"\w[\w\-.]+\w", re.ASCII)
_PATH_SUFFIX_SHOWN = r"\w[\w-.]+\w"  # Vault's spelling of the same pattern, for the message
ROLES_PREFIX = "roles/"

_TOKEN_TYPES = {"default": "default-service", "default-service": "default-service", "service": "service"}


def comma_list(value: Any, name: str) -> list[str]:
    """Vault's ``TypeCommaStringSlice``: a list, or a comma-separated string; items trimmed, empty ones dropped."""
    items = [part.strip() for item in to_string_slice(name, value) for part in item.split(",")]
    return [item for item in items if item]


def _lower_unique(items: Iterable[str]) -> list[str]:
    """Vault's ``strutil.RemoveDuplicates(items, lowercase=true)``: trimmed, lower-cased, sorted, unique."""
    return sorted({item.strip().lower() for item in items if item.strip()})


def _glob_match(patterns: Iterable[str], name: str) -> bool:
    """Vault's ``StrListContainsGlob``: ``*`` matches any run of characters (nothing else is special)."""
    return any(fnmatch.fnmatchcase(name, p.replace("[", "[[]").replace("?", "[?]")) for p in patterns)


@dataclass(frozen=True)
class TokenRole:
    """One token role as stored (durations in seconds).

    ``period`` and ``explicit_max_ttl`` are the deprecated spellings, kept so a
    read shows what was written; ``token_period`` and ``token_explicit_max_ttl``
    are what token creation uses.
    """

    name: str
    allowed_policies: tuple[str, ...] = ()
    disallowed_policies: tuple[str, ...] = ()
    allowed_policies_glob: tuple[str, ...] = ()
    disallowed_policies_glob: tuple[str, ...] = ()
    orphan: bool = False
    renewable: bool = True
    path_suffix: str = ""
    period: int = 0
    token_period: int = 0
    explicit_max_ttl: int = 0
    token_explicit_max_ttl: int = 0
    token_type: str = "default-service"
    token_no_default_policy: bool = False
    token_num_uses: int = 0
    allowed_entity_aliases: tuple[str, ...] | None = field(default=None)

    def parse(self, data: Mapping[str, Any]) -> tuple[TokenRole, list[str]]:
        """This role updated by the fields present in ``data`` (a create starts
        from ``TokenRole(name)``), and the warnings Vault gives; raises
        ``InvalidRequest`` before anything is stored."""
        fields = dict(data)
        changes = _policy_changes(fields)
        if "orphan" in fields:
            changes["orphan"] = bool_field(fields, "orphan", False)
        if "renewable" in fields:
            changes["renewable"] = bool_field(fields, "renewable", True)
        if "path_suffix" in fields:
            changes["path_suffix"] = _path_suffix(fields["path_suffix"])
        if "token_type" in fields:
            changes["token_type"] = _token_type(fields["token_type"])
        if "token_no_default_policy" in fields:
            changes["token_no_default_policy"] = bool_field(fields, "token_no_default_policy", False)
        if "token_num_uses" in fields:
            uses = to_int("token_num_uses", fields["token_num_uses"], validated=True)
            if uses < 0:
                raise InvalidRequest("error parsing role fields: 'token_num_uses' cannot be negative")
            changes["token_num_uses"] = uses
        for name in ("token_bound_cidrs", "bound_cidrs"):
            if comma_list(fields.get(name), name):
                raise InvalidRequest(f"{name} is not supported by Strongroom yet; nothing was stored")
        warnings: list[str] = []
        changes.update(_durations(fields, "period", "token_period", warnings))
        changes.update(_durations(fields, "explicit_max_ttl", "token_explicit_max_ttl", warnings))
        return replace(self, **changes), warnings

    def render(self) -> dict[str, Any]:
        """The ``data`` of a role read, in Vault's shape."""
        shown: dict[str, Any] = {
            "allowed_entity_aliases": (
                None if self.allowed_entity_aliases is None else list(self.allowed_entity_aliases)
            ),
            "allowed_policies": list(self.allowed_policies),
            "allowed_policies_glob": list(self.allowed_policies_glob),
            "disallowed_policies": list(self.disallowed_policies),
            "disallowed_policies_glob": list(self.disallowed_policies_glob),
            "explicit_max_ttl": self.explicit_max_ttl,
            "name": self.name,
            "orphan": self.orphan,
            "path_suffix": self.path_suffix,
            "period": self.period,
            "renewable": self.renewable,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_period": self.token_period,
            "token_type": self.token_type,
        }
        if self.token_num_uses > 0:
            shown["token_num_uses"] = self.token_num_uses
        return shown

    def to_json(self) -> bytes:
        """The stored form."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TokenRole:
        """A role from its stored form."""
        record = json.loads(raw)
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        for name, value in known.items():
            if isinstance(value, list):
                known[name] = tuple(value)
        return cls(**known)

    def creation_path(self) -> str:
        """The path recorded in the tokens this role creates (and their lease ids)."""
        path = "auth/token/create/" + self.name
        return f"{path}/{self.path_suffix}" if self.path_suffix else path


def _policy_changes(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The policy lists and entity aliases present in ``fields``, as Vault stores them."""
    changes: dict[str, Any] = {}
    for name in ("allowed_policies", "allowed_policies_glob"):
        if name in fields:
            changes[name] = tuple(sanitize_policies(comma_list(fields[name], name), add_default=False))
    for name in ("disallowed_policies", "disallowed_policies_glob", "allowed_entity_aliases"):
        if name in fields:
            changes[name] = tuple(_lower_unique(comma_list(fields[name], name)))
    return changes


def _path_suffix(value: Any) -> str:
    suffix = to_string("path_suffix", value, validated=True)
    if suffix and not _PATH_SUFFIX.fullmatch(suffix):
        raise InvalidRequest(f"given role path suffix contains invalid characters; must match {_PATH_SUFFIX_SHOWN}")
    return suffix


def _token_type(value: Any) -> str:
    if value is None:
        raise InvalidRequest("Invalid 'token_type' value: null")
    text = to_string("token_type", value, validated=True)
    if text in ("batch", "default-batch"):
        raise InvalidRequest(f"invalid 'token_type' value {text!r}: Strongroom issues service tokens only")
    if text not in _TOKEN_TYPES:
        raise InvalidRequest(f"invalid 'token_type' value \"{text}\"")
    return _TOKEN_TYPES[text]


def _durations(fields: Mapping[str, Any], legacy: str, current: str, warnings: list[str]) -> dict[str, int]:
    """Vault's precedence between a deprecated duration and its ``token_`` spelling:
    the new one wins and clears the old; the old one alone sets both."""
    if current in fields:
        if legacy in fields:
            warnings.append(f"Both '{current}' and deprecated '{legacy}' value supplied, ignoring the deprecated value")
        return {current: to_duration_seconds(current, fields[current], validated=True), legacy: 0}
    if legacy in fields:
        seconds = to_duration_seconds(legacy, fields[legacy], validated=True)
        return {legacy: seconds, current: seconds}
    return {}


def resolve_policies(
    role: TokenRole, requested: list[str], parent_policies: Iterable[str], no_default_policy: bool
) -> list[str]:
    """The policies of a token created against ``role`` (Vault's ``resolveTokenPolicies``
    with a role): a subset of the role's allowed policies (or globs) when it has
    some, else the requested ones or the parent's; never a disallowed one;
    ``default`` added unless the request, the role or a disallow says no.  Only
    for a role with policy rules (``has_policy_rules``): without them the
    rules of a create without a role apply."""
    add_default = (
        not no_default_policy
        and not role.token_no_default_policy
        and "default" not in role.disallowed_policies
        and not _glob_match(role.disallowed_policies_glob, "default")
    )
    final = sanitize_policies(requested, add_default) if requested else []
    if role.allowed_policies or role.allowed_policies_glob:
        allowed = sanitize_policies(role.allowed_policies, add_default)
        if not final:
            final = allowed
        else:
            globs = sanitize_policies(role.allowed_policies_glob, add_default=False)
            for policy in final:
                if policy not in allowed and not _glob_match(globs, policy):
                    raise InvalidRequest(
                        f"token policies ({_go_quoted(final)}) must be subset of the role's allowed policies "
                        f"({_go_quoted(allowed)}) or glob policies ({_go_quoted(globs)})"
                    )
    elif not final:
        final = sanitize_policies(parent_policies, add_default)
    for policy in final:
        if policy in role.disallowed_policies or _glob_match(role.disallowed_policies_glob, policy):
            raise InvalidRequest(f'token policy "{policy}" is disallowed by this role')
    return final


def _go_quoted(items: Iterable[str]) -> str:
    """Go's ``%q`` of a string slice: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(item) for item in items) + "]"


def has_policy_rules(role: TokenRole) -> bool:
    """Whether the role decides the policies itself (otherwise the parent's rules apply)."""
    return bool(
        role.allowed_policies or role.disallowed_policies or role.allowed_policies_glob or role.disallowed_policies_glob
    )


def merge_lifetime(role: TokenRole, explicit_max_ttl: int, period: int, warnings: list[str]) -> tuple[int, int]:
    """The explicit max TTL and period of a token created against ``role``: the
    lesser of the request's and the role's, with Vault's warnings when both are set."""
    if role.token_explicit_max_ttl:
        if explicit_max_ttl:
            explicit_max_ttl = min(explicit_max_ttl, role.token_explicit_max_ttl)
            warnings.append(
                "Explicit max TTL specified both during creation call and in role; using the lesser value of "
                f"{explicit_max_ttl} seconds"
            )
        else:
            explicit_max_ttl = role.token_explicit_max_ttl
    if role.token_period:
        if period:
            period = min(period, role.token_period)
            warnings.append(
                f"Period specified both during creation call and in role; using the lesser value of {period} seconds"
            )
        else:
            period = role.token_period
    return explicit_max_ttl, period


def role_num_uses(role: TokenRole, requested: int) -> int:
    """The use limit of a token created against ``role``: the stricter of the two (0 is unlimited)."""
    if role.token_num_uses and (requested == 0 or role.token_num_uses < requested):
        return role.token_num_uses
    return requested


class TokenRoles:
    """Token roles as JSON under ``roles/<name>`` in ``view`` (the token store's view).

    Names are case-sensitive, as in Vault.  Each call is one storage operation.
    """

    def __init__(self, view: Backend):
        self._view = view

    def get(self, name: str) -> TokenRole | None:
        """The role, or None."""
        raw = self._view.get(ROLES_PREFIX + name)
        return None if raw is None else TokenRole.from_json(raw)

    def put(self, role: TokenRole) -> None:
        """Store (create or replace) ``role``."""
        self._view.put(ROLES_PREFIX + role.name, role.to_json())

    def delete(self, name: str) -> None:
        """Remove the role (nothing happens if there is none)."""
        self._view.delete(ROLES_PREFIX + name)

    def names(self) -> list[str]:
        """Every role's name, in storage order."""
        return [name for name in self._view.list(ROLES_PREFIX) if not name.endswith("/")]
