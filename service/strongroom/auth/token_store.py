"""The token store: Vault's service tokens, kept only by salted hash.

https://developer.hashicorp.com/vault/docs/concepts/tokens
https://developer.hashicorp.com/vault/api-docs/auth/token

Layout inside the store's view (the barrier above encrypts every value)::

    salt                               32 random bytes, written with the first token
    id/<hmac(salt, token id)>          the entry as JSON, without the token id
    accessor/<hmac(salt, accessor)>    {"id_hash": ..., "accessor": <sealed>}
    parent/<parent hash>/<child hash>  empty: the revocation tree

The token id is never stored: it is returned once, at creation, and found again
only by hashing what a client presents.  The accessor must stay listable
(``LIST auth/token/accessors``), so it is stored sealed with AES-GCM under a key
derived from the salt.  That keeps accessors out of raw dumps of the view; it is
no boundary against someone who holds the whole view (the salt is in it) — the
barrier is that boundary.

Every change that touches several keys is one transaction.  A tree is revoked
leaf first, one token per transaction (Consul caps a transaction at 64
operations), after marking its root as pending revocation; a token whose ancestor
is pending, expired or missing is refused, so an interrupted revocation never
leaves a usable child.  Expiry is lazy: ``lookup`` revokes an expired token (with
its tree) when it meets one, and ``tidy`` sweeps those nobody looks up.

Nothing is cached except the salt, which never changes once written: every other
read goes to the view, so a revocation made by another worker or node is seen at
once.

Several worker processes (and nodes) share the view and no lock, so every
read-modify-write of an entry (spending a use, renewing, marking a revocation
pending, orphaning a child) is optimistic: the entry is read with its modify
index and written back with a ``check-index`` on it; on ``WriteConflict`` the
cycle starts again from the read, a bounded number of times.  Two processes can
therefore never spend the same use, and a write based on a stale read can never
undo a revocation or resurrect a deleted entry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.errors import IntegrityError, InvalidRequest
from strongroom.storage import TxnOp, WriteConflict, check_op
from strongroom.storage.retry import retry_on_conflict

DEFAULT_TTL = 768 * 3600
# Vault's tokenRevocationPending: the token is fulfilling its last use or being revoked.
REVOCATION_PENDING = -1
SERVICE_TOKEN_PREFIX = "hvs."
TOKEN_LENGTH = 24
SALT_KEY = "salt"
ID_PREFIX = "id/"
ACCESSOR_PREFIX = "accessor/"
PARENT_PREFIX = "parent/"

T = TypeVar("T")

# Attempts of one read-modify-write of an entry before giving up with StorageUnavailable.
MAX_ATTEMPTS = 10
# Upper bound of the random pause after the first conflict (seconds); grows linearly per attempt.
RETRY_DELAY = 0.002

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ACCESSOR_SEAL_CONTEXT = b"strongroom token accessor seal v1"


def format_duration(seconds: int) -> str:
    """A duration as Vault prints it in warnings: Go's ``Duration.String`` with
    zero trailing units dropped (``"1h30m"``, ``"768h"``, ``"45s"``)."""
    seconds = int(seconds)
    if seconds == 0:
        return "0s"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h" if hours else ""
    if minutes or (hours and secs):
        text += f"{minutes}m"
    if secs:
        text += f"{secs}s"
    return sign + text


def sanitize_policies(policies: Iterable[str], add_default: bool) -> list[str]:
    """Vault's ``policyutil.SanitizePolicies``: trimmed, lower-cased, empty names
    dropped, ``root`` alone if present, ``default`` added when asked, sorted and
    de-duplicated."""
    names = [p.strip().lower() for p in policies]
    names = [p for p in names if p]
    if "root" in names:
        return ["root"]
    if add_default and "default" not in names:
        names.append("default")
    return sorted(set(names))


@dataclass
class TokenEntry:
    """One service token (Vault's ``logical.TokenEntry``).

    ``id`` is the secret token; it is never stored and is empty on entries found
    by accessor.  ``parent`` is the parent's id hash ("" for orphans).  ``ttl``
    is the TTL at creation (0: never expires, root tokens only); ``lease_ttl``
    the TTL granted by the last creation or renewal; ``expire_at`` the unix time
    the token stops working (None: never).  ``num_uses`` 0 is unlimited, and
    ``REVOCATION_PENDING`` (-1) marks a token serving its last use.
    """

    id: str = field(default="", repr=False)
    accessor: str = ""
    policies: list[str] = field(default_factory=list)
    parent: str = ""
    path: str = "auth/token/create"
    meta: dict[str, str] | None = None
    display_name: str = "token"
    num_uses: int = 0
    creation_time: int = 0
    ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    renewable: bool = True
    type: str = "service"
    entity_id: str = ""
    issue_time: float = 0.0
    expire_at: float | None = None
    lease_ttl: int = 0
    last_renewal: float | None = None
    salted_id: str = field(default="", repr=False, compare=False)

    @property
    def orphan(self) -> bool:
        """True when the token has no parent (created orphan, or its parent was
        revoked with ``revoke-orphan``)."""
        return not self.parent

    def expire_time(self) -> datetime | None:
        """When the token expires, as an aware UTC datetime; None if never."""
        if self.expire_at is None:
            return None
        return datetime.fromtimestamp(self.expire_at, tz=timezone.utc)

    def expired(self, now: float) -> bool:
        """True once ``now`` (unix seconds) has reached the expiry time."""
        return self.expire_at is not None and now >= self.expire_at


_STORED_FIELDS = ("policies", "parent", "path", "meta", "display_name", "num_uses", "creation_time", "ttl",
                  "explicit_max_ttl", "period", "renewable", "type", "entity_id", "issue_time", "expire_at",
                  "lease_ttl", "last_renewal")


class TokenStore:
    """Service tokens over a storage view (the barrier view ``sys/token/``).

    ``view`` offers get/get_with_index/put/delete/delete_prefix/list/txn (with
    checks) over str keys and bytes values; ``clock()`` returns an aware UTC
    datetime; ``randbytes(n)`` is the randomness for ids, accessors, the salt,
    nonces and the jitter between retries; ``sleep(seconds)`` pauses between
    retries.  ``default_ttl`` and ``max_ttl`` are the system lease TTLs (Vault's
    768h).  Safe to share between threads, and any number of stores (processes,
    nodes) may share one view: limited-use accounting is exact across all of
    them (see ``use``).
    """

    def __init__(self, view, clock: Callable[[], datetime], randbytes: Callable[[int], bytes] = os.urandom,
                 default_ttl: int = DEFAULT_TTL, max_ttl: int = DEFAULT_TTL, *,
                 sleep: Callable[[float], None] = time.sleep, max_attempts: int = MAX_ATTEMPTS):
        self._view = view
        self.clock = clock
        self._randbytes = randbytes
        self._sleep = sleep
        self._max_attempts = max_attempts
        self.default_ttl = int(default_ttl)
        self.max_ttl = int(max_ttl)
        self._salt: bytes | None = None
        self._lock = threading.RLock()

    # --- creation --------------------------------------------------------------

    def create_root(self, policies: Iterable[str] = ("root",), display_name: str = "root", ttl: int = 0,
                    token_id: str | None = None) -> tuple[str, TokenEntry]:
        """A root token with no parent (``sys/init``, ``sys/generate-root``, ``-dev``).

        ``token_id`` chooses the id (``-dev-root-token-id``); otherwise a random
        ``hvs.`` id is generated.  ``ttl`` 0 means it never expires."""
        return self.create(policies=policies, add_default=False, path="auth/token/root", display_name=display_name,
                           ttl=ttl, renewable=ttl > 0, token_id=token_id)

    def create(self, *, policies: Iterable[str], add_default: bool = True, parent: TokenEntry | None = None,
               path: str = "auth/token/create", meta: dict[str, str] | None = None, display_name: str = "token",
               num_uses: int = 0, ttl: int = 0, explicit_max_ttl: int = 0, period: int = 0,
               renewable: bool = True, token_id: str | None = None) -> tuple[str, TokenEntry]:
        """Persist a new service token and return ``(token_id, entry)``.

        https://developer.hashicorp.com/vault/api-docs/auth/token#create-token

        The caller has decided everything: ``policies`` are sanitised (``default``
        added when ``add_default``), ``ttl`` is final (see ``plan_ttl``; 0 never
        expires), ``parent`` None makes an orphan.  A chosen ``token_id`` must be
        new and may not look like a generated one (Vault's rules)."""
        if token_id:
            self._check_custom_id(token_id)
        with self._lock:
            salt = self._get_salt(create=True)
        generated = not token_id
        if generated:
            token_id = SERVICE_TOKEN_PREFIX + self._random_base62(TOKEN_LENGTH)
        id_hash = self._hash(salt, token_id)
        if not generated and self._view.get(ID_PREFIX + id_hash) is not None:
            raise InvalidRequest("cannot create a token with a duplicate ID")
        parent_hash = ""
        if parent is not None:
            parent_hash = parent.salted_id
            if not parent_hash or self._live(parent_hash) is None:
                raise InvalidRequest("parent token not found")
        now = self._now()
        ttl = int(ttl)
        entry = TokenEntry(
            id=token_id, accessor=self._random_base62(TOKEN_LENGTH), policies=sanitize_policies(policies, add_default),
            parent=parent_hash, path=path, meta=dict(meta) if meta is not None else None,
            display_name=display_name, num_uses=int(num_uses), creation_time=int(now), ttl=ttl,
            explicit_max_ttl=int(explicit_max_ttl), period=int(period), renewable=bool(renewable) and ttl > 0,
            issue_time=now, expire_at=now + ttl if ttl else None, lease_ttl=ttl, salted_id=id_hash)
        accessor_key = ACCESSOR_PREFIX + self._hash(salt, entry.accessor)
        index = {"id_hash": id_hash, "accessor": self._seal(salt, accessor_key, entry.accessor)}
        # The check closes the gap between the duplicate test above and this
        # write, when two processes create the same chosen id at once.
        ops = [TxnOp("check-not-exists", ID_PREFIX + id_hash),
               TxnOp("set", ID_PREFIX + id_hash, self._encode(salt, entry)),
               TxnOp("set", accessor_key, json.dumps(index).encode())]
        if parent_hash:
            ops.append(TxnOp("set", f"{PARENT_PREFIX}{parent_hash}/{id_hash}", b""))
        try:
            self._view.txn(ops)
        except WriteConflict:
            raise InvalidRequest("cannot create a token with a duplicate ID") from None
        return token_id, entry

    def plan_ttl(self, *, ttl: int = 0, period: int = 0, explicit_max_ttl: int = 0, increment: int = 0,
                 start: float | None = None, now: float | None = None) -> tuple[int, list[str]]:
        """Vault's ``framework.CalculateTTL`` for a token: the TTL to grant and the
        warnings to show.

        A periodic token gets ``period`` (capped by the effective max TTL) and
        lives until its explicit max TTL, if any; any other token gets
        ``increment``, else ``ttl``, else the default TTL, capped so that it ends
        no later than ``start`` + min(max TTL, explicit max TTL).  ``start`` is
        the issue time (now when creating).  Whole seconds, rounded so that a
        capped token never outlives its limit."""
        now = self._now() if now is None else now
        start = now if start is None else start
        max_ttl = self.max_ttl
        if 0 < explicit_max_ttl < max_ttl:
            max_ttl = explicit_max_ttl
        warnings: list[str] = []
        limit = None
        if period > 0:
            if period > max_ttl:
                warnings.append(f'period of "{format_duration(period)}" exceeded the effective max_ttl of '
                                f'"{format_duration(max_ttl)}"; period value is capped accordingly')
                period = max_ttl
            granted = period
            if explicit_max_ttl > 0:
                limit = start + explicit_max_ttl
        else:
            granted = increment if increment > 0 else ttl if ttl > 0 else self.default_ttl
            limit = start + max_ttl
        if limit is not None:
            remaining = math.floor(limit - now)
            if remaining <= 0:
                raise InvalidRequest("past the max TTL, cannot renew")
            if granted > remaining:
                warnings.append(f'TTL of "{format_duration(granted)}" exceeded the effective max_ttl of '
                                f'"{format_duration(remaining)}"; TTL value is capped accordingly')
                granted = remaining
        return granted, warnings

    # --- lookup ----------------------------------------------------------------

    def lookup(self, token_id: str) -> TokenEntry | None:
        """The entry for a client token, or None when it is unknown, expired,
        revoked or pending revocation (an expired token is revoked, with its
        children, on the way).  The returned entry carries ``id``."""
        if not token_id or not isinstance(token_id, str):
            return None
        salt = self._get_salt()
        if salt is None:
            return None
        entry = self._live(self._hash(salt, token_id))
        if entry is not None:
            entry.id = token_id
        return entry

    def lookup_accessor(self, accessor: str) -> TokenEntry | None:
        """The entry behind an accessor (``id`` left empty), or None as for ``lookup``."""
        if not accessor or not isinstance(accessor, str):
            return None
        salt = self._get_salt()
        if salt is None:
            return None
        raw = self._view.get(ACCESSOR_PREFIX + self._hash(salt, accessor))
        if raw is None:
            return None
        entry = self._live(json.loads(raw)["id_hash"])
        if entry is None or entry.accessor != accessor:
            return None
        return entry

    def refresh(self, entry: TokenEntry) -> TokenEntry | None:
        """The current stored state of ``entry`` (same rules as ``lookup``), keeping its id."""
        fresh = self._live(entry.salted_id) if entry.salted_id else None
        if fresh is not None:
            fresh.id = entry.id
        return fresh

    def list_accessors(self) -> list[str]:
        """Accessors of every live token (``LIST auth/token/accessors``), in storage order."""
        salt = self._get_salt()
        if salt is None:
            return []
        now = self._now()
        out = []
        for name in self._view.list(ACCESSOR_PREFIX):
            key = ACCESSOR_PREFIX + name
            raw = self._view.get(key)
            if raw is None:
                continue
            index = json.loads(raw)
            entry = self._load(index["id_hash"])
            if entry is None or entry.num_uses < 0 or entry.expired(now):
                continue
            out.append(self._open(salt, key, index["accessor"]))
        return out

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
            fresh, index = self._live_with_index(entry.salted_id)
            if fresh is None or fresh.num_uses <= 0:
                return None
            fresh.num_uses = REVOCATION_PENDING if fresh.num_uses == 1 else fresh.num_uses - 1
            self._store_checked(fresh, index)
            return fresh

        with self._lock:
            fresh = self._retry(attempt)
            if fresh is not None and fresh.num_uses == REVOCATION_PENDING:
                self._revoke_tree(fresh.salted_id)
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
            fresh, index = self._live_with_index(entry.salted_id) if entry.salted_id else (None, 0)
            if fresh is None:
                raise InvalidRequest("token not found")
            if fresh.expire_at is None or not fresh.renewable:
                raise InvalidRequest("lease is not renewable")
            now = self._now()
            ttl, warnings = self.plan_ttl(ttl=fresh.lease_ttl, period=fresh.period,
                                          explicit_max_ttl=fresh.explicit_max_ttl, increment=int(increment),
                                          start=fresh.issue_time, now=now)
            fresh.lease_ttl = ttl
            fresh.expire_at = now + ttl
            fresh.last_renewal = now
            # Checked: a renewal based on a stale read would give back spent
            # uses or undo a pending revocation.
            self._store_checked(fresh, index)
            return fresh, warnings

        with self._lock:
            fresh, warnings = self._retry(attempt)
        fresh.id = entry.id
        return fresh, warnings

    # --- revocation --------------------------------------------------------------

    def revoke(self, token_id: str) -> bool:
        """Revoke a token and, recursively, every token it created.  False if unknown."""
        salt = self._get_salt()
        if not token_id or salt is None:
            return False
        id_hash = self._hash(salt, token_id)
        if self._load(id_hash) is None:
            return False
        self._revoke_tree(id_hash)
        return True

    def revoke_accessor(self, accessor: str) -> bool:
        """Revoke (tree) the token behind an accessor.  False if there is no live one."""
        entry = self.lookup_accessor(accessor)
        if entry is None:
            return False
        self._revoke_tree(entry.salted_id)
        return True

    def revoke_orphan(self, token_id: str) -> bool:
        """Revoke a token but keep its children, which become orphans.  False if unknown."""
        salt = self._get_salt()
        if not token_id or salt is None:
            return False
        id_hash = self._hash(salt, token_id)
        if self._mark_pending(id_hash) is None:
            return False
        for child_hash in self._children(id_hash):
            self._orphan(salt, id_hash, child_hash)
        self._delete_token(id_hash, "")
        return True

    def tidy(self) -> int:
        """Revoke expired tokens nobody looked up, finish interrupted revocations
        and drop dangling index entries (Vault's ``auth/token/tidy``); returns how
        many dead tokens it found.  Reads every entry: run it now and then, not per
        request."""
        revoked = 0
        for name in self._view.list(ACCESSOR_PREFIX):
            raw = self._view.get(ACCESSOR_PREFIX + name)
            if raw is None:
                continue
            id_hash = json.loads(raw)["id_hash"]
            if self._load(id_hash) is None:
                self._view.delete(ACCESSOR_PREFIX + name)
            elif self._live(id_hash) is None:
                # Expired (revoked just now), or left pending by an interrupted revocation.
                if self._load(id_hash) is not None:
                    self._revoke_tree(id_hash)
                revoked += 1
        for folder in self._view.list(PARENT_PREFIX):
            parent_hash = folder.rstrip("/")
            parent_exists = self._load(parent_hash) is not None
            for child_hash in self._children(parent_hash):
                if self._load(child_hash) is None:
                    self._view.delete(f"{PARENT_PREFIX}{parent_hash}/{child_hash}")
                elif not parent_exists:
                    self._revoke_tree(child_hash)
                    revoked += 1
        return revoked

    # --- internals -------------------------------------------------------------

    def _now(self) -> float:
        return self.clock().timestamp()

    def _get_salt(self, create: bool = False) -> bytes | None:
        # Written once by the first creation (sys/init's root token), before any
        # other worker can be unsealed; immutable afterwards, hence cacheable.
        if self._salt is None:
            salt = self._view.get(SALT_KEY)
            if salt is None and create:
                salt = self._randbytes(32)
                try:
                    self._view.txn([TxnOp("check-not-exists", SALT_KEY), TxnOp("set", SALT_KEY, salt)])
                except WriteConflict:
                    # Another process wrote the salt first: every store must use the same one.
                    salt = self._view.get(SALT_KEY)
            self._salt = salt
        return self._salt

    @staticmethod
    def _hash(salt: bytes, value: str) -> str:
        return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()

    def _random_base62(self, length: int) -> str:
        out: list[str] = []
        while len(out) < length:
            for byte in self._randbytes(length * 2):
                if byte < 248:  # 248 = 4 * 62: reject the tail so every character is equally likely
                    out.append(_BASE62[byte % 62])
                    if len(out) == length:
                        break
        return "".join(out)

    @staticmethod
    def _check_custom_id(token_id: str) -> None:
        if token_id.startswith(SERVICE_TOKEN_PREFIX):
            raise InvalidRequest("custom token ID cannot have the 'hvs.' prefix")
        if token_id.startswith("s."):
            raise InvalidRequest("custom token ID cannot have the 's.' prefix")
        if "." in token_id:
            raise InvalidRequest("custom token ID cannot have a '.' in the value")

    @staticmethod
    def _seal_key(salt: bytes) -> bytes:
        return hmac.new(salt, _ACCESSOR_SEAL_CONTEXT, hashlib.sha256).digest()

    def _seal(self, salt: bytes, key: str, accessor: str) -> str:
        nonce = self._randbytes(12)
        sealed = AESGCM(self._seal_key(salt)).encrypt(nonce, accessor.encode(), key.encode())
        return base64.b64encode(nonce + sealed).decode()

    def _open(self, salt: bytes, key: str, sealed: str) -> str:
        blob = base64.b64decode(sealed)
        try:
            return AESGCM(self._seal_key(salt)).decrypt(blob[:12], blob[12:], key.encode()).decode()
        except InvalidTag:
            raise IntegrityError(f"token store entry {key!r} failed its integrity check") from None

    def _encode(self, salt: bytes, entry: TokenEntry) -> bytes:
        record = {name: getattr(entry, name) for name in _STORED_FIELDS}
        key = ID_PREFIX + entry.salted_id
        record["accessor"] = self._seal(salt, key, entry.accessor)
        return json.dumps(record, sort_keys=True).encode()

    def _load(self, id_hash: str) -> TokenEntry | None:
        """The stored entry, whatever its state (no expiry or ancestry checks)."""
        if not id_hash:
            return None
        key = ID_PREFIX + id_hash
        raw = self._view.get(key)
        return None if raw is None else self._decode(id_hash, raw)

    def _load_with_index(self, id_hash: str) -> tuple[TokenEntry | None, int]:
        """``_load`` and the entry's modify index (0 when absent), for ``_store_checked``."""
        if not id_hash:
            return None, 0
        raw, index = self._view.get_with_index(ID_PREFIX + id_hash)
        return (None if raw is None else self._decode(id_hash, raw)), index

    def _decode(self, id_hash: str, raw: bytes) -> TokenEntry:
        salt = self._get_salt()
        record = json.loads(raw)
        accessor = self._open(salt, ID_PREFIX + id_hash, record.pop("accessor"))
        known = {name: record[name] for name in _STORED_FIELDS if name in record}
        return TokenEntry(accessor=accessor, salted_id=id_hash, **known)

    def _store_checked(self, entry: TokenEntry, index: int) -> None:
        """Write ``entry`` back only if it still has the modify ``index`` it was read
        with; ``WriteConflict`` otherwise (also when it was deleted meanwhile)."""
        key = ID_PREFIX + entry.salted_id
        self._view.txn([check_op(key, index), TxnOp("set", key, self._encode(self._get_salt(), entry))])

    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run the read-modify-write ``attempt`` until it commits without a
        ``WriteConflict``, pausing a random few milliseconds between attempts;
        ``StorageUnavailable`` after ``max_attempts``."""
        return retry_on_conflict(
            attempt, max_attempts=self._max_attempts, sleep=self._sleep, jitter=self._jitter, delay=RETRY_DELAY,
            give_up_message="too many concurrent changes to one token; try again")

    def _jitter(self) -> float:
        """A float in [0, 1) from ``randbytes``, the store's one source of randomness."""
        return int.from_bytes(self._randbytes(2), "big") / 65536

    def _live(self, id_hash: str) -> TokenEntry | None:
        """The entry if it may be used: present, not pending, not expired, and every
        ancestor likewise.  Expired tokens (and tokens under a missing ancestor)
        are revoked here."""
        return self._live_with_index(id_hash)[0]

    def _live_with_index(self, id_hash: str) -> tuple[TokenEntry | None, int]:
        """``_live`` and the entry's modify index, for a checked write of the entry."""
        entry, index = self._load_with_index(id_hash)
        if entry is None or entry.num_uses < 0:
            return None, 0
        now = self._now()
        if entry.expired(now):
            self._revoke_tree(id_hash)
            return None, 0
        seen = {id_hash}
        ancestor_hash = entry.parent
        while ancestor_hash:
            if ancestor_hash in seen:  # a corrupted, cyclic chain
                return None, 0
            seen.add(ancestor_hash)
            ancestor = self._load(ancestor_hash)
            if ancestor is None:
                # The parent is gone but its child is not: a revocation raced with
                # this child's creation.  Fail closed.
                self._revoke_tree(id_hash)
                return None, 0
            if ancestor.num_uses < 0:
                return None, 0
            if ancestor.expired(now):
                self._revoke_tree(ancestor_hash)
                return None, 0
            ancestor_hash = ancestor.parent
        return entry, index

    def _children(self, id_hash: str) -> list[str]:
        return [name.rstrip("/") for name in self._view.list(f"{PARENT_PREFIX}{id_hash}/")]

    def _mark_pending(self, id_hash: str) -> TokenEntry | None:
        """Mark the entry pending revocation (unusable from then on); returns it, or
        None when there is no such entry.  Checked, so that it can neither be undone
        by a concurrent use or renewal nor re-create an entry deleted meanwhile."""

        def attempt() -> TokenEntry | None:
            entry, index = self._load_with_index(id_hash)
            if entry is not None and entry.num_uses != REVOCATION_PENDING:
                entry.num_uses = REVOCATION_PENDING
                self._store_checked(entry, index)
            return entry

        return self._retry(attempt)

    def _orphan(self, salt: bytes, parent_hash: str, child_hash: str) -> None:
        """Detach a child from its revoked parent (``revoke-orphan``), checked
        against concurrent changes of the child."""
        index_key = f"{PARENT_PREFIX}{parent_hash}/{child_hash}"

        def attempt() -> None:
            child, index = self._load_with_index(child_hash)
            if child is None:
                self._view.delete(index_key)
                return
            child.parent = ""
            key = ID_PREFIX + child_hash
            self._view.txn([check_op(key, index), TxnOp("set", key, self._encode(salt, child)),
                            TxnOp("delete", index_key)])

        self._retry(attempt)

    def _revoke_tree(self, root_hash: str) -> None:
        """Depth first, leaves before their parent, one transaction per token."""
        root = self._mark_pending(root_hash)
        stack = [(root_hash, root.parent if root is not None else "")]
        seen = {root_hash}
        while stack:
            id_hash, parent_hash = stack[-1]
            fresh = []
            for child_hash in self._children(id_hash):
                if child_hash in seen:
                    self._view.delete(f"{PARENT_PREFIX}{id_hash}/{child_hash}")
                else:
                    seen.add(child_hash)
                    fresh.append((child_hash, id_hash))
            if fresh:
                stack.extend(fresh)
            else:
                self._delete_token(id_hash, parent_hash)
                stack.pop()

    def _delete_token(self, id_hash: str, parent_hint: str) -> None:
        entry = self._load(id_hash)
        ops = [TxnOp("delete", ID_PREFIX + id_hash), TxnOp("delete-tree", f"{PARENT_PREFIX}{id_hash}/")]
        parents = {parent_hint, entry.parent if entry is not None else ""} - {""}
        ops += [TxnOp("delete", f"{PARENT_PREFIX}{p}/{id_hash}") for p in sorted(parents)]
        if entry is not None:
            ops.append(TxnOp("delete", ACCESSOR_PREFIX + self._hash(self._get_salt(), entry.accessor)))
        self._view.txn(ops)
