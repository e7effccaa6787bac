"""Where a transit mount keeps its keys: ``policy/<name>`` in the mount's barrier view.

Each key is one JSON value (its key material base64 inside, encrypted by the
barrier like every value of the mount).  Changes are optimistic
read-modify-writes (``update``): the value is read with its modify index and
written with a ``check-index`` on it, and the whole change runs again on a
``WriteConflict``, so two processes rotating the same key never lose a version.

Every request still reads its key from the view, so a rotation, a config
change or a delete on the active node is seen by the next request on any node
exactly as storage shows it (on the active node through its coherent read
cache, on a standby within the stale-read bound: see ``storage/cache.py``).
What is kept between requests is only the *parsed* key: ``get`` remembers, per
name, the stored bytes it last parsed and the ``Policy`` they gave, and
answers with that ``Policy`` while the view returns the same bytes.  A
``Policy`` is a pure function of those bytes, so this cache can never be
staler than the read that validates it; it saves the JSON decode, the base64
of every version and the cipher objects the ``Policy`` keeps (``policy``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from strongroom.engines.transit.policy import Policy
from strongroom.errors import StorageUnavailable
from strongroom.storage import Backend, TxnOp, WriteConflict, check_op

PREFIX = "policy/"
MAX_ATTEMPTS = 10
#: Parsed keys one process keeps per mount; past this it starts again empty.
PARSED_MAX = 1024


class KeyStore:
    """The keys of one transit mount over its storage ``view``."""

    def __init__(self, view: Backend, parsed_max: int = PARSED_MAX):
        self.view = view
        self._parsed_max = parsed_max
        #: name -> (the stored bytes, the Policy parsed from them).
        self._parsed: dict[str, tuple[bytes, Policy]] = {}

    def get(self, name: str) -> Policy | None:
        """The key ``name``, or None.

        The ``Policy`` may be shared with other requests of this process: read
        it, never change it (changes go through ``update``, which parses its
        own copy)."""
        raw = self.view.get(PREFIX + name)
        if raw is None:
            self._parsed.pop(name, None)
            return None
        known = self._parsed.get(name)
        # The barrier hands back the same bytes object for an unchanged value: ``is`` settles most lookups.
        if known is not None and (known[0] is raw or known[0] == raw):
            return known[1]
        raw = bytes(raw)  # kept: it must not change under the cache
        policy = Policy.from_json(json.loads(raw))
        if len(self._parsed) >= self._parsed_max:
            self._parsed.clear()
        self._parsed[name] = (raw, policy)
        return policy

    def names(self) -> list[str]:
        """The names of every key, sorted."""
        return [name for name in self.view.list(PREFIX) if not name.endswith("/")]

    def update(self, name: str, change: Callable[[Policy | None], Policy | None]) -> tuple[Policy | None, int]:
        """Apply ``change`` to the stored key (None when absent) and write what it
        returns (None: nothing to write), guarded by the index read; returns the
        key and the storage index after the write (0 when nothing was written).
        ``change`` receives a copy of its own, which it may change."""
        key = PREFIX + name
        for _ in range(MAX_ATTEMPTS):
            raw, read_index = self.view.get_with_index(key)
            current = None if raw is None else Policy.from_json(json.loads(raw))
            changed = change(current)
            if changed is None:
                return current, 0
            value = json.dumps(changed.to_json()).encode()
            try:
                index = self.view.txn([check_op(key, read_index), TxnOp("set", key, value)])
            except WriteConflict:
                continue
            return changed, index
        raise StorageUnavailable(f"too many concurrent changes to transit key {name}")

    def delete(self, name: str) -> int:
        """Remove the key ``name``; the storage index after the write."""
        self._parsed.pop(name, None)
        return self.view.delete(PREFIX + name)
