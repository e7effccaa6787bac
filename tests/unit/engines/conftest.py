"""Fixtures for engine tests: in-memory storage, a fake clock, engines over them."""

from __future__ import annotations

import pytest

from strongroom.engines import create_engine
from tests.unit.engines.kv_support import FakeClock, FlakyBackend


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend() -> FlakyBackend:
    return FlakyBackend()


@pytest.fixture
def kv1(backend, clock):
    return create_engine("kv", {"version": "1"}, backend, clock)


@pytest.fixture
def kv2(backend, clock):
    return create_engine("kv", {"version": "2"}, backend, clock)
