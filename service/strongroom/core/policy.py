"""ACL policies: parsing Vault's policy language and evaluating it like Vault.

https://developer.hashicorp.com/vault/docs/concepts/policies

A policy is HCL (or JSON) made of ``path`` blocks.  ``parse_policy`` turns the
text into an immutable ``Policy``; ``ACL`` merges the rules of a token's policies
and answers "may this operation run on this path with these parameters?".

Matching follows Vault's ``vault/acl.go``: an exact rule wins; otherwise the
best of the longest ``*`` prefix rule and every matching ``+`` segment-wildcard
rule, ranked by Vault's priority order; rules for the same pattern coming from
several policies are merged (union of capabilities, ``deny`` wins).  The quirks
are kept on purpose, so a policy means here exactly what it means in Vault.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import hcl2

from strongroom.errors import InvalidRequest, PermissionDenied

DENY = "deny"
SUDO = "sudo"
ROOT = "root"
CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", SUDO, DENY,
                          "subscribe", "recover"})

# The pre-0.5 ``policy = "..."`` shorthand, expanded as Vault does.
LEGACY_POLICIES = {
    "deny": ("deny",),
    "read": ("read", "list"),
    "write": ("create", "read", "update", "delete", "list"),
    "sudo": ("create", "read", "update", "delete", "list", "sudo"),
}

# Logical operation -> capability it needs (revoke/renew/rollback reuse update).
OPERATION_CAPABILITY = {
    "read": "read", "list": "list", "create": "create", "update": "update", "patch": "patch",
    "delete": "delete", "recover": "recover", "revoke": "update", "renew": "update", "rollback": "update",
}
# Only operations that carry parameters are checked against parameter constraints.
_PARAMETER_OPERATIONS = frozenset({"read", "create", "update", "patch", "recover"})

_TOP_LEVEL_KEYS = ("name", "path")
_PATH_KEYS = ("comment", "policy", "capabilities", "allowed_parameters", "denied_parameters",
              "required_parameters", "min_wrapping_ttl", "max_wrapping_ttl", "mfa_methods",
              "control_group", "subscribe_event_types")

# Policies that can never be written or deleted; ``default`` may be edited but not deleted.
IMMUTABLE_POLICIES = ("root", "response-wrapping", "control-group")

DEFAULT_POLICY_TEXT = '''
# A token may read its own properties.
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# A token may renew itself.
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# A token may revoke itself.
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# A token may ask which capabilities it has on a path.
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# A token may read its own identity entity, by id or by name.
path "identity/entity/id/{{identity.entity.id}}" {
    capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
    capabilities = ["read"]
}

# A token may read the ACL that results from all its policies (used by UIs).
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# A token may renew a lease whose id it knows (old and new endpoint).
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# A token may look up a lease whose id it knows.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# A token owns its cubbyhole.
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Response wrapping: wrap a value, look up and unwrap a wrapping token.
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# General purpose hashing.
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# A token may check a control group request whose accessor it holds.
path "sys/control-group/request" {
    capabilities = ["update"]
}

# A token may call the authorization endpoint of OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
'''


@dataclass(frozen=True)
class PathRule:
    """One ``path`` block of a policy.

    ``path`` is the pattern as written (one leading ``/`` removed).  A trailing
    ``*`` makes it a prefix rule (``is_prefix``); a ``+`` segment makes it a
    segment-wildcard rule (``has_segment_wildcard``).  A ``deny`` rule keeps
    only ``deny``.  Parameter maps are keyed by lower-cased parameter name; an
    empty value tuple means "any value".  Wrapping TTLs are in seconds (0 = unset).
    ``templated`` rules (``{{identity...}}``) need an identity entity and are not
    applied by ``ACL``.  https://developer.hashicorp.com/vault/docs/concepts/policies
    """

    path: str
    capabilities: frozenset[str]
    is_prefix: bool = False
    has_segment_wildcard: bool = False
    allowed_parameters: Mapping[str, tuple] | None = None
    denied_parameters: Mapping[str, tuple] | None = None
    required_parameters: tuple[str, ...] = ()
    min_wrapping_ttl: float = 0
    max_wrapping_ttl: float = 0
    subscribe_event_types: tuple[str, ...] = ()
    templated: bool = False


@dataclass(frozen=True)
class Policy:
    """A named, parsed ACL policy; ``raw`` is the text it was parsed from.

    https://developer.hashicorp.com/vault/docs/concepts/policies
    """

    name: str
    raw: str
    rules: tuple[PathRule, ...] = field(default=())


# --- names -------------------------------------------------------------------


def validate_name(name: str, operation: str) -> str:
    """Check that policy ``name`` may be written (``create``/``update``) or
    ``delete``d, and return it normalised (trimmed, lower-cased) as Vault does.

    ``root`` (and Vault's internal ``response-wrapping``/``control-group``) can be
    neither; ``default`` can be edited but not deleted.
    https://developer.hashicorp.com/vault/api-docs/system/policies
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("policy name must be provided")
    name = name.strip().lower()
    if operation in ("create", "update", "write"):
        if name in IMMUTABLE_POLICIES:
            raise InvalidRequest(f'cannot update "{name}" policy')
    elif operation == "delete":
        if name in IMMUTABLE_POLICIES:
            raise InvalidRequest(f'cannot delete "{name}" policy')
        if name == "default":
            raise InvalidRequest("cannot delete default policy")
    elif operation != "read":
        raise ValueError(f"unknown policy operation {operation!r}")
    return name


# --- parsing -----------------------------------------------------------------


class _ParseError(Exception):
    """A policy error; the public message gets Vault's ``failed to parse policy:`` prefix."""


def parse_policy(name: str, text: str) -> Policy:
    """Parse Vault policy ``text`` (HCL, or JSON when it starts with ``{``).

    Raises ``InvalidRequest`` with Vault's ``failed to parse policy: ...`` message
    for bad syntax, unknown keys, unknown capabilities or bad parameter keys.
    https://developer.hashicorp.com/vault/docs/concepts/policies#policy-syntax
    """
    if not isinstance(text, str):
        raise InvalidRequest("failed to parse policy: policy must be a string")
    try:
        document = _load(text)
        rules = tuple(_parse_rules(document))
    except _ParseError as exc:
        raise InvalidRequest(f"failed to parse policy: {exc}") from None
    return Policy(name=name.strip().lower(), raw=text, rules=rules)


def _load(text: str) -> list[tuple[str, dict]]:
    """The ``path`` blocks of the document as (label, body), after checking top-level keys."""
    if text.lstrip().startswith("{"):
        try:
            top = json.loads(text)
        except ValueError as exc:
            raise _ParseError(str(exc)) from None
        if not isinstance(top, dict):
            raise _ParseError("does not contain a root object")
    else:
        try:
            top = hcl2.loads(text)
        except Exception as exc:  # lark's errors: translated at this boundary
            raise _ParseError(_describe_hcl_error(exc)) from None
    for key in top:
        if key not in _TOP_LEVEL_KEYS:
            raise _ParseError(f'invalid key "{key}"')
    return list(_path_blocks(top.get("path")))


def _path_blocks(value: Any):
    if value is None:
        return
    # HCL gives a list of {label: body}; JSON may give one {label: body, ...} object.
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, dict):
            raise _ParseError("path: expected a block, not a value")
        if not item:
            raise _ParseError("path: block needs a path")
        for label, bodies in item.items():
            for body in bodies if isinstance(bodies, list) else [bodies]:
                if not isinstance(body, dict):
                    raise _ParseError(f'path "{label}": expected a block, not a value')
                yield label, body


