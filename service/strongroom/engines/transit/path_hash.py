"""``hash(/<algorithm>)``: a plain digest of base64 input.

https://openbao.org/api-docs/secret/transit/#hash-data
"""

from __future__ import annotations

from strongroom.engines.transit.base import PathGroup, decode_base64
from strongroom.engines.transit.path_random import encode
from strongroom.engines.transit.policy import HASHES
from strongroom.errors import InvalidRequest
from strongroom.fields import to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response


class HashPath(PathGroup):
    """``POST hash(/<algorithm>)`` with ``input``, ``algorithm`` (default sha2-256), ``format`` (hex, base64)."""

    def paths(self) -> list[Path]:
        return [
            Path(
                r"hash(/(?P<urlalgorithm>.+))?",
                {logical.UPDATE: self.hash},
                synopsis="Generate a hash sum for input data",
                description="Generates a hash sum of the given algorithm against the given input data.",
            )
        ]

    def hash(self, req: Request, urlalgorithm: str = "", **_: str) -> Response:
        data = req.data
        raw_input = to_string("input", data.get("input"))
        if not raw_input:
            raise InvalidRequest("input missing")
        fmt = to_string("format", data.get("format")) or "hex"
        if fmt not in ("hex", "base64"):
            raise InvalidRequest(f'unsupported encoding format {fmt}; must be "hex" or "base64"')
        name = urlalgorithm or to_string("algorithm", data.get("algorithm")) or "sha2-256"
        if name not in HASHES:
            raise InvalidRequest(f"unsupported algorithm {name}")
        payload = decode_base64("input", raw_input, "unable to decode input as base64: ")
        return Response(data={"sum": encode(HASHES[name](payload).digest(), fmt)})
