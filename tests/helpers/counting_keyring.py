"""A keyring wrapper for tests that count how often the barrier decrypts."""

from __future__ import annotations

from strongroom.barrier import Keyring


class CountingKeyring:
    """A keyring that counts decryptions (each looks up the key of its term)."""

    def __init__(self, inner: Keyring):
        self.inner = inner
        self.decryptions = 0

    def active_key(self):
        return self.inner.active_key()

    def key(self, term):
        self.decryptions += 1
        return self.inner.key(term)
