"""Reading request bodies safely: size limits, bounded JSON objects only.

A body is read only when something needs it and parsed only once the client
is known (``Body.data(authenticated)`` is called by the core after the token
check), so a stranger's body costs at most the bytes on the wire.  Bodies for
paths that need no token (a login, sys/init, a token-less unwrap) are held to
``UNAUTHENTICATED_MAX_BODY`` before they are parsed, and to at most
``UNAUTHENTICATED_MAX_TOKENS`` strings, numbers, brackets and commas and
``UNAUTHENTICATED_MAX_DEPTH`` levels while parsed: such a request is audited
with its body (each string value HMAC'd: ~76 bytes whatever its length), so
without a bound on the number of values a 1 MiB body of short strings wrote
31 MB to the audit log and took seconds of CPU.  No unauthenticated request
costs more than a small, bounded amount of CPU and log.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from strongroom.api.json_limits import DEFAULT_LIMITS, JsonLimits, loads_bounded
from strongroom.errors import InvalidRequest, RequestTooLarge

if TYPE_CHECKING:
    import falcon

# sys/init, sys/unseal and login bodies are a few kilobytes (PGP keys included).
UNAUTHENTICATED_MAX_BODY = 1024 * 1024
# ... and a few dozen JSON tokens (sys/init with ten PGP keys: about 40).
UNAUTHENTICATED_MAX_TOKENS = 1024
UNAUTHENTICATED_MAX_DEPTH = 32
# A body is read a chunk at a time; past COOPERATE_AFTER bytes the worker's other
# connections get a turn after each chunk (time.sleep(0) is a switch under gevent).
READ_CHUNK = 64 * 1024
COOPERATE_AFTER = 256 * 1024


def read_json(
    req: falcon.Request, max_size: int, limits: JsonLimits = DEFAULT_LIMITS, *, authenticated: bool = False
) -> dict:
    """The request body as a JSON object ({} when empty)."""
    return Body(req, max_size, limits).data(authenticated)


def read_raw(req: falcon.Request, max_size: int) -> bytes:
    """The request body's bytes, within ``max_size``.

    Refuses bodies over ``max_size`` before reading them when Content-Length says
    so, and stops reading at ``max_size + 1`` bytes otherwise (chunked bodies).
    A body the server cannot de-chunk (a bad chunk size, a connection cut short)
    is a 400, never an unhandled error."""
    length = req.content_length
    if length is not None and max_size > 0 and length > max_size:
        raise RequestTooLarge(f"http: request body too large (limit {max_size} bytes)")
    limit = max_size + 1 if max_size > 0 else -1
    # Without Content-Length (chunked), bounded_stream reads nothing; the server
    # (gunicorn) de-chunks wsgi.input, which ends at the last chunk.
    stream = req.bounded_stream if length is not None else req.stream
    chunks: list[bytes] = []
    total = 0
    try:
        while limit < 0 or total < limit:
            chunk = stream.read(READ_CHUNK if limit < 0 else min(READ_CHUNK, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > COOPERATE_AFTER:
                # Bytes that arrived faster than they are copied are read without a wait, so
                # without this a large body would hold the worker's other connections.
                time.sleep(0)
    except (OSError, ValueError):  # gunicorn's InvalidChunkSize, NoMoreData ... are IOErrors
        raise InvalidRequest("malformed request body") from None
    if max_size > 0 and total > max_size:
        raise RequestTooLarge(f"http: request body too large (limit {max_size} bytes)")
    return b"".join(chunks)


def parse_json(raw: bytes, limits: JsonLimits = DEFAULT_LIMITS) -> dict:
    """A JSON object from a request body, within ``limits``; InvalidRequest for anything else."""
    if not raw.strip():
        return {}
    data = loads_bounded(raw, limits)
    if not isinstance(data, dict):
        raise InvalidRequest("failed to decode JSON input: body must be a JSON object")
    return data


class Body:
    """One request's body: read at most once, parsed at most once, each only when asked."""

    def __init__(self, req: falcon.Request, max_size: int, limits: JsonLimits):
        self._req = req
        self._max_size = max_size
        self._limits = limits
        self._raw: bytes | None = None

    def raw(self) -> bytes:
        """The bytes (read now if not yet), within the listener's ``max_request_size``."""
        if self._raw is None:
            self._raw = read_raw(self._req, self._max_size)
        return self._raw

    def data(self, authenticated: bool) -> dict:
        """The body as a JSON object; an unauthenticated one only up to ``UNAUTHENTICATED_MAX_BODY``."""
        if not authenticated and self._raw is None:
            bound = UNAUTHENTICATED_MAX_BODY if self._max_size <= 0 else min(self._max_size, UNAUTHENTICATED_MAX_BODY)
            self._raw = read_raw(self._req, bound)
        elif not authenticated and len(self._raw or b"") > UNAUTHENTICATED_MAX_BODY:
            raise RequestTooLarge(f"http: request body too large (limit {UNAUTHENTICATED_MAX_BODY} bytes)")
        return parse_json(self.raw(), self._limits if authenticated else unauthenticated_limits(self._limits))


def unauthenticated_limits(limits: JsonLimits) -> JsonLimits:
    """``limits`` tightened for a body parsed without a valid token (see the module docstring)."""

    def tighter(bound: int, ours: int) -> int:
        return ours if bound <= 0 else min(bound, ours)

    return replace(
        limits,
        max_token=tighter(limits.max_token, UNAUTHENTICATED_MAX_TOKENS),
        max_depth=tighter(limits.max_depth, UNAUTHENTICATED_MAX_DEPTH),
    )


def query_data(req: falcon.Request) -> dict:
    """Query parameters as request data (reads and lists), first value of each."""
    data = {}
    for key, value in req.params.items():
        data[key] = value[0] if isinstance(value, list) else value
    return data
