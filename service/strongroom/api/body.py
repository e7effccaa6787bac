"""Reading request bodies safely: size limits, JSON objects only."""

from __future__ import annotations

import json

from strongroom.errors import InvalidRequest, RequestTooLarge


def read_json(req, max_size: int) -> dict:
    """The request body as a JSON object ({} when empty)."""
    return parse_json(read_raw(req, max_size))


def read_raw(req, max_size: int) -> bytes:
    """The request body's bytes, within ``max_size``.

    Refuses bodies over ``max_size`` before reading them when Content-Length says
    so, and stops reading at ``max_size + 1`` bytes otherwise (chunked bodies)."""
    length = req.content_length
    if length is not None and max_size > 0 and length > max_size:
        raise RequestTooLarge(f"http: request body too large (limit {max_size} bytes)")
    limit = max_size + 1 if max_size > 0 else -1
    # Without Content-Length (chunked), bounded_stream reads nothing; the server
    # (gunicorn) de-chunks wsgi.input, which ends at the last chunk.
    stream = req.bounded_stream if length is not None else req.stream
    raw = stream.read(limit) if limit > 0 else stream.read()
    if max_size > 0 and len(raw) > max_size:
        raise RequestTooLarge(f"http: request body too large (limit {max_size} bytes)")
    return raw


def parse_json(raw: bytes) -> dict:
    """A JSON object from a request body; InvalidRequest for anything else."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("failed to decode JSON input: invalid JSON in request body") from None
    if not isinstance(data, dict):
        raise InvalidRequest("failed to decode JSON input: body must be a JSON object")
    return data


def query_data(req) -> dict:
    """Query parameters as request data (reads and lists), first value of each."""
    data = {}
    for key, value in req.params.items():
        data[key] = value[0] if isinstance(value, list) else value
    return data
