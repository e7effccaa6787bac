"""Domain errors to HTTP, in one table, in Vault's ``{"errors": [...]}`` envelope."""

from __future__ import annotations

import logging
from typing import Any

import falcon

from strongroom import errors

log = logging.getLogger("strongroom.api")

# Most specific first: the first class an error is an instance of decides.
STATUS = (
    (errors.CheckAndSetMismatch, 400),
    (errors.AlreadyInitialized, 400),
    (errors.InvalidRequest, 400),
    (errors.PermissionDenied, 403),
    (errors.UnsupportedPath, 404),
    (errors.NotFound, 404),
    (errors.MethodNotAllowed, 405),
    (errors.PreconditionFailed, 412),
    (errors.RequestTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.AuditFailed, 500),
    (errors.IntegrityError, 500),
    (errors.Sealed, 503),
    (errors.NotInitialized, 503),
    (errors.StandbyNoLeader, 503),
    (errors.StorageUnavailable, 503),
    (errors.LockLost, 503),
    (errors.ReadOnly, 503),
    # Callers retry conflicts; one that escapes is a bug, but the client may retry too.
    (errors.WriteConflict, 503),
)


def status_for(exc: errors.StrongroomError) -> int:
    """The HTTP status of a domain error."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def render_error(resp: falcon.Response, status: int, messages: list[str]) -> None:
    """Vault's error envelope."""
    resp.status = falcon.code_to_http_status(status)
    resp.media = {"errors": messages}


def handle_domain_error(
    req: falcon.Request, resp: falcon.Response, exc: errors.StrongroomError, params: dict[str, Any]
) -> None:
    """Falcon error handler for ``StrongroomError``."""
    status = status_for(exc)
    if status >= 500 and not isinstance(exc, (errors.Sealed, errors.StandbyNoLeader, errors.NotInitialized)):
        log.warning("request %s %s failed: %s", req.method, req.path, type(exc).__name__)
    render_error(resp, status, exc.messages)


def handle_http_error(
    req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError, params: dict[str, Any]
) -> None:
    """Falcon's own errors (bad method, malformed header...) in Vault's envelope."""
    status = int(exc.status_code if hasattr(exc, "status_code") else str(exc.status).split()[0])
    message = exc.description or exc.title or "error"
    if status == 404:
        message = "unsupported path"
    elif status == 405:
        message = "unsupported operation"
    render_error(resp, status, [message])
    if exc.headers:
        resp.set_headers(exc.headers)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]) -> None:
    """Anything else: 500 with no detail for the client; the type (never values) in the log."""
    log.exception("unhandled error in %s %s", req.method, req.path)
    render_error(resp, 500, ["internal error"])


def install(app: falcon.App) -> None:
    """Register the handlers: most general first (Falcon picks the most specific)."""
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(errors.StrongroomError, handle_domain_error)
