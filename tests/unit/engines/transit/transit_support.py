"""Helpers for transit engine tests: a mount over in-memory storage, requests, keys from known material."""

from __future__ import annotations

import base64
from typing import Any

from strongroom.engines.transit import Transit
from strongroom.engines.transit.policy import KeyVersion, Policy
from strongroom.sdk.logical import Request, Response
from tests.unit.engines.kv_support import START

MOUNT = "transit/"


def request(operation: str, relative_path: str, data: dict[str, Any] | None = None) -> Request:
    """A routed logical request, as the core hands it to the engine."""
    return Request(
        operation=operation,
        path=MOUNT + relative_path,
        data=dict(data or {}),
        mount_point=MOUNT,
        mount_type="transit",
        relative_path=relative_path,
    )


def call(engine: Transit, operation: str, relative_path: str, data: dict[str, Any] | None = None) -> Response | None:
    return engine.handle(request(operation, relative_path, data))


def ok(engine: Transit, operation: str, relative_path: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``data`` of a successful response."""
    response = call(engine, operation, relative_path, data)
    assert response is not None
    assert response.status in (None, 200), response
    return response.data or {}


def install(
    engine: Transit,
    name: str,
    key_type: str,
    key_b64: str,
    *,
    hmac_b64: str | None = None,
    derived: bool = False,
    convergent: bool = False,
) -> None:
    """Store a key with known material (as a restore would), version 1."""
    hmac_key = base64.b64decode(hmac_b64) if hmac_b64 else bytes(32)
    policy = Policy(
        name=name,
        type=key_type,
        derived=derived,
        convergent_encryption=convergent,
        exportable=True,
        latest_version=1,
        versions={1: KeyVersion(key=base64.b64decode(key_b64), hmac_key=hmac_key, created=START)},
    )
    engine.store.update(name, lambda current: policy)


def b64(text: bytes) -> str:
    return base64.b64encode(text).decode()
