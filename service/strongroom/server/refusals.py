"""Requests refused before the app sees them, answered in Vault's
``{"errors": [...]}`` envelope (used by ``server/front.py``).

A request line or headers that cannot be parsed, or that are over the
front's limits, get a fixed message in Vault's envelope, never the client's
bytes quoted back, and the connection is closed with a lingering close
(``server/linger.py``): the client may be sending a body still.
"""

from __future__ import annotations

import json

import httptools


class Refused(Exception):
    """A request the front refuses: ``status`` and ``reason`` of the answer,
    ``message`` its only error."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def response(self) -> bytes:
        """The whole answer, closing the connection."""
        body = json.dumps({"errors": [self.message]}).encode()
        head = (
            f"HTTP/1.1 {self.status} {self.reason}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


# llhttp's reasons (what its errors say), most specific first.
_BY_REASON: tuple[tuple[str, Refused], ...] = (
    ("transfer-encoding` header value", Refused(400, "Bad Request", "malformed request: invalid header")),
    ("invalid `transfer-encoding`", Refused(501, "Not Implemented", "unsupported transfer coding")),
    ("content-length", Refused(400, "Bad Request", "malformed request: invalid header")),
    ("whitespace after header value", Refused(400, "Bad Request", "malformed request: obsolete header line folding")),
    ("header", Refused(400, "Bad Request", "malformed request: invalid header")),
    ("version", Refused(400, "Bad Request", "malformed request: invalid HTTP version")),
    ("method", Refused(400, "Bad Request", "malformed request: invalid method")),
)
_REQUEST_LINE = Refused(400, "Bad Request", "malformed request: invalid request line")


def refused_by_parser(exc: httptools.HttpParserError) -> Refused:
    """The refusal of a head llhttp could not parse (``exc``)."""
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        return Refused(400, "Bad Request", "malformed request: invalid method")
    if isinstance(exc, httptools.HttpParserInvalidURLError):
        return _REQUEST_LINE
    reason = str(exc).lower()
    for fragment, refusal in _BY_REASON:
        if fragment in reason:
            return refusal
    return _REQUEST_LINE
