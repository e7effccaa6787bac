"""Stored ACL policies (``sys/policy``, ``sys/policies/acl``) with a small cache.

https://developer.hashicorp.com/vault/api-docs/system/policies

Policies live in the barrier under ``sys/policy/<name>`` as their raw text.  The
built-in ``root`` policy is never stored; ``default`` is Vault's default policy
until an operator overwrites it.  ``invalidate(name)`` drops a cached policy (and
every ACL built from it) when another worker or node changed it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from strongroom import metrics
from strongroom.core.policy import ACL, DEFAULT_POLICY_TEXT, Policy, parse_policy, validate_name
from strongroom.core.wrapping import WRAPPING_POLICY, WRAPPING_POLICY_TEXT
from strongroom.errors import InvalidRequest, WriteConflict
from strongroom.storage import Backend, TxnOp, check_op


class PolicyStore:
    """Policies by name over a barrier view, cached until invalidated."""

    def __init__(self, view: Backend) -> None:
        self._view = view
        self._lock = threading.Lock()
        self._policies: dict[str, Policy | None] = {}
        self._acls: dict[tuple[str, ...], ACL] = {}

    def get(self, name: str) -> Policy | None:
        name = name.lower()
        with self._lock:
            if name in self._policies:
                metrics.inc(metrics.labelled(metrics.cache_total, "policy", "hit"))
                return self._policies[name]
        metrics.inc(metrics.labelled(metrics.cache_total, "policy", "miss"))
        raw = self._view.get(name)
        if raw is not None:
            policy = parse_policy(name, raw.decode())
        elif name == "default":
            policy = parse_policy("default", DEFAULT_POLICY_TEXT)
        elif name == WRAPPING_POLICY:  # built in, never stored (IMMUTABLE_POLICIES refuses writes)
            policy = parse_policy(WRAPPING_POLICY, WRAPPING_POLICY_TEXT)
        else:
            policy = None
        with self._lock:
            self._policies[name] = policy
        return policy

    def store_default(self) -> bool:
        """Write Vault's ``default`` policy when storage holds none yet (True when
        written; an operator's own ``default`` written meanwhile wins).  Vault
        stores it at setup too; the active node does it once
        (``server/nodecore.py``), so the ``sys/policy/`` watch never hangs on
        an empty prefix (``core/invalidation.py``)."""
        if self._view.get("default") is not None:
            return False
        try:
            self._view.txn([check_op("default", 0), TxnOp("set", "default", DEFAULT_POLICY_TEXT.encode())])
        except WriteConflict:
            return False
        return True

    def names(self) -> list[str]:
        """Every policy name, ``default`` and ``root`` included, sorted as Vault lists them."""
        stored = set(self._view.list(""))
        return sorted(stored | {"default", "root"})

    def put(self, name: str, text: str) -> int:
        name = validate_name(name, "update")
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("'policy' parameter not supplied or empty")
        parse_policy(name, text)
        index = self._view.put(name, text.encode())
        self.invalidate(name)
        return index

    def delete(self, name: str) -> int:
        name = validate_name(name, "delete")
        index = self._view.delete(name)
        self.invalidate(name)
        return index

    def invalidate(self, name: str | None = None) -> None:
        """Forget ``name`` (or everything) so the next read goes to storage."""
        with self._lock:
            if name is None:
                self._policies.clear()
            else:
                self._policies.pop(name.lower(), None)
            self._acls.clear()

    def acl(self, names: Iterable[str]) -> ACL:
        """The ACL for a token's policies; ``root`` short-circuits to allow-all."""
        key = tuple(sorted(set(names)))
        with self._lock:
            cached = self._acls.get(key)
        if cached is not None:
            return cached
        if "root" in key:
            acl = ACL.root()
        else:
            acl = ACL([p for p in (self.get(n) for n in key) if p is not None])
        with self._lock:
            self._acls[key] = acl
        return acl
