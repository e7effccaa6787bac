"""Values a node's processes wrote, shown to its other processes.

Every gunicorn worker caches what it read and what it wrote itself
(storage/cache.py), but a key one worker wrote is stale in every other
worker's cache: the next read-modify-write of that key in another worker (a
KV v2 metadata update: a secret's writes land on any worker) went to storage
to read back what the node itself had just written.  ``WrittenValues`` is a
small area in the coherence table's shared file where a worker leaves the last
value it wrote, alone, at a key it had cached; another worker that misses its
own cache takes the value from there instead of storage, if the coherence
table says no write touched the key since (the entry carries the epoch and the
table clock of its write, and is checked exactly like a cached entry).

Layout: a ring of ``RING`` bytes where each value is appended at its own
length (rounded up to 16 bytes), and an index of ``SETS`` sets of ``WAYS``
words in front of it.  A word holds a 16-bit tag of the key's CRC and the
entry's position in the ring (counted in 16-byte units from the area's
creation, so it never wraps); a new key takes the way whose entry is the
oldest.  The ring keeps the last ~2 MiB of values written whatever their keys
(a thousand KV v2 secrets' metadata, written in turn, all stay), where the
earlier fixed buckets, one per key hash, lost a value as soon as any other key
hashed there (about 60 % of them before their secret's next write).  A lookup
that misses (most do: every cache miss looks here first) reads only its set's
words, so it maps no page of the ring; a page fault also maps the neighbours
in the same 64 KiB that other processes wrote, so each worker's VmRSS may
count up to the whole area, 2 MiB of page cache the node holds once.

An entry is a header of six words (epoch, stamp, index, key length, value
length + 1 or 0 for deleted, key CRC), the key and the value; it never runs
over the ring's end (the writer starts the next lap instead).  Writers are
serialised by the table's lock, held around ``put``.  A writer first moves the
*head* (the position after the last entry reserved) past the entry, then
writes it, then points the index at it; an entry at ``p`` is intact while the
head is at most ``p + RING_UNITS``, so a reader copies the entry and keeps the
copy only if the head was still there afterwards.  A writer killed midway
leaves an entry nobody points to.  Like the table, this relies on x86-64
keeping stores and loads in program order.  The values are the ciphertexts
storage holds (below the barrier), never plaintext.
"""

from __future__ import annotations

import zlib

SETS = 1024
WAYS = 4
RING = 2 * 1024 * 1024
UNIT = 16
RING_UNITS = RING // UNIT
_HEADER = 6 * 8
INDEX_AT = 8  # word 0 is the head; the index starts on the next cache line
#: The ring starts 64 KiB in: a page fault maps the neighbours in the same
#: aligned 64 KiB, and the index every lookup reads must not share them with
#: the ring's pages.
RING_AT = 65536
SIZE = RING_AT + RING
#: Key and value bytes together must fit in this to be shared.
CAPACITY = 2048
_POSITION = (1 << 48) - 1


def set_of(key: bytes) -> int:
    return zlib.crc32(key) % SETS


class WrittenValues:
    """The shared area, over ``SIZE`` bytes of a mapped file (``view``)."""

    def __init__(self, view: memoryview):
        self._bytes = view
        self._words = view.cast("Q")

    def release(self) -> None:
        self._words.release()
        self._bytes.release()

    def put(self, key: str, value: bytes | None, index: int, epoch: int, stamp: int) -> bool:
        """Leave ``value`` (None: deleted) as ``key``'s value at commit ``index``,
        written in ``epoch`` at table clock ``stamp``; False if it does not fit
        or the area holds a later write of the same key.  Callers hold the
        table's lock."""
        if value is None:
            index = 0  # what storage reports for an absent key
        name = key.encode()
        data = value or b""
        if len(name) + len(data) > CAPACITY:
            return False
        crc = zlib.crc32(name)
        way, found = self._find(name, crc)
        if found is not None and found[1] == epoch and found[2] > stamp:
            return False
        w = self._words
        units = -(-(_HEADER + len(name) + len(data)) // UNIT)
        at = w[0]
        if at % RING_UNITS + units > RING_UNITS:
            at += RING_UNITS - at % RING_UNITS  # no entry runs over the end
        w[0] = at + units  # reserved before a byte of it is written
        start = RING_AT + at % RING_UNITS * UNIT
        h = start // 8
        w[h] = epoch
        w[h + 1] = stamp
        w[h + 2] = index
        w[h + 3] = len(name)
        w[h + 4] = 0 if value is None else len(data) + 1
        w[h + 5] = crc
        start += _HEADER
        self._bytes[start : start + len(name)] = name
        self._bytes[start + len(name) : start + len(name) + len(data)] = data
        w[way] = (crc >> 16) << 48 | at + 1
        return True

    def get(self, key: str) -> tuple[bytes | None, int, int, int] | None:
        """(value, index, epoch, stamp) last left for ``key``, or None: nothing
        there, or overwritten since (also while being read)."""
        name = key.encode()
        _, found = self._find(name, zlib.crc32(name))
        return None if found is None else (found[0], found[3], found[1], found[2])

    def _find(self, name: bytes, crc: int) -> tuple[int, tuple[bytes | None, int, int, int] | None]:
        """The index word that points to ``name``'s intact entry, and the entry;
        else the word of its set a new entry takes (the oldest), and None."""
        w, tag = self._words, crc >> 16
        first = INDEX_AT + crc % SETS * WAYS
        way, oldest = first, _POSITION + 1
        for i in range(first, first + WAYS):
            word = w[i]
            if word >> 48 == tag and (found := self._entry(word, name, crc)) is not None:
                return i, found
            if word & _POSITION < oldest:
                way, oldest = i, word & _POSITION
        return way, None

    def _entry(self, word: int, name: bytes, crc: int) -> tuple[bytes | None, int, int, int] | None:
        """(value, epoch, stamp, index) of the entry ``word`` points to if it
        is ``name``'s and intact from before the copy to after it."""
        w = self._words
        at = (word & _POSITION) - 1
        if at < 0 or w[0] > at + RING_UNITS:
            return None
        start = RING_AT + at % RING_UNITS * UNIT
        h = start // 8
        epoch, stamp, index, key_len, value_len, entry_crc = w[h], w[h + 1], w[h + 2], w[h + 3], w[h + 4], w[h + 5]
        if entry_crc != crc or key_len != len(name) or key_len + max(value_len - 1, 0) > CAPACITY:
            return None
        start += _HEADER
        if self._bytes[start : start + key_len] != name:
            return None
        value = bytes(self._bytes[start + key_len : start + key_len + value_len - 1]) if value_len else None
        if w[0] > at + RING_UNITS:
            return None  # a writer reached it while it was being copied
        return value, epoch, stamp, index