def _describe_hcl_error(exc: Exception) -> str:
    line, column = getattr(exc, "line", None), getattr(exc, "column", None)
    where = f"At {line}:{column}: " if isinstance(line, int) and line > 0 else ""
    token = getattr(exc, "token", None)
    if token is not None:
        if getattr(token, "type", "") == "$END":
            return f"{where}unexpected end of input"
        return f"{where}unexpected token {str(token)!r}"
    if getattr(exc, "char", None) is not None:
        return f"{where}illegal char {exc.char!r}"
    return f"{where}{getattr(exc, 'orig_exc', None) or exc}"


def _parse_rules(blocks):
    for label, body in blocks:
        where = f'path "{label}"'
        for key in body:
            if key not in _PATH_KEYS:
                raise _ParseError(f'{where}: invalid key "{key}"')
        yield _parse_rule(label, body, where)


def _parse_rule(label: str, body: dict, where: str) -> PathRule:
    path = label[1:] if label.startswith("/") else label
    if "+*" in path:
        raise _ParseError(f"path \"{path}\": invalid use of wildcards ('+*' is forbidden)")
    templated = _check_templating(path)
    segment = path == "+" or "/+" in path or path.startswith("+/")
    prefix = path.endswith("*")

    capabilities = list(_string_list(body.get("capabilities", []), where, "capabilities"))
    legacy = body.get("policy")
    if legacy is not None:
        if not isinstance(legacy, str) or legacy not in LEGACY_POLICIES:
            raise _ParseError(f'{where}: invalid policy "{legacy}"')
        if legacy == "deny":
            capabilities = [DENY]
        else:
            capabilities += LEGACY_POLICIES[legacy]
    for capability in capabilities:
        if capability == DENY:
            # Vault stops reading the block at ``deny``: nothing else applies.
            return PathRule(path=path, capabilities=frozenset({DENY}), is_prefix=prefix,
                            has_segment_wildcard=segment, templated=templated)
        if capability not in CAPABILITIES:
            raise _ParseError(f'{where}: invalid capability "{capability}"')

    allowed = _parameters(body.get("allowed_parameters"), path, "allowed_parameters")
    denied = _parameters(body.get("denied_parameters"), path, "denied_parameters")
    min_ttl = _duration(body.get("min_wrapping_ttl"), "min_wrapping_ttl")
    max_ttl = _duration(body.get("max_wrapping_ttl"), "max_wrapping_ttl")
    if min_ttl and max_ttl and max_ttl < min_ttl:
        raise _ParseError("max_wrapping_ttl cannot be less than min_wrapping_ttl")
    # Vault never validates required_parameters (its check loops over an empty list).
    required = tuple(_string_list(body.get("required_parameters", []), where, "required_parameters"))
    _string_list(body.get("mfa_methods", []), where, "mfa_methods")
    events = tuple(_string_list(body.get("subscribe_event_types", []), where, "subscribe_event_types"))
    return PathRule(path=path, capabilities=frozenset(capabilities), is_prefix=prefix,
                    has_segment_wildcard=segment, allowed_parameters=allowed, denied_parameters=denied,
                    required_parameters=required, min_wrapping_ttl=min_ttl, max_wrapping_ttl=max_ttl,
                    subscribe_event_types=events, templated=templated)


