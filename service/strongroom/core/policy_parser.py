"""Vault's policy language: policy text (HCL or JSON) to immutable rules.

https://developer.hashicorp.com/vault/docs/concepts/policies#policy-syntax

``parse_policy`` turns the text of one policy into a ``Policy`` holding one
``PathRule`` per ``path`` block, as Vault's ``vault/policy.go`` does.  Every
problem (bad syntax, unknown keys, unknown capabilities, bad parameter keys,
unbalanced ``{{...}}`` templates, bad wrapping TTLs) is raised as
``InvalidRequest`` carrying Vault's ``failed to parse policy: ...`` message;
hcl2/lark and JSON errors never escape this module.

Invariants of the result: rules are frozen and their parameter maps read-only;
capabilities are a subset of ``CAPABILITIES``; a rule holding ``deny`` holds
nothing else.  Evaluating the rules is ``policy_acl``'s job.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from strongroom.durations import DURATION_OVERFLOW, INT64_MAX, SECOND_NS
from strongroom.errors import InvalidRequest
from strongroom.fields import duration_ns

DENY = "deny"
SUDO = "sudo"
CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", SUDO, DENY, "subscribe", "recover"})

# The pre-0.5 ``policy = "..."`` shorthand, expanded as Vault does.
LEGACY_POLICIES = {
    "deny": ("deny",),
    "read": ("read", "list"),
    "write": ("create", "read", "update", "delete", "list"),
    "sudo": ("create", "read", "update", "delete", "list", "sudo"),
}

_TOP_LEVEL_KEYS = ("name", "path")
_PATH_KEYS = (
    "comment",
    "policy",
    "capabilities",
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "mfa_methods",
    "control_group",
    "subscribe_event_types",
)


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


class HclSyntaxError(Exception):
    """HCL text the parser refused; the message says where and why (Vault's wording)."""


def parse_hcl(text: str) -> Any:
    """The document of HCL ``text`` as python-hcl2 reads it (dicts, lists, scalars:
    JSON's types); ``HclSyntaxError`` with a described position when it is not HCL."""
    import hcl2  # here, not at the top: lark costs ~13 MiB, and ~8 MiB more once it has parsed

    try:
        return hcl2.loads(text)
    except Exception as exc:  # lark's errors: translated at this boundary
        raise HclSyntaxError(_describe_hcl_error(exc)) from None


_hcl_parser: Callable[[str], Any] = parse_hcl


def use_hcl_parser(parser: Callable[[str], Any]) -> None:
    """Parse the policies' HCL with ``parser`` (same contract as ``parse_hcl``):
    a worker hands it to its node core, which holds the parser for the node's
    configuration anyway, so that no worker process carries lark."""
    global _hcl_parser
    _hcl_parser = parser


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
            top = _hcl_parser(text)
        except HclSyntaxError as exc:
            raise _ParseError(str(exc)) from None
        if not isinstance(top, dict):
            raise _ParseError("does not contain a root object")
    for key in top:
        if key not in _TOP_LEVEL_KEYS:
            raise _ParseError(f'invalid key "{key}"')
    return list(_path_blocks(top.get("path")))


def _path_blocks(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
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
    char = getattr(exc, "char", None)
    if char is not None:
        return f"{where}illegal char {char!r}"
    return f"{where}{getattr(exc, 'orig_exc', None) or exc}"


def _parse_rules(blocks: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[PathRule]:
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
            return PathRule(
                path=path,
                capabilities=frozenset({DENY}),
                is_prefix=prefix,
                has_segment_wildcard=segment,
                templated=templated,
            )
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
    return PathRule(
        path=path,
        capabilities=frozenset(capabilities),
        is_prefix=prefix,
        has_segment_wildcard=segment,
        allowed_parameters=allowed,
        denied_parameters=denied,
        required_parameters=required,
        min_wrapping_ttl=min_ttl,
        max_wrapping_ttl=max_ttl,
        subscribe_event_types=events,
        templated=templated,
    )


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
    if "*" in name and not (name == "*" or (name.startswith("/") and name.endswith("/*") and "*" not in name[:-2])):
        raise _ParseError(f'path "{path}": {key}: parameter key "{name}" cannot contain non-tail wildcards')


def _duration(value: Any, key: str) -> float:
    """Seconds (with their fraction) from Vault's ``parseutil.ParseDurationSecond``
    (``strongroom.durations``): ``"90"``, ``"5d"``, ``"1h30m"``, an HCL integer; an HCL
    float is whole seconds as Go converts it.  Nothing a Go duration cannot hold."""
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) * SECOND_NS > INT64_MAX:
            raise _ParseError(f"error parsing {key}: {DURATION_OVERFLOW}")
        return float(int(value))
    try:
        return duration_ns(value) / SECOND_NS
    except ValueError as exc:
        raise _ParseError(f"error parsing {key}: {exc}") from None
