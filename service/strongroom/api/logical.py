"""The catch-all resource: every ``/v1/<path>`` that is not a local sys endpoint.

https://developer.hashicorp.com/vault/api-docs#http-verbs — GET is read
(``?list=true`` is LIST), LIST is list, POST/PUT are create/update (the core
decides which), PATCH is patch, DELETE is delete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.api.body import Body, query_data
from strongroom.api.forward import Forwarder
from strongroom.api.json_limits import DEFAULT_LIMITS, JsonLimits
from strongroom.api.paths import logical_path
from strongroom.api.render import render_response
from strongroom.errors import InvalidRequest, MethodNotAllowed, ReadOnly, UnsupportedMediaType
from strongroom.sdk import logical
from strongroom.sdk.logical import Request

if TYPE_CHECKING:
    import falcon

    from strongroom.core.core import Core

# Answered by the node that receives them, whatever its role (DESIGN.md, "HA over Consul").
LOCAL_PATHS = frozenset({"sys/seal"})
#: How long a standby that knows no active node waits for its node core's news
#: before answering 503: its node core may know already (an election a moment
#: ago: right after the unseal that opened the node, or a failover).
LEADER_WAIT_SECONDS = 2.0

METHOD_OPERATIONS = {
    "GET": logical.READ,
    "LIST": logical.LIST,
    "POST": logical.UPDATE,
    "PUT": logical.UPDATE,
    "PATCH": logical.PATCH,
    "DELETE": logical.DELETE,
}


def client_token(req: falcon.Request) -> str:
    """``X-Vault-Token``, else ``Authorization: Bearer``."""
    token = req.get_header("X-Vault-Token")
    if token:
        return token.strip()
    authorization = req.get_header("Authorization") or ""
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return ""


def build_request(req: falcon.Request, path: str) -> Request:
    """The logical request for an HTTP request on ``/v1/<path>``, without its
    body: the core parses that (``Body.data``) once the client is known."""
    operation = METHOD_OPERATIONS.get(req.method)
    if operation is None:
        raise MethodNotAllowed()
    if operation == logical.READ and req.get_param_as_bool("list", default=False):
        operation = logical.LIST
    data = {}
    if req.get_param("help"):
        # Vault's path-help: any method with ?help=<non-empty> (http/help.go).
        operation = logical.HELP
    elif operation in logical.READ_OPERATIONS:
        data = query_data(req)
        data.pop("list", None)
    elif operation == logical.PATCH:
        content_type = (req.content_type or "").split(";")[0].strip()
        if content_type != "application/merge-patch+json":
            raise UnsupportedMediaType("PATCH requires Content-Type of application/merge-patch+json")
    return Request(
        operation=operation,
        path=path,
        data=data,
        client_token=client_token(req),
        headers={k.lower(): v for k, v in req.headers.items()},
        remote_addr=req.remote_addr or "",
        wrap_ttl=wrap_request(req),
    )


def wrap_request(req: falcon.Request) -> str:
    """``X-Vault-Wrap-TTL`` as sent (the core parses and enforces it); JWT-format
    wrapping (``X-Vault-Wrap-Format: jwt``) is refused before anything runs."""
    if (req.get_header("X-Vault-Wrap-Format") or "").strip().lower() == "jwt":
        raise InvalidRequest("JWT response wrapping is not supported by Strongroom; the request was not run")
    return (req.get_header("X-Vault-Wrap-TTL") or "").strip()


class LogicalResource:
    """Routes every other ``/v1/`` path through ``Core.handle``.

    On the active node (or without HA) requests run here.  A standby forwards
    them to the active node.  A performance standby runs them here against
    read-only storage and forwards the original request as soon as one tries to
    write.  A request carrying an ``X-Vault-Index`` newer than this worker has
    seen drops the cached tables first, so it never reads older state than the
    write that produced the index.
    """

    def __init__(
        self, core: Core, max_request_size: int, forwarder: Forwarder, json_limits: JsonLimits = DEFAULT_LIMITS
    ) -> None:
        self._core = core
        self._max_request_size = max_request_size
        self._forwarder = forwarder
        self._json_limits = json_limits
        self._seen_index = 0

    def __call__(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        path = logical_path(req.env.get("PATH_INFO", ""))
        lreq = build_request(req, path)
        req.context.lreq = lreq
        body = Body(req, self._max_request_size, self._json_limits)
        parse = None if lreq.operation in logical.READ_OPERATIONS else body.data
        ha = self._core.ha_state()
        if path not in LOCAL_PATHS and self._core.awaits_leader(ha):
            ha = self._core.await_leader(ha, LEADER_WAIT_SECONDS)  # the node core may know more already
        role = ha["role"]
        if role in ("active", "sealed") or path in LOCAL_PATHS:
            render_response(resp, lreq, self._core.handle_indexed(lreq, parse))
            return
        leader = ha.get("leader_address", "")
        redirect = bool(req.get_header("X-Vault-No-Request-Forwarding"))
        if role != "perfstandby" or (req.get_header("X-Vault-Forward") or "").lower() == "active-node":
            self._send_to_active(req, resp, body, leader, redirect, "standby")
            return
        self._catch_up(req)
        try:
            lresp = self._core.handle(lreq, parse)
        except ReadOnly:
            self._send_to_active(req, resp, body, leader, redirect, "write")
            return
        render_response(resp, lreq, lresp)

    def _send_to_active(
        self, req: falcon.Request, resp: falcon.Response, body: Body, leader: str, redirect: bool, reason: str
    ) -> None:
        if redirect:
            self._forwarder.redirect(req, resp, leader)
        else:
            raw = b"" if req.method in ("GET", "HEAD", "LIST") else body.raw()
            self._forwarder.forward(req, resp, raw, leader, reason)

    def _catch_up(self, req: falcon.Request) -> None:
        header = req.get_header("X-Vault-Index")
        # Per request: the storage cache of a standby serves it only once its change log reached the index.
        self._core.require_index(0)
        if not header:
            return
        try:
            index = int(header)
        except ValueError:
            raise InvalidRequest("invalid X-Vault-Index header") from None
        self._core.require_index(index)
        if index > self._seen_index:
            # Data is read from storage on every request; only cached tables can
            # lag, so re-reading them makes this request as new as the index.
            self._core.invalidate(["*"])
            self._seen_index = index
