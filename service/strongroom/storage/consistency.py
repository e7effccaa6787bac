"""The ``X-Vault-Index`` a request carries, for the caches below the barrier.

A performance standby serves a cached read only once its change follower has
applied the log up to the index the request carries (storage/changes.py); a
request carrying a newer index reads storage instead, which answers with
every acknowledged write.  The API layer sets it for each request before
running it on a standby; a context variable keeps it per greenlet (gevent
workers run one request per greenlet, each with its own context).

Beside it, the commit index of the request's last write, which the active
node returns as ``X-Vault-Index`` for every request that wrote (Vault's
engines set it for their own writes; a token revocation writes through the
token store, which sets none).
"""

from __future__ import annotations

from contextvars import ContextVar

_required: ContextVar[int] = ContextVar("strongroom_required_index", default=0)
_written: ContextVar[int] = ContextVar("strongroom_written_index", default=0)


def require_index(index: int) -> None:
    """The request being handled must see storage at ``index`` or later (0: any)."""
    _required.set(index)


def required_index() -> int:
    """The index the request being handled carries (0: none)."""
    return _required.get()


def track_writes() -> None:
    """A new request begins: no write of it yet."""
    _written.set(0)


def note_write(index: int) -> None:
    """Storage committed a write of the request being handled at ``index``."""
    if index > _written.get():
        _written.set(index)


def last_write_index() -> int:
    """The highest commit index of the request's writes since ``track_writes`` (0: none)."""
    return _written.get()
