"""What every transit path group shares: the mount's key store, clock and randomness, and field decoding."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from strongroom.engines.transit.policy import Policy, RandomBytes, b64decode
from strongroom.engines.transit.store import KeyStore
from strongroom.errors import InvalidRequest
from strongroom.fields import to_int, to_string
from strongroom.sdk import framework
from strongroom.sdk.logical import Clock, Response

#: Vault's ``framework.GenericNameRegex("name")``: a key's name.
NAME = r"(?P<name>\w(([\w\-.]+)?\w)?)"
KEY_NOT_FOUND = "encryption key not found"

#: One batch item's outcome: its response fields, or an error message.
ItemResult = dict[str, Any]


class PathGroup:
    """One group of a transit mount's paths over its ``KeyStore``; ``paths()`` are its table entries.

    ``clock`` dates new key versions; ``random_bytes(n)`` is the source of key
    material and nonces (injected so tests can pin it)."""

    def __init__(self, store: KeyStore, clock: Clock, random_bytes: RandomBytes = os.urandom):
        self.store = store
        self.clock = clock
        self.random_bytes = random_bytes

    def paths(self) -> list[framework.Path]:
        """The table entries of this group."""
        raise NotImplementedError

    def existing(self, name: str) -> Policy:
        """The key ``name``; ``InvalidRequest`` (Vault's ``encryption key not found``) when absent."""
        policy = self.store.get(name)
        if policy is None:
            raise InvalidRequest(KEY_NOT_FOUND)
        return policy


def decode_base64(name: str, value: Any, prefix: str = "") -> bytes:
    """A base64 request field (``plaintext``, ``context``, ``input``); b"" when absent."""
    text = to_string(name, value)
    if not text:
        return b""
    try:
        return b64decode(text)
    except ValueError as exc:
        raise InvalidRequest(f"{prefix}{exc}") from None


def int_field(data: dict[str, Any], name: str, default: int = 0) -> int:
    """A ``TypeInt`` field, ``default`` when absent."""
    return to_int(name, data[name]) if data.get(name) not in (None, "") else default


def batch_items(data: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``batch_input`` as a list of objects, or None when the request is a single operation."""
    raw = data.get("batch_input")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise InvalidRequest("failed to parse batch input: expected a list of objects")
    if not raw:
        raise InvalidRequest("missing batch input to process")
    return raw


def run_items(
    data: dict[str, Any],
    one: Callable[[dict[str, Any]], ItemResult],
    *,
    error_fields: ItemResult | None = None,
    batch_status: bool = True,
) -> Response:
    """Run ``one`` on the request (single) or on each ``batch_input`` item, in Vault's shapes.

    A single operation's error is the request's error; in a batch each item
    carries its own ``error`` (after ``error_fields``, Vault's empty fields) and
    its ``reference``, and a batch with an error is a 400 unless
    ``partial_failure_response_code`` says otherwise (``batch_status``: Vault's
    encrypt/decrypt/rewrap do this; hmac and verify answer 200)."""
    items = batch_items(data)
    if items is None:
        return Response(data=one(data))
    results: list[ItemResult] = []
    failed = succeeded = False
    for item in items:
        try:
            result = one(item)
            succeeded = True
        except InvalidRequest as exc:
            result = {**(error_fields or {}), "error": str(exc)}
            failed = True
        reference = item.get("reference", "")
        result["reference"] = reference if type(reference) is str else to_string("reference", reference)
        results.append(result)
    response = Response(data={"batch_results": results})
    if failed and batch_status:
        response.status = 400
        code = int_field(data, "partial_failure_response_code")
        if code and succeeded:
            if 1 <= code <= 599:
                response.status = code
            else:
                response.warnings.append(
                    "invalid HTTP response code override from partial_failure_response_code, reverting to 400"
                )
    return response


def read_response(policy: Policy, index: int = 0, warnings: list[str] | None = None) -> Response:
    """Vault's answer to a key write: the key as ``keys/<name>`` reads it."""
    return Response(data=policy.render(), index=index, warnings=list(warnings or []))
