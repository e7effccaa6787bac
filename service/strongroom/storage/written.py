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

Layout: ``BUCKETS`` buckets, one per key hash (two keys in one bucket: the
later write wins, the other key misses).  A bucket's header sits with the
others at the start of the area and holds

    seq | epoch | stamp | index | key length | value length + 1 (0: deleted) | key CRC

and its key and value bytes are in half a page further on, so a lookup that
misses (most do: every cache miss looks here first) touches only the 64 KiB
of headers, not one page per key ever looked up.  (A page fault also maps the
neighbours in the same 64 KiB that other processes wrote, so each worker's
VmRSS may count up to the whole area, 2 MiB of page cache the node holds
once.)  2 KiB per bucket holds a KV v2 secret's metadata with ten versions,
all soft-deleted, under its key (about 1 KiB); a bucket of a page doubled the
area for values that large, and with a thousand secrets written, every
worker's VmRSS with it (bench/README.md).

``seq`` makes it a seqlock: the writer makes it odd, writes, makes it even
again (writers are serialised by the table's lock, held around ``put``); a
reader copies the bucket and keeps the copy only if ``seq`` was the same even
number before and after.  Like the table, this relies on x86-64 keeping
stores and loads in program order.  The values are the ciphertexts storage
holds (below the barrier), never plaintext.
"""

from __future__ import annotations

import zlib

BUCKETS = 1024
BUCKET_BYTES = 2048
HEADER_WORDS = 8
_DATA = BUCKETS * HEADER_WORDS * 8
SIZE = _DATA + BUCKETS * BUCKET_BYTES
#: Key and value bytes together must fit in a bucket to be shared.
CAPACITY = BUCKET_BYTES


def bucket_of(key: bytes) -> int:
    return zlib.crc32(key) % BUCKETS


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
        or the bucket holds a later write of the same key.  Callers hold the
        table's lock."""
        if value is None:
            index = 0  # what storage reports for an absent key
        name = key.encode()
        data = value or b""
        if len(name) + len(data) > CAPACITY:
            return False
        crc = zlib.crc32(name)
        bucket = crc % BUCKETS
        w, h = self._words, bucket * HEADER_WORDS
        start = _DATA + bucket * BUCKET_BYTES
        if (
            w[h + 6] == crc
            and w[h + 4] == len(name)
            and w[h + 2] > stamp
            and w[h + 1] == epoch
            and self._bytes[start : start + len(name)] == name
        ):
            return False
        # Odd while writing, even when done: from an odd value too, which a
        # process killed in the middle of a write leaves behind.
        seq = w[h] + 1 | 1
        w[h] = seq
        w[h + 1] = epoch
        w[h + 2] = stamp
        w[h + 3] = index
        w[h + 4] = len(name)
        w[h + 5] = 0 if value is None else len(data) + 1
        w[h + 6] = crc
        self._bytes[start : start + len(name)] = name
        self._bytes[start + len(name) : start + len(name) + len(data)] = data
        w[h] = seq + 1
        return True

    def get(self, key: str) -> tuple[bytes | None, int, int, int] | None:
        """(value, index, epoch, stamp) last left for ``key``, or None: nothing
        there, another key's value, or a write in progress."""
        name = key.encode()
        crc = zlib.crc32(name)
        w, h = self._words, (crc % BUCKETS) * HEADER_WORDS
        seq = w[h]
        if seq & 1 or seq == 0 or w[h + 6] != crc:
            return None
        epoch, stamp, index, key_len, value_len = w[h + 1], w[h + 2], w[h + 3], w[h + 4], w[h + 5]
        if key_len != len(name) or key_len + max(value_len - 1, 0) > CAPACITY:
            return None
        start = _DATA + (crc % BUCKETS) * BUCKET_BYTES
        if self._bytes[start : start + key_len] != name:
            return None
        value = bytes(self._bytes[start + key_len : start + key_len + value_len - 1]) if value_len else None
        if w[h] != seq:
            return None
        return value, index, epoch, stamp
