"""Audit entries in Vault's JSON format, with every sensitive string HMAC'd.

https://developer.hashicorp.com/vault/docs/audit#format

The shapes mirror Vault's ``audit.AuditRequestEntry`` / ``AuditResponseEntry``
(checked against the lines a real OpenBao 2.7 server writes): keys appear in
Vault's order and empty values are left out, as Go's ``omitempty`` does.

Hashing follows Vault's ``audit/hashstructure.go``: every string *value* in
request and response data is replaced by ``hmac-sha256:<hex>`` (map keys are
not), recursively through maps and lists, non-string leaves untouched; so are
the client token and, unless ``hmac_accessor`` is off, its accessor, in the
request and in both ``auth`` blocks.  ``log_raw`` turns all of it off.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from strongroom.core.wrapping import wrap_ttl_seconds
from strongroom.sdk.logical import LIST, Request, Response
from strongroom.timefmt import rfc3339

Hasher = Callable[[str], str]

# Vault's AuditAuth fields, in its order.  Only client_token and accessor are hashed.
_AUTH_KEYS = (
    "client_token",
    "accessor",
    "display_name",
    "policies",
    "token_policies",
    "identity_policies",
    "external_namespace_policies",
    "no_default_policy",
    "policy_results",
    "metadata",
    "num_uses",
    "remaining_uses",
    "entity_id",
    "entity_created",
    "token_type",
    "token_ttl",
    "token_issue_time",
)

# What Vault writes for the probe on ``sys/audit/<path>`` before it enables a device.
TEST_PATH = "sys/audit/test"


@dataclass(frozen=True)
class FormatConfig:
    """How one device renders entries (its ``log_raw``, ``hmac_accessor``,
    ``elide_list_responses`` options)."""

    raw: bool = False
    hmac_accessor: bool = True
    elide_list_responses: bool = False


def plain(value: Any) -> Any:
    """``value`` as JSON types, the way Vault's JSON round-trip copy sees it:
    times as RFC 3339, bytes as base64, tuples and sets as lists, map keys as strings."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    return str(value)


def hash_structure(value: Any, hasher: Hasher, non_hmac_keys: Collection[str] = (), key: str = "") -> Any:
    """Replace every string value (not map keys) by ``hasher(value)``, except
    strings whose nearest enclosing map key is in ``non_hmac_keys`` (Vault's
    ``audit_non_hmac_*_keys``).  ``value`` must already be ``plain``."""
    if isinstance(value, dict):
        return {k: hash_structure(v, hasher, non_hmac_keys, k) for k, v in value.items()}
    if isinstance(value, list):
        return [hash_structure(v, hasher, non_hmac_keys, key) for v in value]
    if isinstance(value, str) and key not in non_hmac_keys:
        return hasher(value)
    return value


def _compact(entry: dict) -> dict:
    """Drop empty values, as Go's ``omitempty`` does (``false``, 0, "", empty, None)."""
    return {k: v for k, v in entry.items() if v not in (None, "", 0, False, [], {})}


def _auth_block(auth: dict | None, config: FormatConfig, hasher: Hasher, *, response: bool = False) -> dict:
    auth = plain(auth or {})
    block = {k: auth.get(k) for k in _AUTH_KEYS}
    if response and not block["token_ttl"]:
        block["token_ttl"] = auth.get("lease_duration")
    if not config.raw:
        if block["client_token"]:
            block["client_token"] = hasher(block["client_token"])
        if block["accessor"] and config.hmac_accessor:
            block["accessor"] = hasher(block["accessor"])
    if not block["token_type"]:
        block["token_type"] = "default"  # Go's zero TokenType
    return _compact(block)


def _mount_class(req: Request) -> str:
    if not req.mount_type:
        return ""
    return "auth" if req.mount_point.startswith("auth/") else "secret"


