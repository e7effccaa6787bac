"""The token store: Vault's service tokens, kept only by salted hash.

https://developer.hashicorp.com/vault/docs/concepts/tokens
https://developer.hashicorp.com/vault/api-docs/auth/token

The store is the one entry point for tokens: creation, lookup, use counts,
renewal, revocation and tidying.  It delegates what a token is (``TokenEntry``,
id rules, TTL arithmetic) to ``token_entry.py``, how it is laid out in storage
(salted keys, the sealed accessor, the encoding) to ``token_records.py``, and
liveness through ancestors and leaf-first revocation of a tree to
``token_tree.py``.  The token id is never stored: it is returned once, at
creation, and found again only by hashing what a client presents.

Every change that touches several keys is one transaction.  A token whose
ancestor is pending, expired or missing is refused, so an interrupted revocation
never leaves a usable child.  Expiry is lazy: ``lookup`` revokes an expired
token (with its tree) when it meets one, and ``tidy`` sweeps those nobody looks
up.

Besides the salt, which never changes once written, a process keeps the
outcome of looking up a live token with no use limit (``token_cache.py``) and
uses it only while the storage cache says none of the records it rests on was
written since: a revocation made by another worker is seen at once.  Every
other read goes to the view.

Several worker processes (and nodes) share the view and no lock, so every
read-modify-write of an entry (spending a use, renewing, marking a revocation
pending, orphaning a child) is optimistic: the entry is read with its modify
index and written back with a ``check-index`` on it; on ``WriteConflict`` the
cycle starts again from the read, a bounded number of times.  Two processes can
therefore never spend the same use, and a write based on a stale read can never
undo a revocation or resurrect a deleted entry.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TypeVar

from strongroom.auth.token_cache import Freshness, LiveTokens
from strongroom.auth.token_entry import (
    DEFAULT_TTL,
    REVOCATION_PENDING,
    SERVICE_TOKEN_PREFIX,
    TOKEN_LENGTH,
    TokenEntry,
    calculate_ttl,
    check_custom_id,
    random_base62,
    sanitize_policies,
)
from strongroom.auth.token_records import ID_PREFIX, TokenRecords, copy_entry, salted_hash
from strongroom.auth.token_tree import ANCESTOR_REVOKED, DEAD, LIVE, TokenTree
from strongroom.errors import InvalidRequest
from strongroom.storage import Backend, WriteConflict
from strongroom.storage.retry import MAX_ATTEMPTS, PATIENCE, RETRY_DELAY, retry_on_conflict

T = TypeVar("T")


class TokenStore:
    """Service tokens over a storage view (the barrier view ``sys/token/``).

    ``view`` offers get/get_with_index/put/delete/delete_prefix/list/txn (with
    checks) over str keys and bytes values; ``clock()`` returns an aware UTC
    datetime; ``randbytes(n)`` is the randomness for ids, accessors, the salt,
    nonces and the jitter between retries; ``sleep(seconds)`` pauses between
    retries.  ``default_ttl`` and ``max_ttl`` are the system lease TTLs (Vault's
    768h).  ``freshness`` is the storage cache under ``view`` (None: no lookup is
    kept) and ``storage_prefix`` the view's prefix in it (``sys/token/``).
    ``settle`` is how long a revocation waits after its last commit before it
    returns, so that no performance standby still accepts the token when the
    client hears of it (storage/changes.py ``SETTLE``; 0: no standby follows).
    Safe to share between threads, and any number of stores (processes,
    nodes) may share one view: limited-use accounting is exact across all of
    them (see ``use``).
    """

    def __init__(
        self,
        view: Backend,
        clock: Callable[[], datetime],
        randbytes: Callable[[int], bytes] = os.urandom,
        default_ttl: int = DEFAULT_TTL,
        max_ttl: int = DEFAULT_TTL,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
        patience: float = PATIENCE,
        freshness: Freshness | None = None,
        storage_prefix: str = "",
        settle: float = 0.0,
    ) -> None:
        self._settle = settle
        self._records = TokenRecords(view, randbytes)
        self._live_tokens = LiveTokens(freshness, lambda id_hash: storage_prefix + ID_PREFIX + id_hash)
        #: The store's storage view; the token roles live beside the tokens in it (``roles/``).
        self.view = view
        self.clock = clock
        self._randbytes = randbytes
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._patience = patience
        self.default_ttl = int(default_ttl)
        self.max_ttl = int(max_ttl)
        self._lock = threading.RLock()
        self._tree = TokenTree(self._records, self._now, self._retry)

    # --- creation --------------------------------------------------------------

    def create_root(
        self, policies: Iterable[str] = ("root",), display_name: str = "root", ttl: int = 0, token_id: str | None = None
    ) -> tuple[str, TokenEntry]:
        """A root token with no parent (``sys/init``, ``sys/generate-root``, ``-dev``).

        ``token_id`` chooses the id (``-dev-root-token-id``); otherwise a random
        ``hvs.`` id is generated.  ``ttl`` 0 means it never expires."""
        return self.create(
            policies=policies,
            add_default=False,
            path="auth/token/root",
            display_name=display_name,
            ttl=ttl,
            renewable=ttl > 0,
            token_id=token_id,
        )

    def create(
        self,
        *,
        policies: Iterable[str],
        add_default: bool = True,
        parent: TokenEntry | None = None,
        path: str = "auth/token/create",
        meta: dict[str, str] | None = None,
        display_name: str = "token",
        num_uses: int = 0,
        ttl: int = 0,
        explicit_max_ttl: int = 0,
        period: int = 0,
        renewable: bool = True,
        token_id: str | None = None,
        role: str = "",
    ) -> tuple[str, TokenEntry]:
        """Persist a new service token and return ``(token_id, entry)``.

        https://developer.hashicorp.com/vault/api-docs/auth/token#create-token

        The caller has decided everything: ``policies`` are sanitised (``default``
        added when ``add_default``), ``ttl`` is final (see ``plan_ttl``; 0 never
        expires), ``parent`` None makes an orphan.  A chosen ``token_id`` must be
        new and may not look like a generated one (Vault's rules)."""
        if token_id:
            check_custom_id(token_id)
        with self._lock:
            salt = self._records.salt(create=True)
        generated = not token_id
        if not token_id:
            token_id = SERVICE_TOKEN_PREFIX + random_base62(self._randbytes, TOKEN_LENGTH)
        id_hash = salted_hash(salt, token_id)
        if not generated and self._records.exists(id_hash):
            raise InvalidRequest("cannot create a token with a duplicate ID")
        parent_hash = ""
        if parent is not None:
            parent_hash = parent.salted_id
            if not parent_hash or self._tree.live(parent_hash) is None:
                raise InvalidRequest("parent token not found")
        now = self._now()
        ttl = int(ttl)
        entry = TokenEntry(
            id=token_id,
            accessor=random_base62(self._randbytes, TOKEN_LENGTH),
            policies=sanitize_policies(policies, add_default),
            parent=parent_hash,
            path=path,
            meta=dict(meta) if meta is not None else None,
            display_name=display_name,
            num_uses=int(num_uses),
            creation_time=int(now),
            ttl=ttl,
            explicit_max_ttl=int(explicit_max_ttl),
            period=int(period),
            renewable=bool(renewable) and ttl > 0,
            role=role,
            issue_time=now,
            expire_at=now + ttl if ttl else None,
            lease_ttl=ttl,
            salted_id=id_hash,
        )
        try:
            self._records.insert(salt, entry)
        except WriteConflict:
            raise InvalidRequest("cannot create a token with a duplicate ID") from None
        return token_id, entry

    def plan_ttl(
        self,
        *,
        ttl: int = 0,
        period: int = 0,
        explicit_max_ttl: int = 0,
        increment: int = 0,
        start: float | None = None,
        now: float | None = None,
    ) -> tuple[int, list[str]]:
        """Vault's ``framework.CalculateTTL`` for a token under this store's default
        and max TTLs: the TTL to grant and the warnings to show (``calculate_ttl``).
        ``start`` is the issue time and ``now`` the current time, both from the
        store's clock when omitted."""
        now = self._now() if now is None else now
        start = now if start is None else start
        return calculate_ttl(
            now=now,
            start=start,
            default_ttl=self.default_ttl,
            max_ttl=self.max_ttl,
            ttl=ttl,
            period=period,
            explicit_max_ttl=explicit_max_ttl,
            increment=increment,
        )

    # --- lookup ----------------------------------------------------------------

    def forget_decoded(self) -> None:
        """Drop the entries kept decoded (the keyring changed: sealed, or unsealed again)."""
        self._records.forget_decoded()
        self._live_tokens.clear()

    def lookup(self, token_id: str) -> TokenEntry | None:
        """The entry for a client token, or None when it is unknown, expired,
        revoked or pending revocation (an expired token is revoked, with its
        children, on the way).  The returned entry carries ``id``, and is the
        caller's own.  A live token without a use limit looked up before by this
        process costs a dictionary hit and a check of the coherence table while
        its records are unchanged (see ``token_cache``)."""
        if not token_id or not isinstance(token_id, str):
            return None
        kept = self._live_tokens.get(token_id, self._now())
        if kept is not None:
            entry = copy_entry(kept[0])
        else:
            stamp = self._live_tokens.stamp()  # before the reads the outcome rests on
            salt = self._records.salt()
            if salt is None:
                return None
            found, index, ancestors = self._tree.live_chain(salted_hash(salt, token_id))
            if found is None:
                return None
            self._live_tokens.put(token_id, stamp, copy_entry(found), index, ancestors)
            entry = found
        entry.id = token_id
        return entry

    def lookup_accessor(self, accessor: str) -> TokenEntry | None:
        """The entry behind an accessor (``id`` left empty), or None as for ``lookup``."""
        if not accessor or not isinstance(accessor, str):
            return None
        salt = self._records.salt()
        if salt is None:
            return None
        id_hash = self._records.id_hash_of_accessor(salt, accessor)
        if id_hash is None:
            return None
        entry = self._tree.live(id_hash)
        if entry is None or entry.accessor != accessor:
            return None
        return entry

    def lookup_salted(self, id_hash: str) -> TokenEntry | None:
        """The entry stored under a salted id (a lease id's last segment), ``id``
        left empty, or None as for ``lookup``."""
        if len(id_hash) != len(salted_hash(b"", "")) or not all(c in "0123456789abcdef" for c in id_hash):
            return None  # never a storage key built from whatever a client sent
        return self._tree.live(id_hash)

    def refresh(self, entry: TokenEntry) -> TokenEntry | None:
        """The current stored state of ``entry`` (same rules as ``lookup``), keeping its id."""
        fresh = self._tree.live(entry.salted_id) if entry.salted_id else None
        if fresh is not None:
            fresh.id = entry.id
        return fresh

    def list_accessors(self) -> list[str]:
        """Accessors of every live token (``LIST auth/token/accessors``), in storage order."""
        salt = self._records.salt()
        if salt is None:
            return []
        now = self._now()
        out = []
        for key, index in self._records.accessor_index():
            entry = self._records.load(index["id_hash"])
            if entry is None or entry.num_uses < 0 or entry.expired(now):
                continue
            out.append(self._records.open_accessor(salt, key, index["accessor"]))
        return out

    def live_entries(self) -> Iterator[TokenEntry]:
        """Every stored token that is neither expired nor pending revocation, in
        storage order, read as the iteration reaches it (the usage gauges'
        walk: two reads per token, so now and then, never per request)."""
        if self._records.salt() is None:
            return
        now = self._now()
        for _, index in self._records.accessor_index():
            entry = self._records.load(index["id_hash"])
            if entry is not None and entry.num_uses >= 0 and not entry.expired(now):
                yield entry

    # --- use, renew ------------------------------------------------------------

    def use(self, entry: TokenEntry) -> TokenEntry | None:
        """Count one use of a limited-use token (Vault's ``UseToken``).

        Unlimited tokens are returned as they are.  Otherwise the stored count is
        decremented; on the last use the token (and its tree) is revoked at once
        and the entry comes back with ``num_uses == REVOCATION_PENDING``, so the
        request that spends the last use still runs.  ``entry`` is updated in
        place as well.  None means the token is gone or used up: refuse the
        request.

        The decrement is written with a check on the entry's modify index and
        retried on conflict, so however many processes race, each stored use is
        granted exactly once.  The last use is claimed by that checked write
        (the entry becomes pending) before the tree is revoked: exactly one
        racer wins it, and a failure while revoking leaves the token pending,
        never usable (``tidy`` finishes the revocation)."""
        if entry.num_uses == 0:
            return entry
        if entry.num_uses < 0:
            return None

        def attempt() -> TokenEntry | None:
            fresh, index = self._tree.live_with_index(entry.salted_id)
            if fresh is None or fresh.num_uses <= 0:
                return None
            fresh.num_uses = REVOCATION_PENDING if fresh.num_uses == 1 else fresh.num_uses - 1
            self._records.store_checked(fresh, index)
            return fresh

        with self._lock:
            fresh = self._retry(attempt)
            if fresh is not None and fresh.num_uses == REVOCATION_PENDING:
                self._tree.revoke(fresh.salted_id)
        if fresh is None:
            return None
        fresh.id = entry.id
        entry.num_uses = fresh.num_uses
        return fresh

    def renew(self, entry: TokenEntry, increment: int = 0) -> tuple[TokenEntry, list[str]]:
        """Extend a token's lease (Vault's ``ExpirationManager.RenewToken``); returns
        the renewed entry and warnings.

        https://developer.hashicorp.com/vault/api-docs/auth/token#renew-a-token

        Without ``increment`` the token gets its last granted TTL again; a periodic
        token always gets its period.  Capped by ``plan_ttl``.  Raises
        ``InvalidRequest`` "token not found" or "lease is not renewable"."""

        def attempt() -> tuple[TokenEntry, list[str]]:
            fresh, index = self._tree.live_with_index(entry.salted_id) if entry.salted_id else (None, 0)
            if fresh is None:
                raise InvalidRequest("token not found")
            if fresh.expire_at is None or not fresh.renewable:
                raise InvalidRequest("lease is not renewable")
            now = self._now()
            ttl, warnings = self.plan_ttl(
                ttl=fresh.lease_ttl,
                period=fresh.period,
                explicit_max_ttl=fresh.explicit_max_ttl,
                increment=int(increment),
                start=fresh.issue_time,
                now=now,
            )
            fresh.lease_ttl = ttl
            fresh.expire_at = now + ttl
            fresh.last_renewal = now
            # Checked: a renewal based on a stale read would give back spent
            # uses or undo a pending revocation.
            self._records.store_checked(fresh, index)
            return fresh, warnings

        with self._lock:
            fresh, warnings = self._retry(attempt)
        fresh.id = entry.id
        return fresh, warnings

    # --- revocation --------------------------------------------------------------

    def revoke(self, token_id: str) -> bool:
        """Revoke a token and, recursively, every token it created.  False if unknown."""
        salt = self._records.salt()
        if not token_id or salt is None:
            return False
        id_hash = salted_hash(salt, token_id)
        if self._records.load(id_hash) is None:
            return False
        self._tree.revoke(id_hash)
        self.settle()
        return True

    def revoke_live(self, token_id: str) -> bool:
        """Revoke a token and its tree if ``lookup`` would find it (``auth/token/revoke``),
        reading its entry once.  False when it would not: nothing is done beyond
        what ``lookup`` does (an expired token is revoked, a pending one left)."""
        entry, index = self._live(token_id)
        if entry is None:
            return False
        self._tree.revoke(entry.salted_id, (entry, index))
        self.settle()
        return True

    def revoke_salted(self, id_hash: str, *, settle: bool = True) -> bool:
        """Revoke (tree) the live token stored under a salted id.  False if there is none.
        ``settle`` False: the caller revokes more and calls ``settle()`` once at the end."""
        entry = self.lookup_salted(id_hash)
        if entry is None:
            return False
        self._tree.revoke(entry.salted_id)
        if settle:
            self.settle()
        return True

    def revoke_accessor(self, accessor: str) -> bool:
        """Revoke (tree) the token behind an accessor.  False if there is no live one."""
        entry = self.lookup_accessor(accessor)
        if entry is None:
            return False
        self._tree.revoke(entry.salted_id)
        self.settle()
        return True

    def revoke_under_path(self, prefix: str) -> int:
        """Revoke (tree) every live token created at a path under ``prefix``
        (``auth/userpass/``): what disabling an auth method does in Vault
        (``RevokePrefix``), so no token of a removed method outlives it.  The
        number of tokens revoked."""
        revoked = 0
        for _, index in self._records.accessor_index():
            entry = self._records.load(index["id_hash"])
            if entry is not None and entry.num_uses >= 0 and entry.path.startswith(prefix):
                self._tree.revoke(entry.salted_id)
                revoked += 1
        if revoked:
            self.settle()
        return revoked

    def revoke_orphan(self, token_id: str) -> bool:
        """Revoke a token but keep its children, which become orphans
        (``auth/token/revoke-orphan``), reading its entry once.  False when
        ``lookup`` would not find it: nothing is done beyond what ``lookup``
        does.  True also when a concurrent revocation removed it first."""
        entry, index = self._live(token_id)
        if entry is None:
            return False
        id_hash = entry.salted_id
        marked = self._tree.mark_pending(id_hash, (entry, index))
        if marked is not None:
            salt = self._records.existing_salt()
            children = self._records.children(id_hash)
            for child_hash in children:
                self._tree.orphan(salt, id_hash, child_hash)
            # Listed as its own child (a corrupted tree), it was just orphaned: read it again.
            self._records.delete(id_hash, "", None if id_hash in children else marked)
        self.settle()
        return True

    def settle(self) -> None:
        """Wait until no performance standby can still serve a token this
        process revoked from its cache (``settle`` seconds; see the class)."""
        if self._settle > 0:
            self._sleep(self._settle)

    def tidy(self) -> int:
        """Revoke expired tokens nobody looked up, finish interrupted revocations
        and drop dangling index entries (Vault's ``auth/token/tidy``); returns how
        many dead tokens it found.  Reads every entry: run it now and then, not per
        request.

        Each pass reads an entry once, whether for itself or as an ancestor of
        others, until it changes something: what it read may then be stale, so
        it reads again from there on."""
        revoked = 0
        reads: dict[str, tuple[TokenEntry | None, int]] = {}

        def read(id_hash: str) -> tuple[TokenEntry | None, int]:
            if id_hash not in reads:
                reads[id_hash] = self._records.load_with_index(id_hash)
            return reads[id_hash]

        for key, index in self._records.accessor_index():
            id_hash = index["id_hash"]
            entry, modify_index = read(id_hash)
            if entry is None:
                self._records.drop_accessor_index(key)
                continue
            verdict = self._tree.judge(id_hash, entry, modify_index, lambda ancestor: read(ancestor)[0])
            if verdict is LIVE:
                continue
            reads.clear()
            if verdict is DEAD:
                # Left pending by an interrupted revocation, or under such a token.
                self._tree.revoke(id_hash, (entry, modify_index))
            elif verdict is ANCESTOR_REVOKED and read(id_hash)[0] is not None:
                self._tree.revoke(id_hash, reads.pop(id_hash))
            revoked += 1
        reads.clear()
        for parent_hash in self._records.parents():
            parent_exists = read(parent_hash)[0] is not None
            for child_hash in self._records.children(parent_hash):
                child = read(child_hash)
                if child[0] is None:
                    self._records.unlink(parent_hash, child_hash)
                elif not parent_exists:
                    reads.clear()
                    self._tree.revoke(child_hash, child)
                    revoked += 1
        return revoked

    # --- internals -------------------------------------------------------------

    def _live(self, token_id: str) -> tuple[TokenEntry | None, int]:
        """The live entry (see ``TokenTree.live``) for a client token and its modify
        index, ``(None, 0)`` for anything else."""
        if not token_id or not isinstance(token_id, str):
            return None, 0
        salt = self._records.salt()
        if salt is None:
            return None, 0
        return self._tree.live_with_index(salted_hash(salt, token_id))

    def _now(self) -> float:
        return self.clock().timestamp()

    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run the read-modify-write ``attempt`` until it commits without a
        ``WriteConflict``, pausing a random few milliseconds between attempts;
        ``StorageUnavailable`` after ``max_attempts`` and ``patience`` seconds."""
        return retry_on_conflict(
            attempt,
            max_attempts=self._max_attempts,
            sleep=self._sleep,
            jitter=self._jitter,
            delay=RETRY_DELAY,
            patience=self._patience,
            give_up_message="too many concurrent changes to one token; try again",
        )

    def _jitter(self) -> float:
        """A float in [0, 1) from ``randbytes``, the store's one source of randomness."""
        return int.from_bytes(self._randbytes(2), "big") / 65536
