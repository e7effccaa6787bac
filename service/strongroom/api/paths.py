"""The request path, decided once: what ``/v1/<path>`` names, or 400.

The ACL judges a path and a handler acts on a path; if the two can differ, a
``deny`` rule can be walked around by spelling the path another way (``//``,
``%2F``, ``/./``).  So the path is settled here, before anything else reads it:

* percent-decoding happens once, in the HTTP server (PEP 3333's ``PATH_INFO``);
  nothing decodes again, so ``%252F`` stays the three characters ``%2F``;
* the bytes must be UTF-8 (no replacement characters standing for others);
* no control characters (NUL, CR, LF, DEL ...);
* no empty segment (``//``, a leading ``/``), no ``.`` or ``..`` segment.
  Vault 1.19.19 redirects such spellings to the cleaned path; Strongroom
  refuses them with 400, so no client can be led to act on a path it did not
  write (a single trailing ``/`` is kept: it means "folder" to LIST and KV).

What remains is canonical for routing; the core then canonicalises the names a
handler normalises (policy names, mount paths) before the ACL check
(``Core.canonicalize``).
"""

from __future__ import annotations

import re

from strongroom.errors import InvalidRequest

API_PREFIX = "/v1/"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def logical_path(raw_path_info: str) -> str:
    """The logical path (``secret/data/x``) of a WSGI ``PATH_INFO`` under ``/v1/``.

    ``raw_path_info`` is as the server gives it: decoded once and carried in a
    latin-1 string, one character per byte (PEP 3333)."""
    try:
        path = raw_path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidRequest("invalid request path: not valid UTF-8") from None
    if not path.startswith(API_PREFIX):
        raise InvalidRequest("invalid request path")
    path = path[len(API_PREFIX) :]
    check_canonical(path)
    return path


def check_canonical(path: str) -> None:
    """Raise ``InvalidRequest`` unless ``path`` is canonical (see the module docstring)."""
    if _CONTROL.search(path):
        raise InvalidRequest("invalid request path: control characters are not allowed")
    segments = path.split("/")
    if segments and segments[-1] == "":
        segments.pop()  # one trailing slash: a folder
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidRequest(f"invalid request path {path!r}: empty, '.' and '..' segments are not allowed")
