"""The ``X-Vault-Index`` a request carries, for the caches below the barrier.

A performance standby serves a cached read only once its change follower has
applied the log up to the index the request carries (storage/changes.py); a
request carrying a newer index reads storage instead, which answers with
every acknowledged write.  The API layer sets it for each request before
running it on a standby; a context variable keeps it per greenlet (gevent
workers run one request per greenlet, each with its own context).
"""

from __future__ import annotations

from contextvars import ContextVar

_required: ContextVar[int] = ContextVar("strongroom_required_index", default=0)


def require_index(index: int) -> None:
    """The request being handled must see storage at ``index`` or later (0: any)."""
    _required.set(index)


def required_index() -> int:
    """The index the request being handled carries (0: none)."""
    return _required.get()
