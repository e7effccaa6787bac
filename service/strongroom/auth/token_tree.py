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

from typing import Callable, TypeVar

from strongroom.auth.token_entry import REVOCATION_PENDING, TokenEntry
from strongroom.auth.token_records import TokenRecords

T = TypeVar("T")


class TokenTree:
    """Liveness and revocation over ``records``, for the ``TokenStore``.

    ``now()`` is the current unix time; ``retry(attempt)`` runs a
    read-modify-write until it commits without a ``WriteConflict``.
    """

    def __init__(self, records: TokenRecords, now: Callable[[], float], retry: Callable[[Callable[[], T]], T]):
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
        entry, index = self._records.load_with_index(id_hash)
        if entry is None or entry.num_uses < 0:
            return None, 0
        now = self._now()
        if entry.expired(now):
            self.revoke(id_hash)
            return None, 0
        seen = {id_hash}
        ancestor_hash = entry.parent
        while ancestor_hash:
            if ancestor_hash in seen:  # a corrupted, cyclic chain
                return None, 0
            seen.add(ancestor_hash)
            ancestor = self._records.load(ancestor_hash)
            if ancestor is None:
                # The parent is gone but its child is not: a revocation raced with
                # this child's creation.  Fail closed.
                self.revoke(id_hash)
                return None, 0
            if ancestor.num_uses < 0:
                return None, 0
            if ancestor.expired(now):
                self.revoke(ancestor_hash)
                return None, 0
            ancestor_hash = ancestor.parent
        return entry, index

    def mark_pending(self, id_hash: str) -> TokenEntry | None:
        """Mark the entry pending revocation (unusable from then on); returns it, or
        None when there is no such entry.  Checked, so that it can neither be undone
        by a concurrent use or renewal nor re-create an entry deleted meanwhile."""

        def attempt() -> TokenEntry | None:
            entry, index = self._records.load_with_index(id_hash)
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

    def revoke(self, root_hash: str) -> None:
        """Revoke a token and its descendants: depth first, leaves before their
        parent, one transaction per token."""
        root = self.mark_pending(root_hash)
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
                self._records.delete(id_hash, parent_hash)
                stack.pop()
