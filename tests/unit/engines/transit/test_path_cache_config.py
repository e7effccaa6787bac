"""``cache-config`` as OpenBao 2.7.2 answers it: ``{"size": 0}`` before any write, the size
written read back, 0 or at least 10; a standby reads it and forwards the write."""

from __future__ import annotations

import pytest

from strongroom.engines import create_engine
from strongroom.errors import InvalidRequest, ReadOnly
from strongroom.storage import ReadOnlyView
from tests.unit.engines.transit.transit_support import call, ok


def test_size_round_trips(transit):
    assert ok(transit, "read", "cache-config") == {"size": 0}
    assert ok(transit, "update", "cache-config", {"size": 20}) == {"size": 20}
    assert ok(transit, "read", "cache-config") == {"size": 20}
    assert ok(transit, "update", "cache-config", {"size": "0"}) == {"size": 0}
    assert ok(transit, "read", "cache-config") == {"size": 0}
    # not a key
    assert call(transit, "list", "keys") is None


@pytest.mark.parametrize("size", [1, 9, -1])
def test_small_sizes_are_refused(transit, size):
    with pytest.raises(InvalidRequest, match="size must be 0 or a value greater or equal to 10"):
        call(transit, "update", "cache-config", {"size": size})
    assert ok(transit, "read", "cache-config") == {"size": 0}


def test_a_standby_reads_it_and_forwards_the_write(transit, backend, clock):
    ok(transit, "update", "cache-config", {"size": 50})
    standby = create_engine("transit", {}, ReadOnlyView(backend), clock)
    assert ok(standby, "read", "cache-config") == {"size": 50}
    with pytest.raises(ReadOnly):
        call(standby, "update", "cache-config", {"size": 60})
