"""Bounded JSON: a request body is measured before it is parsed.

Vault 1.20.3 bounds JSON request bodies with four listener settings
(``max_json_depth``, ``max_json_string_value_length``,
``max_json_object_entry_count``, ``max_json_array_element_count``; later
releases add ``max_json_token``).  Here a scan of the raw bytes checks them
before ``json.loads`` builds a single object, so a hostile body (millions of
keys, 100,000 levels of nesting, a 20 MiB string) is refused after reading only
as much of it as proves it too large, and a within-bounds body is known to
parse in bounded time and memory.

The scan stops at the five structural characters and at quotes (numbers,
literals, colons and whitespace are skipped by the pattern engine, a string's
end is found with ``bytes.find``), so its Python loop runs once per string,
bracket or comma, and never spends long in one C call.  Every ``YIELD_EVERY`` tokens it calls ``cooperate()``
(``time.sleep(0)``: under gunicorn's gevent worker, a switch to the worker's
other connections), so even a large body never holds the worker for long.

A body whose byte counts (commas, brackets, quotes, its length: C-speed
``bytes.count``) already prove it within every bound skips the scan
(``within_limits_by_count``): with the defaults, any body with fewer than
10,000 commas, at most 300 opening brackets and under 1 MiB.

The parse then refuses what Go's ``encoding/json`` refuses and Python's parser
would accept: ``NaN``/``Infinity`` literals, numbers that overflow a float, and
lone UTF-16 surrogate escapes (a ``\\ud800`` decoded into a string cannot be
encoded again: stored, it would break every later read).  A body that passed
the scan is parsed by orjson, which refuses all three itself; a body orjson
refuses, or one with a run of digits it might round (see ``jsoncodec``), is
parsed by ``json`` as before, so values and error messages are unchanged.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from strongroom import jsoncodec
from strongroom.errors import InvalidRequest

if TYPE_CHECKING:
    from strongroom.config import ListenerConfig

# What the scan stops at: a structural character or the quote that opens a string
# (whose end bytes.find locates at memchr speed, however long the string).
_STRUCTURE = re.compile(rb'[\[\]{},"]')
# A \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one, or a low half alone;
# the escape itself must not be escaped (an odd run of backslashes before "u").
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?:^|[^\\])(?:\\\\)*(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)

YIELD_EVERY = 4096
_INVALID = "failed to decode JSON input: invalid JSON in request body"


@dataclass(frozen=True)
class JsonLimits:
    """The bounds of one listener; 0 or less turns a bound off (Vault's defaults)."""

    max_depth: int = 300
    max_string_value_length: int = 1024 * 1024
    max_object_entry_count: int = 10000
    max_array_element_count: int = 10000
    max_token: int = 500000

    @classmethod
    def of(cls, listener: ListenerConfig) -> JsonLimits:
        """The bounds a ``ListenerConfig`` sets."""
        return cls(
            max_depth=listener.max_json_depth,
            max_string_value_length=listener.max_json_string_value_length,
            max_object_entry_count=listener.max_json_object_entry_count,
            max_array_element_count=listener.max_json_array_element_count,
            max_token=listener.max_json_token,
        )


# The defaults as one shared (frozen) value, for parameters that may be left out.
DEFAULT_LIMITS = JsonLimits()


def _cooperate() -> None:
    time.sleep(0)


# One flat loop on purpose: it runs once per string, bracket or comma of every body, and a call per
# token would cost more than the scan itself (see the module docstring).
def check_limits(raw: bytes, limits: JsonLimits, cooperate: Callable[[], None] = _cooperate) -> None:  # noqa: C901
    """Raise ``InvalidRequest`` when ``raw`` exceeds a bound or
    when its strings show it is not JSON at all."""
    max_depth, max_string = limits.max_depth, limits.max_string_value_length
    max_entries, max_elements, max_token = (
        limits.max_object_entry_count,
        limits.max_array_element_count,
        limits.max_token,
    )
    kinds: list[int] = []  # 0x7B "{" or 0x5B "[" per open container
    commas: list[int] = []
    tokens = 0
    search, find = _STRUCTURE.search, raw.find
    match = search(raw)
    while match is not None:
        tokens += 1
        if tokens % YIELD_EVERY == 0:
            if 0 < max_token < tokens:
                raise _over(f"JSON input exceeded maximum number of tokens ({max_token})")
            cooperate()
        start = match.start()
        first = raw[start]
        if first == 0x22:  # a string: its end is the next quote not escaped by an odd run of backslashes
            end, escapes = find(b'"', start + 1), 0
            while end > 0 and _escaped(raw, end):
                escapes += 1
                if escapes % YIELD_EVERY == 0:
                    cooperate()
                end = find(b'"', end + 1)
            if end < 0:
                raise InvalidRequest(_INVALID)
            if 0 < max_string < end - start - 1 and _decoded_length(raw[start : end + 1], max_string) > max_string:
                raise _over(f"JSON string value exceeded maximum allowed length of {max_string} bytes")
            match = search(raw, end + 1)
            continue
        if first == 0x2C:  # a comma: one more entry (or element) in the innermost container
            if commas:  # a comma outside any container is not JSON: json.loads says so
                commas[-1] += 1
                if kinds[-1] == 0x7B:
                    if 0 < max_entries <= commas[-1]:
                        raise _over(f"JSON object exceeded maximum allowed number of entries ({max_entries})")
                elif 0 < max_elements <= commas[-1]:
                    raise _over(f"JSON array exceeded maximum allowed number of elements ({max_elements})")
        elif first in (0x7B, 0x5B):
            kinds.append(first)
            commas.append(0)
            if 0 < max_depth < len(kinds):
                raise _over(f"JSON input exceeded maximum allowed nesting depth of {max_depth}")
        elif kinds:
            kinds.pop()
            commas.pop()
        match = search(raw, start + 1)
    if 0 < max_token < tokens:
        raise _over(f"JSON input exceeded maximum number of tokens ({max_token})")


def _escaped(raw: bytes, quote: int) -> bool:
    """Whether the quote at ``quote`` is preceded by an odd run of backslashes."""
    run = 0
    while raw[quote - 1 - run] == 0x5C:
        run += 1
    return run % 2 == 1


def _decoded_length(token: bytes, bound: int) -> int:
    """UTF-8 bytes of a JSON string token once decoded; a string over six times
    ``bound`` is over it undecoded (an escape shrinks at most sixfold)."""
    if len(token) - 2 > 6 * bound:
        return len(token)
    try:
        return len(json.loads(token).encode("utf-8", "surrogatepass"))
    except ValueError:
        raise InvalidRequest(_INVALID) from None


def _over(reason: str) -> InvalidRequest:
    """Over a bound: 400, as Vault answers its JSON limits."""
    return InvalidRequest(f"failed to parse JSON input: {reason}")


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def within_limits_by_count(raw: bytes, limits: JsonLimits) -> bool:
    """Whether counting ``raw``'s bytes (in C) already proves it within every
    bound of ``limits``, so the scan can be skipped.  Every count is an upper
    bound of what the scan would measure, since the same bytes inside strings
    only make it larger: no container holds more entries or elements than the
    body has commas plus one, none is deeper than the body has opening
    brackets, no string is longer than the body, and the scan's tokens (each
    string, bracket and comma) are at most its quotes, brackets and commas.
    Most bodies (a KV write, a transit batch of 100) are proven so."""
    if 0 < limits.max_string_value_length < len(raw):
        return False
    commas = raw.count(b",")
    for bound in (limits.max_object_entry_count, limits.max_array_element_count):
        if 0 < bound <= commas:
            return False
    opening = raw.count(b"{") + raw.count(b"[")
    if 0 < limits.max_depth < opening:
        return False
    if limits.max_token > 0:
        tokens = raw.count(b'"') + opening + raw.count(b"}") + raw.count(b"]") + commas
        if tokens > limits.max_token:
            return False
    return True


def loads_bounded(raw: bytes, limits: JsonLimits, cooperate: Callable[[], None] = _cooperate) -> Any:
    """``raw`` parsed as JSON within ``limits``, refusing what Go's parser refuses."""
    if not within_limits_by_count(raw, limits):
        check_limits(raw, limits, cooperate)
    if b"\\u" in raw and _LONE_SURROGATE.search(raw):
        raise InvalidRequest("failed to decode JSON input: invalid Unicode escape (lone surrogate) in request body")
    if not jsoncodec.long_digits(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard parser below says what is wrong, in the words it always used
    try:
        # Strict UTF-8 first: json.loads of bytes would let UTF-8-encoded surrogates through.
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise _over("JSON input exceeded maximum allowed nesting depth") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(_INVALID) from None
