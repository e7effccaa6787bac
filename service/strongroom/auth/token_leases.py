"""Tokens seen as leases: the only leases Strongroom issues.

https://developer.hashicorp.com/vault/docs/concepts/lease
https://developer.hashicorp.com/vault/api-docs/system/leases

Strongroom's engines (KV, transit) issue no leases; every token with a TTL is
one, as in Vault, whose expiration manager registers a lease for each such
token under ``<creation path>/<salted token id>``
(``auth/token/create/<hash>``, ``auth/userpass/login/alice/<hash>``,
``auth/token/create/<role>/<suffix>/<hash>``).  A token that never expires
(a root token without TTL) has no lease.  The salted id is the storage key of
the token (``token_records.py``), never the token: knowing it lets a caller
with the right policy look the lease up or revoke it, not use the token.

There is no lease table: the token entries are the leases, so a lease can
never outlive or disagree with its token.  Listing and revoking by prefix walk
every stored token (two reads each): operator actions, not per-request work.
"""

from __future__ import annotations

from typing import Any

from strongroom.auth.token_entry import TokenEntry
from strongroom.auth.token_store import TokenStore
from strongroom.timefmt import rfc3339_timestamp


def lease_id(entry: TokenEntry) -> str | None:
    """The lease id of a token entry (stored, so with its salted id); None when it never expires."""
    if entry.expire_at is None or not entry.salted_id:
        return None
    return f"{entry.path}/{entry.salted_id}"


class TokenLeases:
    """The leases of the tokens in ``store``: look up, list, revoke."""

    def __init__(self, store: TokenStore):
        self._store = store

    def entry(self, lease: str) -> TokenEntry | None:
        """The live token whose lease id is ``lease``, or None."""
        path, _, id_hash = lease.rpartition("/")
        entry = self._store.lookup_salted(id_hash)
        if entry is None or lease_id(entry) != lease or entry.path != path:
            return None
        return entry

    def lookup(self, lease: str) -> dict[str, Any] | None:
        """``sys/leases/lookup``'s data for the lease, or None when there is no such lease."""
        entry = self.entry(lease)
        if entry is None or entry.expire_at is None:
            return None
        now = self._store.clock().timestamp()
        return {
            "expire_time": rfc3339_timestamp(entry.expire_at),
            "id": lease,
            "issue_time": rfc3339_timestamp(entry.issue_time),
            "last_renewal": None if entry.last_renewal is None else rfc3339_timestamp(entry.last_renewal),
            "path": entry.path,
            "renewable": entry.renewable and not entry.expired(now),
            "ttl": max(0, int(entry.expire_at - now)),
        }

    def keys(self, prefix: str) -> list[str]:
        """The lease ids and folders directly under ``prefix`` (``LIST sys/leases/lookup/<prefix>``),
        sorted; a prefix without its trailing slash is the folder of that name."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        found: set[str] = set()
        for entry in self._store.live_entries():
            lease = lease_id(entry)
            if lease is None or not lease.startswith(prefix):
                continue
            head, slash, _ = lease[len(prefix) :].partition("/")
            found.add(head + slash)
        return sorted(found)

    def revoke(self, lease: str, *, settle: bool = True) -> bool:
        """Revoke the token of ``lease`` and its children (``sys/leases/revoke``); False if there is none.
        ``settle`` False: the caller revokes more and settles once (``TokenStore.settle``)."""
        entry = self.entry(lease)
        return entry is not None and self._store.revoke_salted(entry.salted_id, settle=settle)

    def revoke_prefix(self, prefix: str) -> int:
        """Revoke every lease under ``prefix`` (one lease when it names one exactly), with the
        tokens' children (``sys/leases/revoke-prefix``); how many leases were revoked."""
        if not prefix.endswith("/"):
            if self.revoke(prefix):
                return 1
            prefix += "/"
        leases = [lease for entry in self._store.live_entries() if (lease := lease_id(entry)) is not None]
        # Revoking a parent revokes its children: those still live when reached count once, as themselves.
        revoked = sum(1 for lease in leases if lease.startswith(prefix) and self.revoke(lease, settle=False))
        if revoked:
            self._store.settle()
        return revoked
