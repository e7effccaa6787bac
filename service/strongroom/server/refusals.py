"""Requests gunicorn refuses before the app sees them, answered in Vault's
``{"errors": [...]}`` envelope (used by ``server/worker.py``).

gunicorn answers a request line or headers it cannot parse (or that are over
its limits: 4094 bytes of request line, 100 header fields of at most 8190
bytes) with an HTML page of its own that quotes the client's bytes.  A node
answers the same status with a fixed message in Vault's envelope instead,
and closes the connection with a lingering close (``server/linger.py``): the
client may be sending a body still.
"""

from __future__ import annotations

import json

from gunicorn.http import errors as http_errors

# Most specific first; the client's bytes are never quoted back.
_REFUSALS: tuple[tuple[type[BaseException], int, str, str], ...] = (
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "request headers too large"),
    (http_errors.LimitRequestLine, 414, "URI Too Long", "request line too long"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "unsupported transfer coding"),
    (http_errors.InvalidRequestMethod, 400, "Bad Request", "malformed request: invalid method"),
    (http_errors.InvalidHTTPVersion, 400, "Bad Request", "malformed request: invalid HTTP version"),
    (http_errors.InvalidRequestLine, 400, "Bad Request", "malformed request: invalid request line"),
    (http_errors.InvalidHeaderName, 400, "Bad Request", "malformed request: invalid header name"),
    (http_errors.InvalidHeader, 400, "Bad Request", "malformed request: invalid header"),
    (http_errors.ObsoleteFolding, 400, "Bad Request", "malformed request: obsolete header line folding"),
    (http_errors.InvalidSchemeHeaders, 400, "Bad Request", "malformed request: contradictory scheme headers"),
    (http_errors.InvalidProxyLine, 400, "Bad Request", "malformed request: invalid PROXY protocol line"),
)


def refusal(exc: BaseException) -> bytes | None:
    """The whole response to a request gunicorn refused with ``exc``, or None
    when ``exc`` is not a refusal of the client's request (gunicorn answers)."""
    for cls, status, reason, message in _REFUSALS:
        if isinstance(exc, cls):
            body = json.dumps({"errors": [message]}).encode()
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            return head.encode() + body
    return None