def _request_block(
    req: Request, auth: dict | None, config: FormatConfig, hasher: Hasher, non_hmac_keys: Collection[str]
) -> dict:
    token = req.client_token or ""
    accessor = (auth or {}).get("accessor") or getattr(req.token, "accessor", "") or ""
    data = plain(req.data or {})
    if not config.raw:
        token = hasher(token) if token else ""
        accessor = hasher(accessor) if accessor and config.hmac_accessor else accessor
        data = hash_structure(data, hasher, non_hmac_keys)
    block = {
        "id": req.request_id,
        "operation": req.operation,
        "mount_point": req.mount_point,
        "mount_type": req.mount_type,
        "mount_accessor": req.mount_accessor,
        "mount_class": _mount_class(req),
        "client_token": token,
        "client_token_accessor": accessor,
        "namespace": {"id": "root"},
        "path": req.path,
        "data": data,
        "remote_address": req.remote_addr,
        "wrap_ttl": wrap_ttl_seconds(req.wrap_ttl),  # valid: Core.handle refuses a bad header first
    }
    return _compact(block)


def _elide_list_data(data: dict) -> dict:
    """Vault's ``elide_list_responses``: list results become their counts."""
    data = dict(data)
    if isinstance(data.get("keys"), list):
        data["keys"] = len(data["keys"])
    if isinstance(data.get("key_info"), dict):
        data["key_info"] = len(data["key_info"])
    return data


def _response_data(resp: Response | None, error: str) -> dict | None:
    if resp is None:
        # Vault's HTTP layer turns an error into a response carrying it.
        return {"error": error} if error else None
    if resp.data is not None:
        return plain(resp.data)
    if isinstance(resp.raw, dict):
        return plain(resp.raw)
    if resp.raw is not None:
        return {"http_raw_body": plain(resp.raw)}
    return None


def _response_block(
    req: Request,
    resp: Response | None,
    error: str,
    config: FormatConfig,
    hasher: Hasher,
    non_hmac_keys: Collection[str],
) -> dict:
    data = _response_data(resp, error)
    if data is not None and config.elide_list_responses and req.operation == LIST:
        data = _elide_list_data(data)
    if data is not None and not config.raw:
        data = hash_structure(data, hasher, non_hmac_keys)
    resp_auth = _auth_block(resp.auth, config, hasher, response=True) if resp is not None and resp.auth else None
    block = {
        "auth": resp_auth,
        "mount_point": req.mount_point,
        "mount_type": req.mount_type,
        "mount_accessor": req.mount_accessor,
        "mount_class": _mount_class(req),
        "secret": {"lease_id": resp.lease_id} if resp is not None and resp.lease_id else None,
        "data": data,
        "warnings": list(resp.warnings) if resp is not None else None,
    }
    return _compact(block)


def request_entry(
    now: datetime,
    req: Request,
    auth: dict | None,
    error: str,
    config: FormatConfig,
    hasher: Hasher,
    non_hmac_keys: Collection[str] = (),
) -> dict:
    """The ``"type": "request"`` entry Vault writes before dispatching ``req``."""
    return _compact(
        {
            "time": rfc3339(now),
            "type": "request",
            "auth": _auth_block(auth, config, hasher),
            "request": _request_block(req, auth, config, hasher, non_hmac_keys),
            "error": error,
        }
    )


def response_entry(
    now: datetime,
    req: Request,
    auth: dict | None,
    resp: Response | None,
    error: str,
    config: FormatConfig,
    hasher: Hasher,
    non_hmac_request_keys: Collection[str] = (),
    non_hmac_response_keys: Collection[str] = (),
) -> dict:
    """The ``"type": "response"`` entry: the request again, plus what came back."""
    return _compact(
        {
            "time": rfc3339(now),
            "type": "response",
            "auth": _auth_block(auth, config, hasher),
            "request": _request_block(req, auth, config, hasher, non_hmac_request_keys),
            "response": _response_block(req, resp, error, config, hasher, non_hmac_response_keys),
            "error": error,
        }
    )


def test_entry(now: datetime, request_id: str) -> dict:
    """The probe Vault writes to a new device before enabling it (no token, no data)."""
    return {
        "time": rfc3339(now),
        "type": "request",
        "auth": {"token_type": "default"},
        "request": {"id": request_id, "operation": "update", "namespace": {"id": "root"}, "path": TEST_PATH},
    }


def encode(entry: dict, prefix: str = "") -> bytes:
    """One line: ``prefix`` + compact JSON + newline.

    JSON escapes control characters, so a value can never break the line.  A
    lone surrogate (possible in Python strings, not in UTF-8) is written as its
    ``\\uXXXX`` escape, which keeps the line valid JSON."""
    text = json.dumps(entry, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (prefix + text + "\n").encode("utf-8", "backslashreplace")