def _check_templating(path: str) -> bool:
    """Whether ``path`` holds ``{{...}}`` identity templates; unbalanced braces are an error."""
    open_, templates = False, 0
    for match in re.finditer(r"\{\{|\}\}", path):
        if (match.group() == "{{") == open_:
            raise _ParseError("failed to validate policy templating: unbalanced templating characters")
        open_ = not open_
        templates += not open_
    if open_:
        raise _ParseError("failed to validate policy templating: unbalanced templating characters")
    return templates > 0


def _string_list(value: Any, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _ParseError(f"{where}: {key}: expected a list of strings")
    return value


def _parameters(value: Any, path: str, key: str) -> Mapping[str, tuple] | None:
    if value is None:
        return None
    # HCL block form (``allowed_parameters { bar = [] }``) arrives as a list of bodies.
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        merged: dict = {}
        for part in value:
            merged.update(part)
        value = merged
    if not isinstance(value, dict):
        raise _ParseError(f'path "{path}": {key}: expected a map of parameter names to lists of values')
    result = {}
    for name, values in value.items():
        if not isinstance(values, list):
            raise _ParseError(f'path "{path}": {key}: parameter key "{name}": expected a list of values')
        _validate_parameter_key(name, path, key)
        result[name.lower()] = tuple(values)
    return MappingProxyType(result)


def _validate_parameter_key(name: str, path: str, key: str) -> None:
    if name.startswith("/") and re.search(r"~(?![01])", name):
        raise _ParseError(f'path "{path}": {key}: parameter key "{name}": invalid path syntax')
    if "*" in name and not (name == "*" or (name.startswith("/") and name.endswith("/*")
                                            and "*" not in name[:-2])):
        raise _ParseError(f'path "{path}": {key}: parameter key "{name}" cannot contain non-tail wildcards')


_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+|[0-9]+\.)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _duration(value: Any, key: str) -> float:
    """Seconds from Vault's ``ParseDurationSecond`` forms: a number, ``"90"``, ``"5d"``, ``"1h30m"``."""
    if value is None or value == "":
        return 0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise _ParseError(f"error parsing {key}: unsupported type {type(value).__name__}")
    text = value.strip()
    if re.fullmatch(r"-?[0-9]+", text):
        return float(int(text))
    if re.fullmatch(r"-?[0-9]+d", text):
        return float(int(text[:-1]) * 86400)
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0
    if body and _GO_DURATION.sub("", body) == "":
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _GO_DURATION.findall(body))
        return -seconds if text.startswith("-") else seconds
    raise _ParseError(f'error parsing {key}: time: invalid duration "{value}"')


