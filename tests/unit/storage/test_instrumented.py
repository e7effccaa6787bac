"""The metrics wrapper at the storage seam: behaviour unchanged, every call timed."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from strongroom import metrics
from strongroom.errors import StorageUnavailable
from strongroom.storage.inmem import InmemBackend
from strongroom.storage.instrumented import InstrumentedBackend


def observations(backend_name: str, operation: str) -> float:
    """How many calls the storage latency histogram counted for ``operation``."""
    value = REGISTRY.get_sample_value(
        metrics.PREFIX + "storage_operation_duration_seconds_count", {"backend": backend_name, "operation": operation}
    )
    return value or 0.0


def test_get_prefix_passes_through_and_is_timed_as_get_prefix():
    inner = InmemBackend()
    index = inner.put("f/a", b"1")
    backend = InstrumentedBackend(inner, "unit-get-prefix")
    before = observations("unit-get-prefix", "get_prefix")
    assert backend.get_prefix("f/") == {"f/a": (b"1", index)}
    assert observations("unit-get-prefix", "get_prefix") == before + 1


def test_get_prefix_failures_are_counted():
    class Down(InmemBackend):
        def get_prefix(self, prefix):
            raise StorageUnavailable("down")

    backend = InstrumentedBackend(Down(), "unit-get-prefix-down")
    with pytest.raises(StorageUnavailable):
        backend.get_prefix("f/")
    count = REGISTRY.get_sample_value(
        metrics.PREFIX + "storage_errors_total", {"backend": "unit-get-prefix-down", "error": "StorageUnavailable"}
    )
    assert count == 1
