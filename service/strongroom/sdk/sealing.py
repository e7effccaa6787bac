"""What a backend forgets when its node seals (Vault tears its mounts down at a seal).

A backend that keeps key material outside its engine objects (a per-process
cache of loaded private keys, say) registers a function here; the core calls
every one when the node's keyring goes away, after dropping its engines, so a
sealed process holds no backend's keys until the next unseal brings them back
from storage."""

from __future__ import annotations

import threading
from collections.abc import Callable

_forgetters: list[Callable[[], None]] = []
_lock = threading.Lock()


def on_seal(forget: Callable[[], None]) -> Callable[[], None]:
    """Call ``forget`` whenever the node seals (usable as a decorator)."""
    with _lock:
        if forget not in _forgetters:
            _forgetters.append(forget)
    return forget


def sealed() -> None:
    """The node sealed: every registered ``forget`` runs."""
    with _lock:
        forgetters = list(_forgetters)
    for forget in forgetters:
        forget()
