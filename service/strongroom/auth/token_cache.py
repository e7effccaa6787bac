"""Live client tokens kept per process, used only while storage says nothing changed.

https://developer.hashicorp.com/vault/docs/concepts/tokens

Every request looks its token up: an HMAC of the id, a read and a copy of its
entry, the same for each ancestor (a child token is live only while its
parents are), the expiry checks.  ``LiveTokens`` keeps the outcome of a
lookup that found a live token, and a later lookup of the same token uses it
only while

* the storage cache says none of the records it was built from (the entry and
  every ancestor's) has been written since it was read, nor is being written,
  and the node is still in the same active epoch with its lease
  (``CachedBackend.unchanged``: the rules of the storage cache itself, so a
  revocation, a renewal or an orphaning by any process of the node is seen
  by the next request), and
* the earliest expiry among the token and its ancestors has not been reached
  (the lookup that finds it expired goes to storage and revokes it).

Tokens with a use limit are never kept: each use is a checked write that must
see the stored count.  Without a storage cache (in-memory storage, a cache of
size 0, no active epoch) nothing is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from strongroom.auth.token_entry import TokenEntry


class Freshness(Protocol):
    """What the storage cache answers about keys read through it (``storage.cache.CachedBackend``)."""

    def stamp(self) -> tuple[int, int] | None:
        """Taken before the reads; None: keep nothing."""
        ...

    def unchanged(self, keys: Sequence[str], stamp: tuple[int, int]) -> bool:
        """Whether no write touched ``keys`` since ``stamp`` (and the cache would still serve them)."""
        ...


@dataclass(frozen=True, slots=True)
class _Live:
    stamp: tuple[int, int]
    keys: tuple[str, ...]
    entry: TokenEntry  # never handed out: callers get copies
    index: int
    until: float  # the earliest expiry of the token and its ancestors (inf: none)


class LiveTokens:
    """Client token id -> its live entry, for one process (see the module docstring).

    ``freshness`` is the storage cache the token records are read through (None:
    keep nothing); ``key_of(id_hash)`` is the storage key of a token's record,
    as that cache sees it."""

    #: Tokens kept; past this the table starts again empty.
    MAX = 4096

    def __init__(self, freshness: Freshness | None, key_of: Callable[[str], str]) -> None:
        self._freshness = freshness
        self._key_of = key_of
        self._live: dict[str, _Live] = {}

    def stamp(self) -> tuple[int, int] | None:
        """To take before a lookup reads storage; None: its outcome will not be kept."""
        return self._freshness.stamp() if self._freshness is not None else None

    def get(self, token_id: str, now: float) -> tuple[TokenEntry, int] | None:
        """The kept entry (not a copy: the caller copies) and its modify index, if still valid at ``now``."""
        live = self._live.get(token_id)
        if live is None:
            return None
        if now >= live.until or self._freshness is None or not self._freshness.unchanged(live.keys, live.stamp):
            self._live.pop(token_id, None)
            return None
        return live.entry, live.index

    def put(
        self,
        token_id: str,
        stamp: tuple[int, int] | None,
        entry: TokenEntry,
        index: int,
        ancestors: Sequence[TokenEntry],
    ) -> None:
        """Keep a lookup's outcome: ``entry`` (a copy of the caller's, taken now) found live with its
        ``ancestors``, every record read after ``stamp``.  Limited-use tokens are not kept."""
        if stamp is None or entry.num_uses != 0 or not entry.salted_id:
            return
        chain = (entry, *ancestors)
        expiries = [e.expire_at for e in chain if e.expire_at is not None]
        live = _Live(
            stamp=stamp,
            keys=tuple(self._key_of(e.salted_id) for e in chain),
            entry=entry,
            index=index,
            until=min(expiries) if expiries else math.inf,
        )
        if len(self._live) >= self.MAX:
            self._live = {}
        self._live[token_id] = live

    def forget(self, token_id: str) -> None:
        """Drop one token (this process revoked or changed it)."""
        self._live.pop(token_id, None)

    def clear(self) -> None:
        """Drop everything (the keyring changed: sealed, or unsealed again)."""
        self._live = {}
