"""Fixtures for transit tests: a transit mount over in-memory storage and a fake clock."""

from __future__ import annotations

import pytest

from strongroom.engines import create_engine


@pytest.fixture
def transit(backend, clock):
    return create_engine("transit", {}, backend, clock)
