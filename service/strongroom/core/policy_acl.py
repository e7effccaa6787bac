"""ACL evaluation: may this operation run on this path with these parameters?

https://developer.hashicorp.com/vault/docs/concepts/policies

``ACL`` merges the ``PathRule``s of a token's parsed policies and answers as
Vault's ``vault/acl.go`` does.  Matching: an exact rule wins; otherwise the
best of the longest ``*`` prefix rule and every matching ``+`` segment-wildcard
rule, ranked by Vault's priority order; rules for the same pattern coming from
several policies are merged (union of capabilities, ``deny`` wins, shorter
wrapping-TTL bounds win, parameter lists are joined).  Parameter constraints
(allowed/denied/required parameters, ``glob_match`` values) are checked for
the operations that carry parameters.  The quirks are kept on purpose, so a
policy means here exactly what it means in Vault.

An ``ACL`` is immutable once built and safe to share between threads;
templated rules are skipped because Strongroom has no identity entities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.core.policy_parser import DENY, PathRule, Policy
from strongroom.errors import PermissionDenied

ROOT = "root"

# Logical operation -> capability it needs (revoke/renew/rollback reuse update).
OPERATION_CAPABILITY = {
    "read": "read",
    "list": "list",
    "create": "create",
    "update": "update",
    "patch": "patch",
    "delete": "delete",
    "recover": "recover",
    "revoke": "update",
    "renew": "update",
    "rollback": "update",
}
# Only operations that carry parameters are checked against parameter constraints.
_PARAMETER_OPERATIONS = frozenset({"read", "create", "update", "patch", "recover"})


# --- rules merged per pattern ----------------------------------------------------


@dataclass
class _Permissions:
    """The merged permissions of every rule with one pattern (Vault's ACLPermissions)."""

    capabilities: set[str]
    allowed_parameters: dict[str, list] | None = None
    denied_parameters: dict[str, list] | None = None
    required_parameters: list[str] = field(default_factory=list)
    min_wrapping_ttl: float = 0
    max_wrapping_ttl: float = 0

    @classmethod
    def of(cls, rule: PathRule) -> _Permissions:
        def copy(params: Mapping[str, Iterable[Any]] | None) -> dict[str, list] | None:
            return None if params is None else {k: list(v) for k, v in params.items()}

        return cls(
            set(rule.capabilities),
            copy(rule.allowed_parameters),
            copy(rule.denied_parameters),
            list(rule.required_parameters),
            rule.min_wrapping_ttl,
            rule.max_wrapping_ttl,
        )

    def merge(self, rule: PathRule) -> None:
        if DENY in self.capabilities:
            return
        if DENY in rule.capabilities:
            self.capabilities = {DENY}
            self.allowed_parameters = self.denied_parameters = None
            return
        self.capabilities |= rule.capabilities
        # The shorter of two wrapping TTL bounds wins, as in Vault.
        if rule.max_wrapping_ttl > 0 and (self.max_wrapping_ttl == 0 or rule.max_wrapping_ttl < self.max_wrapping_ttl):
            self.max_wrapping_ttl = rule.max_wrapping_ttl
        if rule.min_wrapping_ttl > 0 and (self.min_wrapping_ttl == 0 or rule.min_wrapping_ttl < self.min_wrapping_ttl):
            self.min_wrapping_ttl = rule.min_wrapping_ttl
        self.allowed_parameters = _merge_parameters(self.allowed_parameters, rule.allowed_parameters)
        self.denied_parameters = _merge_parameters(self.denied_parameters, rule.denied_parameters)
        for name in rule.required_parameters:
            if name not in self.required_parameters:
                self.required_parameters.append(name)


def _merge_parameters(existing: dict | None, new: Mapping | None) -> dict | None:
    if not new:
        return existing
    if existing is None:
        return {k: list(v) for k, v in new.items()}
    for key, values in new.items():
        # An empty list ("any value") absorbs every other list for that key.
        if not values or (key in existing and not existing[key]):
            existing[key] = []
        else:
            existing[key] = list(values) + existing.get(key, [])
    return existing


# --- matching ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """A non-exact rule that matched, with the facts Vault ranks it by."""

    first_wildcard: int
    is_prefix: bool
    wildcards: int
    pattern: str
    permissions: _Permissions

    def priority(self) -> tuple[int, bool, int, int, str]:
        return (self.first_wildcard, not self.is_prefix, -self.wildcards, len(self.pattern), self.pattern)


class ACL:
    """The merged rules of a token's policies, evaluated as Vault's ``vault/acl.go``.

    Build it with ``ACL(policies)`` or ``ACL.root()``; it is immutable and safe to
    share between threads.  https://developer.hashicorp.com/vault/docs/concepts/policies

    The rule that decides a path is remembered (``LOOKUP_MEMO`` paths): every
    request of a token checks its ACL, mostly on the same few paths, and
    matching the globs costs a few microseconds each time.
    """

    #: Paths whose deciding rule one ACL remembers; past this the memo starts again empty.
    LOOKUP_MEMO = 4096

    def __init__(self, policies: Iterable[Policy] = ()):
        self._memo: dict[tuple[str, bool], _Permissions | None] = {}
        self._root = False
        self._exact: dict[str, _Permissions] = {}
        self._prefix: dict[str, _Permissions] = {}
        self._segment: dict[str, _Permissions] = {}
        for policy in policies:
            if policy is None:
                continue
            if policy.name == ROOT:
                self._root = True
            for rule in policy.rules:
                if rule.templated:
                    # Strongroom has no identity entities, so a template never resolves;
                    # Vault skips such a rule for a token without an entity.
                    continue
                if rule.has_segment_wildcard:
                    table, key = self._segment, rule.path
                elif rule.is_prefix:
                    table, key = self._prefix, rule.path[:-1]
                else:
                    table, key = self._exact, rule.path
                if key in table:
                    table[key].merge(rule)
                else:
                    table[key] = _Permissions.of(rule)
        self._prefixes = sorted(self._prefix, key=len, reverse=True)

    @classmethod
    def root(cls) -> ACL:
        """The ACL of the ``root`` policy: every operation on every path, sudo included."""
        acl = cls()
        acl._root = True
        return acl

    @property
    def is_root(self) -> bool:
        """True for the root policy's ACL."""
        return self._root

    def capabilities(self, path: str) -> list[str]:
        """Sorted capabilities on ``path`` as ``sys/capabilities`` reports them:
        ``["root"]`` for root, ``["deny"]`` when denied or nothing matches.
        https://developer.hashicorp.com/vault/api-docs/system/capabilities
        """
        if self._root:
            return [ROOT]
        # Vault looks up with a list operation so that the trailing-slash fallbacks apply.
        permissions = self._lookup(_clean(path), "list")
        capabilities = set() if permissions is None else permissions.capabilities
        if not capabilities or DENY in capabilities:
            return [DENY]
        return sorted(capabilities)

    def allowed(self, path: str, capability: str) -> bool:
        """Whether ``capability`` (e.g. ``sudo``) is granted on ``path`` (as in ``capabilities``)."""
        if self._root:
            return True
        return capability != DENY and capability in self.capabilities(path)

    def has_mount_access(self, mount_path: str) -> bool:
        """Whether any rule grants something other than ``deny`` on the mount
        ``mount_path`` (with its trailing slash) or on a path under it: who may
        look the mount up in ``sys/internal/ui/mounts`` (Vault's ``hasMountAccess``
        in ``vault/logical_system.go``, with ``CheckAllowedFromNonExactPaths``
        in bare-mount mode for ``+`` rules)."""
        if self._root:
            return True
        mount_path = _clean(mount_path)
        if DENY not in self.capabilities(mount_path):
            return True
        for table in (self._exact, self._prefix):
            if any(key.startswith(mount_path) and _grants(perms) for key, perms in table.items()):
                return True
        return any(
            _segment_rule_under_mount(pattern, mount_path) and _grants(perms)
            for pattern, perms in self._segment.items()
        )

    def resultant(self) -> dict[str, Any]:
        """The merged rules as ``sys/internal/ui/resultant-acl`` shows them
        (``exact_paths``, ``glob_paths`` keyed without the trailing ``*``,
        ``root``).  https://developer.hashicorp.com/vault/api-docs/system/internal-ui-resultant-acl
        """
        if self._root:
            return {"root": True}
        glob = {key: _rendered(perms) for key, perms in self._prefix.items()}
        glob.update((key, _rendered(perms)) for key, perms in self._segment.items())
        return {
            "exact_paths": {key: _rendered(perms) for key, perms in self._exact.items()},
            "glob_paths": glob,
            "root": False,
        }

    def distinguishes_create(self, path: str) -> bool:
        """Whether the policies grant exactly one of ``create`` and ``update`` on
        ``path``: only then does a write need to know whether its target exists
        (the existence check costs a storage read)."""
        if self._root:
            return False
        permissions = self._lookup(_clean(path), "create")
        if permissions is None:
            return False
        return ("create" in permissions.capabilities) != ("update" in permissions.capabilities)

    def check(
        self, path: str, operation: str, data: Mapping[str, Any] | None = None, *, wrap_ttl: float | None = None
    ) -> None:
        """Raise ``PermissionDenied`` unless the policies allow ``operation`` on
        ``path`` with request parameters ``data``.

        ``operation`` is a logical operation (read, list, create, update, patch,
        delete; revoke/renew/rollback need update; help is always allowed).
        Parameter constraints apply to read/create/update/patch; ``wrap_ttl`` is the
        requested response-wrapping TTL in seconds (None when not wrapping), checked
        against min/max_wrapping_ttl.  Sudo is checked with ``allowed(path, "sudo")``.
        https://developer.hashicorp.com/vault/docs/concepts/policies#fine-grained-control
        """
        if not self._allows(path, operation, data or {}, wrap_ttl):
            raise PermissionDenied("permission denied")

    def permits(
        self, path: str, operation: str, data: Mapping[str, Any] | None = None, *, wrap_ttl: float | None = None
    ) -> bool:
        """``check`` as a boolean."""
        return self._allows(path, operation, data or {}, wrap_ttl)

    def denies(self, path: str, operation: str) -> bool:
        """Whether the rule that decides ``operation`` on ``path`` is an explicit ``deny``."""
        if self._root:
            return False
        path = _clean(path)
        if operation == "list" and not path.endswith("/"):
            path += "/"
        permissions = self._lookup(path, operation)
        return permissions is not None and DENY in permissions.capabilities

    def _allows(self, path: str, operation: str, data: Mapping[str, Any], wrap_ttl: float | None) -> bool:
        if self._root or operation == "help":
            return True
        path = _clean(path)
        if operation == "list" and not path.endswith("/"):
            # Vault's HTTP layer always lists "dir/"; accept callers that did not add it.
            path += "/"
        permissions = self._lookup(path, operation)
        needed = OPERATION_CAPABILITY.get(operation)
        if permissions is None or needed is None or needed not in permissions.capabilities:
            return False
        if permissions.max_wrapping_ttl > 0 and (wrap_ttl is None or wrap_ttl > permissions.max_wrapping_ttl):
            return False
        if permissions.min_wrapping_ttl > 0 and (wrap_ttl is None or wrap_ttl < permissions.min_wrapping_ttl):
            return False
        if 0 < permissions.max_wrapping_ttl < permissions.min_wrapping_ttl:
            return False  # possible only after merging policies
        if operation in _PARAMETER_OPERATIONS:
            return _parameters_allowed(permissions, data)
        return True

    def _lookup(self, path: str, operation: str) -> _Permissions | None:
        """The permissions of the rule that decides ``path`` (only a list looks for more than one spelling)."""
        key = (path, operation == "list")
        memo = self._memo
        if key in memo:
            return memo[key]
        found = self._decide(path, operation)
        if len(memo) >= self.LOOKUP_MEMO:
            memo = self._memo = {}
        memo[key] = found
        return found

    def _decide(self, path: str, operation: str) -> _Permissions | None:
        found = self._exact.get(path)
        if found is not None:
            return found
        if operation == "list":
            trimmed = path[:-1] if path.endswith("/") else path
            found = self._exact.get(trimmed)
            if found is not None:
                return found
            # Without the slash first: a glob like "dir*" must match a list of "dir/".
            if path.endswith("/"):
                found = self._non_exact(trimmed)
                if found is not None:
                    return found
        return self._non_exact(path)

    def _non_exact(self, path: str) -> _Permissions | None:
        candidates = []
        for prefix in self._prefixes:
            if path.startswith(prefix):
                candidates.append(_Candidate(len(prefix), True, 0, prefix, self._prefix[prefix]))
                break
        if self._segment:
            parts = path.split("/")
            for pattern, permissions in self._segment.items():
                candidate = _match_segments(pattern, parts, permissions)
                if candidate is not None:
                    candidates.append(candidate)
        if not candidates:
            return None
        return max(candidates, key=_Candidate.priority).permissions

    def __repr__(self) -> str:
        if self._root:
            return "ACL(root)"
        return f"ACL(exact={sorted(self._exact)}, prefix={self._prefixes}, segment={sorted(self._segment)})"


def _clean(path: str) -> str:
    return path.lstrip("/")


_GRANTING = frozenset({"create", "read", "update", "patch", "delete", "list", "sudo"})


def _grants(permissions: _Permissions) -> bool:
    return DENY not in permissions.capabilities and bool(_GRANTING & permissions.capabilities)


def _rendered(permissions: _Permissions) -> dict[str, Any]:
    """One merged rule as Vault's resultant ACL renders it (empty settings left out)."""
    out: dict[str, Any] = {"capabilities": sorted(permissions.capabilities)}
    if permissions.required_parameters:
        out["required_parameters"] = list(permissions.required_parameters)
    if permissions.allowed_parameters:
        out["allowed_parameters"] = permissions.allowed_parameters
    if permissions.denied_parameters:
        out["denied_parameters"] = permissions.denied_parameters
    if permissions.min_wrapping_ttl > 0:
        out["min_wrapping_ttl"] = permissions.min_wrapping_ttl
    if permissions.max_wrapping_ttl > 0:
        out["max_wrapping_ttl"] = permissions.max_wrapping_ttl
    return out


def _segment_rule_under_mount(pattern: str, mount_path: str) -> bool:
    """Whether the ``+`` rule ``pattern`` can match a path under ``mount_path``
    (``a/b/``): its first segments, read as Vault's bare-mount walk does, spell
    the mount."""
    if not mount_path.endswith("/"):
        return False
    path_parts = mount_path.split("/")
    is_prefix = pattern.endswith("*")
    rule_parts = (pattern[:-1] if is_prefix else pattern).split("/")
    segments: list[str] = []
    for i, rule_part in enumerate(rule_parts):
        if rule_part in ("+", path_parts[i]):
            segments.append(path_parts[i])
        elif is_prefix and i == len(rule_parts) - 1 and path_parts[i].startswith(rule_part):
            segments.extend(path_parts[i:])
        if i == len(path_parts) - 2:
            return ("/".join(segments) + "/").startswith(mount_path)
    return False


def _match_segments(pattern: str, parts: list[str], permissions: _Permissions) -> _Candidate | None:
    if not pattern:
        return None
    is_prefix = pattern.endswith("*")
    stem = pattern[:-1] if is_prefix else pattern
    pattern_parts = stem.split("/")
    if len(parts) < len(pattern_parts) or (not is_prefix and len(parts) != len(pattern_parts)):
        return None
    wildcards = 0
    last = len(pattern_parts) - 1
    for i, part in enumerate(pattern_parts):
        if part == "+":
            wildcards += 1
        elif part == parts[i]:
            continue
        elif is_prefix and i == last and parts[i].startswith(part):
            continue
        else:
            return None
    return _Candidate(pattern.index("+"), is_prefix, wildcards, stem, permissions)


# --- parameter constraints -------------------------------------------------------


def _parameters_allowed(permissions: _Permissions, data: Mapping[str, Any]) -> bool:
    """Vault's parameter checks in its order: required, then denied, then allowed."""
    if any(name.lower() not in data for name in permissions.required_parameters):
        return False
    if not data:
        return True
    return not _any_denied(permissions.denied_parameters, data) and _all_allowed(permissions.allowed_parameters, data)


def _any_denied(denied: Mapping[str, list] | None, data: Mapping[str, Any]) -> bool:
    if not denied:
        return False
    if "*" in denied:
        return True
    for name, value in data.items():
        values = denied.get(str(name).lower())
        if values is not None and _in_denied(value, values):
            return True
    return False


def _all_allowed(allowed: Mapping[str, list] | None, data: Mapping[str, Any]) -> bool:
    if not allowed:
        return True
    allow_all = "*" in allowed
    if allow_all and len(allowed) == 1:
        return True
    for name, value in data.items():
        values = allowed.get(str(name).lower())
        if values is None:
            if not allow_all:
                return False
        elif not _in_allowed(value, values):
            return False
    return True


def _in_allowed(value: Any, candidates: list) -> bool:
    # As in Vault, an empty string splits into no elements and therefore passes.
    return _matches(value, candidates, all)


def _in_denied(value: Any, candidates: list) -> bool:
    return _matches(value, candidates, any)


def _matches(value: Any, candidates: list, combine: Callable[[Iterable[bool]], bool]) -> bool:
    """``value`` is among ``candidates`` (or they are empty: anything matches); lists,
    and strings read as comma-separated lists, match when ``combine`` (all for
    allowed values, any for denied ones) of their elements do."""
    if not candidates or _in_list(value, candidates):
        return True
    if isinstance(value, list):
        return combine(_in_list(v, candidates) for v in value)
    if isinstance(value, str):
        return combine(_in_list(v, candidates) for v in _comma_split(value))
    return False


def _comma_split(value: str) -> list[str]:
    return [] if value == "" else [part.strip() for part in value.split(",")]


def _in_list(value: Any, candidates: list) -> bool:
    for candidate in candidates:
        if candidate is None or value is None:
            if candidate is value:
                return True
        elif isinstance(candidate, str):
            if isinstance(value, str) and glob_match(candidate, value):
                return True
        elif _same(candidate, value):
            return True
    return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def glob_match(pattern: str, value: str) -> bool:
    """Vault's ``GlobbedStringsMatch``: ``*`` only as first and/or last character
    (``foo-*``, ``*-bar``, ``*mid*``); a pattern shorter than 2 characters is literal.
    https://developer.hashicorp.com/vault/docs/concepts/policies#parameter-constraints
    """
    if len(pattern) < 2:
        return value == pattern
    starts, ends = pattern.startswith("*"), pattern.endswith("*")
    if starts and ends:
        return pattern[1:-1] in value
    if starts:
        return value.endswith(pattern[1:])
    if ends:
        return value.startswith(pattern[:-1])
    return value == pattern
