"""``sys/health`` and ``sys/leader``: served while sealed, read by HAProxy.

https://developer.hashicorp.com/vault/api-docs/system/health
https://developer.hashicorp.com/vault/api-docs/system/leader
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import falcon

from strongroom.errors import InvalidRequest
from strongroom.fields import parse_go_bool

if TYPE_CHECKING:
    from strongroom.core.core import Core

DEFAULT_CODES = {
    "activecode": 200,
    "standbycode": 429,
    "drsecondarycode": 472,
    "haunhealthycode": 474,
    "performancestandbycode": 473,
    "removedcode": 530,
    "sealedcode": 503,
    "uninitcode": 501,
}

# A code must be a final HTTP status.  Vault takes any integer: 1xx goes out as an
# informational response followed by an implicit 200 (HAProxy answers 502), and
# Go's server drops the connection for anything outside 100-999.
MIN_CODE, MAX_CODE = 200, 599
_ATOI = re.compile(r"[+-]?[0-9]+")  # Go's strconv.Atoi: no spaces, no other digits


def _flag(req: falcon.Request, name: str) -> bool:
    """``standbyok``/``perfstandbyok`` as Vault reads them, with ``parseutil.ParseBool``:
    Go's ``strconv.ParseBool``, and an empty value (a bare ``?standbyok``) is false, as
    mapstructure decodes ""; anything else is a 400 (OpenBao 2.7.2 answers 400 too)."""
    if name not in req.params:
        return False
    value = req.params[name]
    value = value[0] if isinstance(value, list) else value
    if value == "":
        return False
    try:
        return parse_go_bool(value)
    except ValueError:
        raise InvalidRequest(f"bad value for {name} parameter: {value}") from None


def _code(req: falcon.Request, name: str) -> int:
    """The status code a ``*code`` parameter asks for, or its default; a code
    that is not an integer, or not a final status (200-599), is a 400."""
    if name not in req.params:
        return DEFAULT_CODES[name]
    value = req.params[name]
    value = value[0] if isinstance(value, list) else value
    if not _ATOI.fullmatch(value):
        raise InvalidRequest(f"unable to parse {name} code: {value}")
    code = int(value) if len(value) <= 10 else MAX_CODE + 1  # no int() of a 5000-digit string
    if not MIN_CODE <= code <= MAX_CODE:
        raise InvalidRequest(f"invalid {name} code: {value}: must be a status code from {MIN_CODE} to {MAX_CODE}")
    return code


def health_status(health: dict, req: falcon.Request) -> int:
    """The status code Vault's ``getSysHealth`` picks for this state and these parameters.

    Every code parameter is validated on every request, as Vault does."""
    for name in DEFAULT_CODES:
        _code(req, name)
    for name in ("standbyok", "perfstandbyok"):
        _flag(req, name)
    if not health["initialized"]:
        return _code(req, "uninitcode")
    if health["sealed"]:
        return _code(req, "sealedcode")
    if health["performance_standby"]:
        return _code(req, "activecode") if _flag(req, "perfstandbyok") else _code(req, "performancestandbycode")
    if health["standby"]:
        return _code(req, "activecode") if _flag(req, "standbyok") else _code(req, "standbycode")
    return _code(req, "activecode")


class HealthResource:
    """GET and HEAD, no token needed."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        health = self._core.health()
        status = health_status(health, req)
        resp.status = falcon.code_to_http_status(status)
        if status in (204, 304):
            return  # a response that must not carry a body (Go drops it too)
        resp.media = {
            "initialized": health["initialized"],
            "sealed": health["sealed"],
            "standby": health["standby"],
            "performance_standby": health["performance_standby"],
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()),
            "version": health["version"],
            "enterprise": False,
            "cluster_name": health["cluster_name"],
            "cluster_id": health["cluster_id"],
            "echo_duration_ms": 0,
            "clock_skew_ms": 0,
        }

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.code_to_http_status(health_status(self._core.health(), req))


class LeaderResource:
    """GET ``sys/leader``."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._core.require_unsealed()
        resp.media = self._core.leader()
