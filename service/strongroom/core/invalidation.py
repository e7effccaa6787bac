"""Watching the keys behind cached tables, so every node's caches follow the active node.

Each worker caches the mount tables, policies and audit devices; the node core
watches the storage keys behind them with Consul blocking queries and pushes the
names of what changed to its workers.  It watches the keys themselves (their
modify indexes), not a shared "changed" marker, so two writers at once can never
hide each other's invalidation.  A keyring change (``sys/rotate`` on the active
node) makes the node core re-read the keyring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from strongroom.errors import StrongroomError
from strongroom.storage import PrefixWatch

log = logging.getLogger("strongroom.invalidation")

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
        while not self._stopping:
            try:
                index, current = self._registry.wait_prefix(prefix, index, wait=self._wait)
            except StrongroomError as exc:
                log.warning("watch on %s failed: %s", prefix, exc)
                index = 0
                time.sleep(0.2)
                continue
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
