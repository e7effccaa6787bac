"""``random(/<source>)(/<bytes>)``: random bytes from the node's CSPRNG.

https://openbao.org/api-docs/secret/transit/#generate-random-bytes
"""

from __future__ import annotations

from strongroom.engines.transit.base import PathGroup, int_field
from strongroom.engines.transit.policy import b64
from strongroom.errors import InvalidRequest
from strongroom.fields import to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

MAX_BYTES = 128 * 1024
DEFAULT_BYTES = 32


def encode(raw: bytes, fmt: str) -> str:
    """``raw`` as ``base64`` or ``hex`` text."""
    return raw.hex() if fmt == "hex" else b64(raw)


class RandomPath(PathGroup):
    """``POST random`` with ``bytes`` (default 32, below 128 KiB) and ``format`` (base64, hex)."""

    def paths(self) -> list[Path]:
        return [
            Path(
                r"random(/(?P<source>default|platform|seal|all))?(/(?P<urlbytes>[^/]+))?",
                {logical.UPDATE: self.random},
                synopsis="Generate random bytes",
                description="This function can be used to generate high-entropy random bytes.",
            )
        ]

    def random(self, req: Request, urlbytes: str = "", **_: str) -> Response:
        data = req.data
        count = int_field({"bytes": urlbytes}, "bytes") if urlbytes else int_field(data, "bytes", DEFAULT_BYTES)
        fmt = to_string("format", data.get("format")) or "base64"
        if fmt not in ("base64", "hex"):
            raise InvalidRequest(f'unsupported encoding format "{fmt}"; must be "hex" or "base64"')
        if count < 1:
            raise InvalidRequest("'bytes' cannot be less than 1")
        if count > MAX_BYTES:
            raise InvalidRequest(f"'bytes' should be less than {MAX_BYTES}")
        return Response(data={"random_bytes": encode(self.random_bytes(count), fmt)})