# --- evaluation ----------------------------------------------------------------


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
    def of(cls, rule: PathRule) -> "_Permissions":
        def copy(params):
            return None if params is None else {k: list(v) for k, v in params.items()}
        return cls(set(rule.capabilities), copy(rule.allowed_parameters), copy(rule.denied_parameters),
                   list(rule.required_parameters), rule.min_wrapping_ttl, rule.max_wrapping_ttl)

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


@dataclass(frozen=True)
class _Candidate:
    """A non-exact rule that matched, with the facts Vault ranks it by."""

    first_wildcard: int
    is_prefix: bool
    wildcards: int
    pattern: str
    permissions: _Permissions

    def priority(self):
        return (self.first_wildcard, not self.is_prefix, -self.wildcards, len(self.pattern), self.pattern)


class ACL:
    """The merged rules of a token's policies, evaluated as Vault's ``vault/acl.go``.

    Build it with ``ACL(policies)`` or ``ACL.root()``; it is immutable and safe to
    share between threads.  https://developer.hashicorp.com/vault/docs/concepts/policies
    """

    def __init__(self, policies: Iterable[Policy] = ()):
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
    def root(cls) -> "ACL":
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

    def check(self, path: str, operation: str, data: Mapping[str, Any] | None = None, *,
              wrap_ttl: float | None = None) -> None:
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
    for name in permissions.required_parameters:
        if name.lower() not in data:
            return False
    if not data:
        return True
    denied = permissions.denied_parameters
    if denied:
        if "*" in denied:
            return False
        for name, value in data.items():
            values = denied.get(str(name).lower())
            if values is not None and _in_denied(value, values):
                return False
    allowed = permissions.allowed_parameters
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
    if not candidates or _in_list(value, candidates):
        return True
    # Lists, and strings read as comma-separated lists, pass when every element does.
    # As in Vault, an empty string splits into no elements and therefore passes.
    if isinstance(value, list):
        return all(_in_list(v, candidates) for v in value)
    if isinstance(value, str):
        return all(_in_list(v, candidates) for v in _comma_split(value))
    return False


def _in_denied(value: Any, candidates: list) -> bool:
    if not candidates or _in_list(value, candidates):
        return True
    if isinstance(value, list):
        return any(_in_list(v, candidates) for v in value)
    if isinstance(value, str):
        return any(_in_list(v, candidates) for v in _comma_split(value))
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
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
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
