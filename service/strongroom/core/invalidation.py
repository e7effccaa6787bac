"""Watching the keys behind cached tables, so every node's caches follow the active node.

Each worker caches the mount tables, policies and audit devices; the node core
watches the storage keys behind them with Consul blocking queries and pushes the
names of what changed to its workers.  It watches the keys themselves (their
modify indexes), not a shared "changed" marker, so two writers at once can never
hide each other's invalidation.  A keyring change (``sys/rotate`` on the active
node) makes the node core re-read the keyring.

Consul wakes a blocking query on a prefix that holds no key whenever anything
changes under the nearest key-tree node that exists above it (``sys/`` for an
empty ``sys/audit/``), and answers it with the index of the whole KV store:
so nothing written on every request may live beside the watched tables under
``sys/`` (the standby change log is ``changes/``).  The answers are counted
(``strongroom_table_watch_answers_total``): a rate above one per 10 s on a
table nobody changes means a watch has become a poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from strongroom import metrics
from strongroom.errors import StrongroomError
from strongroom.storage import PrefixWatch

log = logging.getLogger("strongroom.invalidation")

# storage prefix -> the ``table`` label of its answers
TABLES = {
    "sys/mounts": "mounts",
    "sys/auth": "auth",
    "sys/policy/": "policy",
    "sys/audit/": "audit",
    "core/keyring": "keyring",
}
# storage prefix -> how a changed key is named to ``Core.invalidate``
WATCHED = {
    "sys/mounts": lambda key: "mounts",
    "sys/auth": lambda key: "auth",
    "sys/policy/": lambda key: "policy/" + key[len("sys/policy/") :],
    "sys/audit/": lambda key: "audit",
}
KEYRING_KEY = "core/keyring"


def diff(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """Keys added, removed or modified between two ``{key: modify index}`` snapshots."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


class TableWatcher:
    """One blocking-query thread per watched prefix (see module docstring).

    ``registry`` is the storage layer's watch (``storage.PrefixWatch``);
    ``publish(names)`` pushes invalidations; ``keyring_changed()`` re-reads the keyring.
    """

    def __init__(
        self,
        registry: PrefixWatch,
        publish: Callable[[list[str]], None],
        keyring_changed: Callable[[], object],
        wait: str = "10s",
    ):
        self._registry = registry
        self._publish = publish
        self._keyring_changed = keyring_changed
        self._wait = wait
        self._stopping = False

    def start(self) -> None:
        for prefix, name in WATCHED.items():
            threading.Thread(target=self._watch, args=(prefix, name), name=f"watch-{prefix}", daemon=True).start()
        threading.Thread(target=self._watch, args=(KEYRING_KEY, None), name="watch-keyring", daemon=True).start()

    def stop(self) -> None:
        self._stopping = True

    def _watch(self, prefix: str, name: Callable[[str], str] | None) -> None:
        index, seen = 0, None
        answers = metrics.labelled(metrics.table_watch_answers_total, TABLES[prefix])
        while not self._stopping:
            try:
                index, current = self._registry.wait_prefix(prefix, index, wait=self._wait)
            except StrongroomError as exc:
                log.warning("watch on %s failed: %s", prefix, exc)
                index = 0
                time.sleep(0.2)
                continue
            metrics.inc(answers)
            if seen is not None:
                changed = diff(seen, current)
                if changed:
                    try:
                        if name is None:
                            self._keyring_changed()
                        else:
                            self._publish(sorted({name(k) for k in changed}))
                    except Exception:
                        log.exception("applying a change of %s failed", prefix)
            seen = current
