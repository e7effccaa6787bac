"""The revocation tree: which stored tokens may be used, and revoking a token
with every token it created.

https://developer.hashicorp.com/vault/docs/concepts/tokens#token-hierarchies-and-orphan-tokens

A tree is revoked leaf first, one token per transaction (Consul caps a
transaction at 64 operations), after marking its root as pending revocation; a
token whose ancestor is pending, expired or missing is refused, so an
interrupted revocation never leaves a usable child.  Expiry is lazy: checking a
token revokes it (with its tree) when it has expired.

Marking pending and orphaning a child are read-modify-writes checked against the
entry's modify index and retried on ``WriteConflict`` (the ``retry`` the store
passes in), so that neither can undo a concurrent change nor re-create an entry
deleted meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from strongroom.auth.token_entry import REVOCATION_PENDING, TokenEntry
from strongroom.auth.token_records import TokenRecords

T = TypeVar("T")

# Verdicts of ``TokenTree.judge``.
#: Usable.
LIVE = "live"
#: Expired, or under a missing ancestor: revoked (with its tree) by the judging.
REVOKED = "revoked"
#: Pending revocation, under a pending ancestor, or in a cyclic chain: unusable, left as stored.
DEAD = "dead"
#: An ancestor had expired and was revoked with its tree, which normally took the entry with it.
ANCESTOR_REVOKED = "ancestor revoked"


class Retry(Protocol):
    """Runs ``attempt`` (a read-modify-write) until it commits without a ``WriteConflict``."""

    def __call__(self, attempt: Callable[[], T]) -> T: ...


class TokenTree:
    """Liveness and revocation over ``records``, for the ``TokenStore``.

    ``now()`` is the current unix time; ``retry(attempt)`` runs a
    read-modify-write until it commits without a ``WriteConflict``.
    """

    def __init__(self, records: TokenRecords, now: Callable[[], float], retry: Retry) -> None:
        self._records = records
        self._now = now
        self._retry = retry

    def live(self, id_hash: str) -> TokenEntry | None:
        """The entry if it may be used: present, not pending, not expired, and every
        ancestor likewise.  Expired tokens (and tokens under a missing ancestor)
        are revoked here."""
        return self.live_with_index(id_hash)[0]

    def live_with_index(self, id_hash: str) -> tuple[TokenEntry | None, int]:
        """``live`` and the entry's modify index, for a checked write of the entry."""
        entry, index, _ = self.live_chain(id_hash)
        return entry, index

    def live_chain(self, id_hash: str) -> tuple[TokenEntry | None, int, list[TokenEntry]]:
        """``live_with_index`` and the ancestors read to judge it, parent first
        (what a kept lookup depends on: auth/token_cache.py)."""
        entry, index = self._records.load_with_index(id_hash)
        if entry is None:
            return None, 0, []
        ancestors: list[TokenEntry] = []

        def load(ancestor_hash: str) -> TokenEntry | None:
            ancestor = self._records.load(ancestor_hash)
            if ancestor is not None:
                ancestors.append(ancestor)
            return ancestor

        if self.judge(id_hash, entry, index, load) is not LIVE:
            return None, 0, []
        return entry, index, ancestors

    def judge(self, id_hash: str, entry: TokenEntry, index: int, load: Callable[[str], TokenEntry | None]) -> str:
        """Whether the stored ``entry`` (just read, with its modify ``index``) may be
        used: ``LIVE``, ``REVOKED``, ``DEAD`` or ``ANCESTOR_REVOKED`` (see their
        comments).  ``load(id_hash)`` reads an ancestor; the entry itself is not
        read again."""
        if entry.num_uses < 0:
            return DEAD
        now = self._now()
        if entry.expired(now):
            self.revoke(id_hash, (entry, index))
            return REVOKED
        seen = {id_hash}
        ancestor_hash = entry.parent
        while ancestor_hash:
            if ancestor_hash in seen:  # a corrupted, cyclic chain
                return DEAD
            seen.add(ancestor_hash)
            ancestor = load(ancestor_hash)
            if ancestor is None:
                # The parent is gone but its child is not: a revocation raced with
                # this child's creation.  Fail closed.
                self.revoke(id_hash, (entry, index))
                return REVOKED
            if ancestor.num_uses < 0:
                return DEAD
            if ancestor.expired(now):
                self.revoke(ancestor_hash)
                return ANCESTOR_REVOKED
            ancestor_hash = ancestor.parent
        return LIVE

    def mark_pending(self, id_hash: str, read: tuple[TokenEntry | None, int] | None = None) -> TokenEntry | None:
        """Mark the entry pending revocation (unusable from then on); returns it, or
        None when there is no such entry.  Checked, so that it can neither be undone
        by a concurrent use or renewal nor re-create an entry deleted meanwhile.

        ``read`` is ``(entry, modify index)`` as the caller has just read them
        (``load_with_index``): the first attempt writes on that read instead of
        reading again (the check makes that safe), a retry reads afresh."""
        reads = [read] if read is not None else []

        def attempt() -> TokenEntry | None:
            entry, index = reads.pop() if reads else self._records.load_with_index(id_hash)
            if entry is not None and entry.num_uses != REVOCATION_PENDING:
                entry.num_uses = REVOCATION_PENDING
                self._records.store_checked(entry, index)
            return entry

        return self._retry(attempt)

    def orphan(self, salt: bytes, parent_hash: str, child_hash: str) -> None:
        """Detach a child from its revoked parent (``revoke-orphan``), checked
        against concurrent changes of the child."""

        def attempt() -> None:
            child, index = self._records.load_with_index(child_hash)
            if child is None:
                self._records.unlink(parent_hash, child_hash)
                return
            child.parent = ""
            self._records.store_orphaned(salt, child, index, parent_hash)

        self._retry(attempt)

    def revoke(self, root_hash: str, read: tuple[TokenEntry | None, int] | None = None) -> None:
        """Revoke a token and its descendants: depth first, leaves before their
        parent, one transaction per token.  ``read`` is the root's entry and modify
        index if the caller has just read them (see ``mark_pending``)."""
        root = self.mark_pending(root_hash, read)
        stack = [(root_hash, root.parent if root is not None else "")]
        seen = {root_hash}
        while stack:
            id_hash, parent_hash = stack[-1]
            fresh = []
            for child_hash in self._records.children(id_hash):
                if child_hash in seen:
                    self._records.unlink(id_hash, child_hash)
                else:
                    seen.add(child_hash)
                    fresh.append((child_hash, id_hash))
            if fresh:
                stack.extend(fresh)
            else:
                # The root as marked pending needs no second read: once pending,
                # an entry changes only by being orphaned (parent "", its link
                # deleted with it) or deleted, and deleting what is gone is harmless.
                self._records.delete(id_hash, parent_hash, root if id_hash == root_hash else None)
                stack.pop()
