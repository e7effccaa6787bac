"""Response shapes, and the differences between two of them.

A shape keeps what a Vault client relies on and drops what naturally differs
between two servers (ids, accessors, times, version strings): for an object, its
keys and the shape of each value; for a list, the union of its elements'
shapes; for a scalar, its JSON type.  ``diff`` names every difference by a path
such as ``body.data.metadata.version``, so an allow-list can match it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

LIST_ITEM = "[]"


def shape(value: Any) -> Any:
    """The shape of a decoded JSON value."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            merged = _merge(merged, shape(item))
        return {LIST_ITEM: merged} if value else {LIST_ITEM: None}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _merge(a: Any, b: Any) -> Any:
    if not a:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **{k: _merge(a.get(k), v) for k, v in b.items()}}
    return a


def kind(value: Any) -> str:
    """``object``, ``list`` or the scalar type of a shape."""
    if isinstance(value, dict):
        return "list" if LIST_ITEM in value else "object"
    return value


def diff(reference: Any, candidate: Any, path: str = "body") -> list[str]:
    """Every difference between two shapes, as ``missing <path>`` (only in the
    reference), ``extra <path>`` (only in the candidate) or
    ``type <path>: <reference kind> != <candidate kind>``.  An empty list in the
    reference matches any list."""
    ref_kind, cand_kind = kind(reference), kind(candidate)
    if ref_kind != cand_kind:
        return [f"type {path}: {ref_kind} != {cand_kind}"]
    if not isinstance(reference, dict):
        return []
    if ref_kind == "list":
        if reference[LIST_ITEM] is None or candidate[LIST_ITEM] is None:
            return []
        return diff(reference[LIST_ITEM], candidate[LIST_ITEM], path + LIST_ITEM)
    found = []
    for key in sorted(reference.keys() - candidate.keys()):
        found.append(f"missing {path}.{key}")
    for key in sorted(candidate.keys() - reference.keys()):
        found.append(f"extra {path}.{key}")
    for key in sorted(reference.keys() & candidate.keys()):
        found.extend(diff(reference[key], candidate[key], f"{path}.{key}"))
    return found


@dataclass(frozen=True)
class Allowed:
    """A known, intended difference: ``case`` and ``difference`` are fnmatch
    patterns over the case name and a line of ``diff``'s output; ``difference``
    may list alternatives separated by ``|``."""

    case: str
    difference: str
    reason: str

    def covers(self, case: str, difference: str) -> bool:
        return fnmatch.fnmatchcase(case, self.case) and any(
            fnmatch.fnmatchcase(difference, pattern) for pattern in self.difference.split("|")
        )


def unexplained(case: str, differences: list[str], allowed: list[Allowed]) -> list[str]:
    """The differences no allow-list entry covers."""
    return [d for d in differences if not any(a.covers(case, d) for a in allowed)]
