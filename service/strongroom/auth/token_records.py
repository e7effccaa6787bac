"""How the token store lays out its entries in its storage view.

https://developer.hashicorp.com/vault/docs/concepts/tokens

Layout inside the store's view (the barrier above encrypts every value)::

    salt                               32 random bytes, written with the first token
    id/<hmac(salt, token id)>          the entry as JSON, without the token id
    accessor/<hmac(salt, accessor)>    {"id_hash": ..., "accessor": <sealed>}
    parent/<parent hash>/<child hash>  empty: the revocation tree

The token id is never stored: it is returned once, at creation, and found again
only by hashing what a client presents.  The accessor must stay listable
(``LIST auth/token/accessors``), so it is stored sealed with AES-GCM under a key
derived from the salt, bound to the key it is stored under.  That keeps
accessors out of raw dumps of the view; it is no boundary against someone who
holds the whole view (the salt is in it) — the barrier is that boundary.

``TokenRecords`` is the only code that knows these keys.  It reads and writes
what it is asked to, every write one view call or one transaction, and decides
nothing about expiry, liveness or retries: that is the ``TokenStore``'s.  The
salt is the one value it caches: it never changes once written.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Literal, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom import jsoncodec
from strongroom.auth.token_entry import TokenEntry
from strongroom.errors import IntegrityError
from strongroom.storage import Backend, TxnOp, WriteConflict, check_op

SALT_KEY = "salt"
ID_PREFIX = "id/"
ACCESSOR_PREFIX = "accessor/"
PARENT_PREFIX = "parent/"

_ACCESSOR_SEAL_CONTEXT = b"strongroom token accessor seal v1"
_STORED_FIELDS = (
    "policies",
    "parent",
    "path",
    "meta",
    "display_name",
    "num_uses",
    "creation_time",
    "ttl",
    "explicit_max_ttl",
    "period",
    "renewable",
    "type",
    "entity_id",
    "role",
    "issue_time",
    "expire_at",
    "lease_ttl",
    "last_renewal",
)


def salted_hash(salt: bytes, value: str) -> str:
    """The name a token id or accessor is stored under: HMAC-SHA256 with the salt, hex."""
    return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()


class TokenRecords:
    """Token entries, accessor index and revocation tree in a storage view.

    ``view`` is the store's view (see ``TokenStore``); ``randbytes(n)`` makes
    the salt and the AES-GCM nonces.  Entries are stored under their
    ``salted_id`` and come back with ``id`` empty: the id is never written.

    The last entry decoded from each stored record is kept (``DECODED_MAX``
    records): reading the same bytes again (every request of a token whose
    record has not changed) costs a copy instead of a JSON parse and an
    accessor decryption.  Callers always get an entry of their own.
    """

    #: Records whose decoded entry is kept (about 2 KiB each); past this the memo starts again empty.
    DECODED_MAX = 4096

    def __init__(self, view: Backend, randbytes: Callable[[int], bytes]) -> None:
        self._view = view
        self._randbytes = randbytes
        self._salt: bytes | None = None
        #: id hash -> (the record as stored, the salt, its entry), never handed out.
        self._decoded: dict[str, tuple[bytes, bytes, TokenEntry]] = {}

    # --- salt and sealing ------------------------------------------------------

    def existing_salt(self) -> bytes:
        """The salt of stored entries: it exists once any entry does (``IntegrityError`` otherwise)."""
        salt = self.salt()
        if salt is None:
            raise IntegrityError("token entries are stored but the token salt is missing")
        return salt

    @overload
    def salt(self, create: Literal[True]) -> bytes: ...

    @overload
    def salt(self, create: bool = False) -> bytes | None: ...

    def salt(self, create: bool = False) -> bytes | None:
        """The salt, None before the first token; ``create`` writes it if missing.
        The caller serialises creating calls within a process."""
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
    @functools.lru_cache(maxsize=4)
    def _sealer(salt: bytes) -> AESGCM:
        """The accessor-sealing cipher for ``salt`` (one salt per store: built once, not per token)."""
        return AESGCM(hmac.new(salt, _ACCESSOR_SEAL_CONTEXT, hashlib.sha256).digest())

    def _seal(self, salt: bytes, key: str, accessor: str) -> str:
        nonce = self._randbytes(12)
        sealed = self._sealer(salt).encrypt(nonce, accessor.encode(), key.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open_accessor(self, salt: bytes, key: str, sealed: str) -> str:
        """The accessor sealed under ``key``; ``IntegrityError`` if it was tampered with."""
        blob = base64.b64decode(sealed)
        try:
            return self._sealer(salt).decrypt(blob[:12], blob[12:], key.encode()).decode()
        except InvalidTag:
            raise IntegrityError(f"token store entry {key!r} failed its integrity check") from None

    def _encode(self, salt: bytes, entry: TokenEntry) -> bytes:
        record = {name: getattr(entry, name) for name in _STORED_FIELDS}
        key = ID_PREFIX + entry.salted_id
        record["accessor"] = self._seal(salt, key, entry.accessor)
        return jsoncodec.dumps_sorted(record)

    def forget_decoded(self) -> None:
        """Drop every entry kept decoded."""
        self._decoded = {}

    def _decode(self, id_hash: str, raw: bytes) -> TokenEntry:
        salt = self.existing_salt()
        decoded = self._decoded
        seen = decoded.get(id_hash)
        if seen is None or seen[1] is not salt or seen[0] != raw:
            record = jsoncodec.loads(raw)
            accessor = self.open_accessor(salt, ID_PREFIX + id_hash, record.pop("accessor"))
            known = {name: record[name] for name in _STORED_FIELDS if name in record}
            seen = (raw, salt, TokenEntry(accessor=accessor, salted_id=id_hash, **known))
            if len(decoded) >= self.DECODED_MAX:
                decoded.clear()
            decoded[id_hash] = seen
        return copy_entry(seen[2])

    # --- entries ---------------------------------------------------------------

    def exists(self, id_hash: str) -> bool:
        """Whether an entry is stored under ``id_hash``, whatever its state."""
        return self._view.get(ID_PREFIX + id_hash) is not None

    def load(self, id_hash: str) -> TokenEntry | None:
        """The stored entry, whatever its state (no expiry or ancestry checks)."""
        if not id_hash:
            return None
        key = ID_PREFIX + id_hash
        raw = self._view.get(key)
        return None if raw is None else self._decode(id_hash, raw)

    def load_with_index(self, id_hash: str) -> tuple[TokenEntry | None, int]:
        """``load`` and the entry's modify index (0 when absent), for ``store_checked``."""
        if not id_hash:
            return None, 0
        raw, index = self._view.get_with_index(ID_PREFIX + id_hash)
        return (None if raw is None else self._decode(id_hash, raw)), index

    def insert(self, salt: bytes, entry: TokenEntry) -> None:
        """Store a new entry, its accessor index and its link under ``entry.parent``
        (if any) in one transaction; ``WriteConflict`` if the id is taken."""
        accessor_key = ACCESSOR_PREFIX + salted_hash(salt, entry.accessor)
        index = {"id_hash": entry.salted_id, "accessor": self._seal(salt, accessor_key, entry.accessor)}
        # The check closes the gap between a caller's duplicate test and this
        # write, when two processes create the same chosen id at once.
        ops = [
            TxnOp("check-not-exists", ID_PREFIX + entry.salted_id),
            TxnOp("set", ID_PREFIX + entry.salted_id, self._encode(salt, entry)),
            TxnOp("set", accessor_key, json.dumps(index).encode()),
        ]
        if entry.parent:
            ops.append(TxnOp("set", f"{PARENT_PREFIX}{entry.parent}/{entry.salted_id}", b""))
        self._view.txn(ops)

    def store_checked(self, entry: TokenEntry, index: int) -> None:
        """Write ``entry`` back only if it still has the modify ``index`` it was read
        with; ``WriteConflict`` otherwise (also when it was deleted meanwhile)."""
        key = ID_PREFIX + entry.salted_id
        self._view.txn([check_op(key, index), TxnOp("set", key, self._encode(self.existing_salt(), entry))])

    def store_orphaned(self, salt: bytes, child: TokenEntry, index: int, parent_hash: str) -> None:
        """Write ``child`` back (checked as ``store_checked``) and drop its link
        under ``parent_hash``, in one transaction."""
        key = ID_PREFIX + child.salted_id
        self._view.txn(
            [
                check_op(key, index),
                TxnOp("set", key, self._encode(salt, child)),
                TxnOp("delete", f"{PARENT_PREFIX}{parent_hash}/{child.salted_id}"),
            ]
        )

    def delete(self, id_hash: str, parent_hint: str, entry: TokenEntry | None = None) -> None:
        """Delete an entry with its accessor index, its links to its children and
        its link under its parent (stored, and ``parent_hint``), in one transaction.
        ``entry`` is the stored entry if the caller holds it; otherwise it is read."""
        if entry is None:
            entry = self.load(id_hash)
        ops = [TxnOp("delete", ID_PREFIX + id_hash), TxnOp("delete-tree", f"{PARENT_PREFIX}{id_hash}/")]
        parents = {parent_hint, entry.parent if entry is not None else ""} - {""}
        ops += [TxnOp("delete", f"{PARENT_PREFIX}{p}/{id_hash}") for p in sorted(parents)]
        if entry is not None:
            ops.append(TxnOp("delete", ACCESSOR_PREFIX + salted_hash(self.existing_salt(), entry.accessor)))
        self._view.txn(ops)

    # --- accessor index --------------------------------------------------------

    def id_hash_of_accessor(self, salt: bytes, accessor: str) -> str | None:
        """The id hash the accessor's index entry points at, None without one."""
        raw = self._view.get(ACCESSOR_PREFIX + salted_hash(salt, accessor))
        return None if raw is None else json.loads(raw)["id_hash"]

    def accessor_index(self) -> Iterator[tuple[str, dict]]:
        """Every accessor index entry as ``(key, {"id_hash": ..., "accessor": <sealed>})``,
        in storage order, each read as the iteration reaches it."""
        for name in self._view.list(ACCESSOR_PREFIX):
            key = ACCESSOR_PREFIX + name
            raw = self._view.get(key)
            if raw is not None:
                yield key, json.loads(raw)

    def drop_accessor_index(self, key: str) -> None:
        """Delete an accessor index entry (one whose token is gone)."""
        self._view.delete(key)

    # --- revocation tree -------------------------------------------------------

    def children(self, id_hash: str) -> list[str]:
        """Id hashes linked under ``id_hash``, in storage order."""
        return [name.rstrip("/") for name in self._view.list(f"{PARENT_PREFIX}{id_hash}/")]

    def parents(self) -> list[str]:
        """Id hashes that have links to children under them, in storage order."""
        return [folder.rstrip("/") for folder in self._view.list(PARENT_PREFIX)]

    def unlink(self, parent_hash: str, child_hash: str) -> None:
        """Delete the link of ``child_hash`` under ``parent_hash``."""
        self._view.delete(f"{PARENT_PREFIX}{parent_hash}/{child_hash}")


def copy_entry(entry: TokenEntry) -> TokenEntry:
    """A copy of ``entry`` sharing nothing mutable with it (dataclasses.replace
    runs __init__ and is several times slower)."""
    copy = object.__new__(TokenEntry)
    copy.__dict__.update(entry.__dict__)
    copy.policies = list(entry.policies)
    if entry.meta is not None:
        copy.meta = dict(entry.meta)
    return copy
