"""Fixtures for the token store and the ``auth/token/`` mount: an in-memory view
that counts reads, a clock the test moves by hand, and a helper to call endpoints
like the core does."""

from __future__ import annotations

from collections import Counter

import pytest

from strongroom.auth.token import TokenAuthBackend, TokenStore
from strongroom.sdk import logical
from strongroom.sdk.logical import Request
from strongroom.storage.inmem import InmemBackend
from tests.helpers.unit_node import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class ReadCountingBackend(InmemBackend):
    """In-memory storage that counts the reads of each key (``reads[key]``)."""

    def __init__(self):
        super().__init__()
        self.reads: Counter[str] = Counter()

    def get(self, key):
        self.reads[key] += 1
        return super().get(key)

    def get_with_index(self, key):
        self.reads[key] += 1
        return super().get_with_index(key)


@pytest.fixture
def view() -> ReadCountingBackend:
    return ReadCountingBackend()


@pytest.fixture
def store(view, clock) -> TokenStore:
    return TokenStore(view, clock)


@pytest.fixture
def root(store):
    """The root token: (id, entry)."""
    return store.create_root()


@pytest.fixture
def backend(store) -> TokenAuthBackend:
    return TokenAuthBackend(store)


class Caller:
    """Calls the mount the way the core does: resolve the token, count its use, dispatch."""

    def __init__(self, backend: TokenAuthBackend, store: TokenStore):
        self.backend = backend
        self.store = store

    def __call__(self, path: str, token: str | None, operation: str = logical.UPDATE, /, **data):
        entry = None
        if token is not None:
            entry = self.store.lookup(token)
            assert entry is not None, "the core would answer 403 before the mount sees the request"
            assert self.store.use(entry) is not None
        req = Request(
            operation=operation,
            path="auth/token/" + path,
            data=data,
            client_token=token or "",
            token=entry,
            mount_point="auth/token/",
            mount_type="token",
            relative_path=path,
        )
        return self.backend.handle(req)


@pytest.fixture
def call(backend, store) -> Caller:
    return Caller(backend, store)


@pytest.fixture
def caller_for(store):
    """A ``Caller`` for a mount built with other collaborators (sudo check, policy lookup)."""
    return lambda **kwargs: Caller(TokenAuthBackend(store, **kwargs), store)
