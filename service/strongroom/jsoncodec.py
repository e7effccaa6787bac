"""JSON on the hot paths: orjson where it gives the same values, the standard library where not.

Every KV request parses a body or a stored document and renders an answer;
the standard library's encoder and decoder were about a tenth of a worker's
time under write load (see bench/README.md, "Where the time goes").  orjson
does the same work several times faster, but it differs from ``json`` in
three ways that clients or stored data could notice, and each is handed back
to ``json`` here:

* integers beyond 64 bits: orjson parses them as floats (precision lost) and
  refuses to encode them.  It parses every integer from -2**63 to 2**64 - 1
  exactly, so a document with a run of 20 or more digits, or of 19 after a
  minus sign, is parsed by ``json`` (such a run may also sit in a string: that
  costs only speed), and an encoding orjson refuses is done by ``json``.  A
  nanosecond timestamp (19 digits: KV v2 metadata holds one per version) is
  not such a run;
* what orjson refuses to parse or encode at all (``NaN``, ``1e400``, lone
  surrogates, non-string keys, deep nesting): the ``json`` call gives the
  value or the error it always gave, so callers keep their error handling;
* orjson writes floats in their shortest form without a ``+`` in the
  exponent (``1e16`` where ``json`` writes ``1e+16``): the same number for
  every JSON parser.

Output is compact (``,`` and ``:`` without spaces, as Vault's Go encoder
writes), UTF-8, non-ASCII characters unescaped, keys in insertion order (or
sorted with ``dumps_sorted``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# A run of digits that may be an integer orjson cannot hold exactly (2**64 has 20 digits, -2**63 - 1
# has 19 after its minus sign), found by mapping every digit to "0", the minus sign to itself and
# everything else to " " (one C pass) and searching for the runs: a regular expression such as
# -?[0-9]{19} costs ten times more on digit-rich documents (timestamps).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2D if b == 0x2D else 0x20 for b in range(256))
_DIGITS_ONLY_STR = str.maketrans({chr(c): "0" for c in range(0x30, 0x3A)})
_LONG_RUN, _LONG_NEGATIVE = b"0" * 20, b"-" + b"0" * 19
_LONG_RUN_STR, _LONG_NEGATIVE_STR = "0" * 20, "-" + "0" * 19


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, keys in insertion order."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dumps_sorted(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON with every object's keys sorted."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def loads(raw: bytes | str) -> Any:
    """The value of a JSON document, exactly as ``json.loads`` gives it (same values, same errors)."""
    if isinstance(raw, bytes):
        if not long_digits(raw):
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
        return json.loads(raw.decode("utf-8"))
    candidates = _long_candidates(raw)
    if _LONG_RUN_STR not in candidates and _LONG_NEGATIVE_STR not in candidates:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


def long_digits(raw: bytes) -> bool:
    """Whether ``raw`` holds a run of digits orjson might not parse exactly (see the module docstring)."""
    digits = raw.translate(_DIGITS_ONLY)
    return _LONG_RUN in digits or _LONG_NEGATIVE in digits


def _long_candidates(text: str) -> str:
    """``text`` with every digit turned to "0" (other characters kept: they are never "0")."""
    return text.translate(_DIGITS_ONLY_STR)
