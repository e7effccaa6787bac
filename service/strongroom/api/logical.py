"""The catch-all resource: every ``/v1/<path>`` that is not a local sys endpoint.

https://developer.hashicorp.com/vault/api-docs#http-verbs — GET is read
(``?list=true`` is LIST), LIST is list, POST/PUT are create/update (the core
decides which), PATCH is patch, DELETE is delete.
"""

from __future__ import annotations

from strongroom.api.body import query_data, read_json
from strongroom.api.render import render_response
from strongroom.core import logical
from strongroom.core.logical import Request
from strongroom.errors import InvalidRequest, MethodNotAllowed

METHOD_OPERATIONS = {
    "GET": logical.READ,
    "LIST": logical.LIST,
    "POST": logical.UPDATE,
    "PUT": logical.UPDATE,
    "PATCH": logical.PATCH,
    "DELETE": logical.DELETE,
}


def client_token(req) -> str:
    """``X-Vault-Token``, else ``Authorization: Bearer``."""
    token = req.get_header("X-Vault-Token")
    if token:
        return token.strip()
    authorization = req.get_header("Authorization") or ""
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return ""


def build_request(req, path: str, max_request_size: int) -> Request:
    """The logical request for an HTTP request on ``/v1/<path>``."""
    operation = METHOD_OPERATIONS.get(req.method)
    if operation is None:
        raise MethodNotAllowed()
    if operation == logical.READ and req.get_param_as_bool("list", default=False):
        operation = logical.LIST
    if operation in (logical.READ, logical.LIST):
        data = query_data(req)
        data.pop("list", None)
    else:
        data = read_json(req, max_request_size)
        if operation == logical.PATCH:
            content_type = (req.content_type or "").split(";")[0].strip()
            if content_type and content_type not in ("application/merge-patch+json", "application/json"):
                raise InvalidRequest(f"PATCH requires Content-Type application/merge-patch+json, got {content_type}")
    if "\x00" in path or any(segment == ".." for segment in path.split("/")):
        raise InvalidRequest("invalid path")
    return Request(
        operation=operation,
        path=path,
        data=data,
        client_token=client_token(req),
        headers={k.lower(): v for k, v in req.headers.items()},
        remote_addr=req.remote_addr or "",
    )


class LogicalResource:
    """Routes every other ``/v1/`` path through ``Core.handle``."""

    def __init__(self, core, max_request_size: int):
        self._core = core
        self._max_request_size = max_request_size

    def __call__(self, req, resp, path: str = ""):
        path = req.path[len("/v1/"):]
        lreq = build_request(req, path, self._max_request_size)
        req.context.lreq = lreq
        lresp = self._core.handle(lreq)
        render_response(resp, lreq, lresp)
