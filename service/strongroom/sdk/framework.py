"""Declarative path tables for engines, auth methods and the system backend (Vault's ``sdk/framework``).

https://github.com/hashicorp/vault/tree/main/sdk/framework

A backend is a list of ``Path``s.  Each ``Path`` names a regular expression
over the request's path inside the mount, with named groups for its parameters
(``policies/acl/(?P<name>.+)``, ``data/(?P<path>.*)``), the operations it
supports mapped to handlers, an optional existence check, and the help text
(synopsis and description) ``path-help`` serves.  ``Backend`` routes a request
to the first ``Path`` whose pattern matches the whole relative path, and calls
the handler of the request's operation with the named groups as keyword
arguments.

Invariants:

* patterns match the whole path (``re.fullmatch``): ``policies/acl`` never
  matches ``policies/aclX``;
* ``.`` matches every character, newlines included: the router treats a path as
  opaque text, so whatever the API layer lets through reaches the handler that
  refuses it (the API layer refuses control characters before routing);
* the first matching path wins: list the specific patterns (``mounts/(?P<path>.*)/tune``)
  before the general ones (``mounts/(?P<path>.+)``);
* a ``create`` on a path that maps no handler to it runs the ``update``
  handler, as in Vault (tables list ``update`` alone for "write");
* an unknown path is ``UnsupportedPath`` (404, Vault's ``unsupported path``)
  unless the backend answers it itself; a known path without the request's
  operation is ``MethodNotAllowed`` (405).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from strongroom.errors import MethodNotAllowed, UnsupportedPath
from strongroom.sdk import logical
from strongroom.sdk.logical import Request, Response

#: An operation's handler: ``handler(req, **groups)``, the pattern's named groups as keyword arguments
#: (a group that did not take part in the match is ``""``).  None means "nothing here" (404 on reads).
Handler = Callable[..., Response | None]
#: An existence check, called like a handler: whether the target exists (create vs update for the ACL).
ExistenceCheck = Callable[..., bool | None]
#: Checks a matched path before its operation is looked up, called like a handler; raises to refuse
#: (what it returns is ignored).
Preflight = Callable[..., object]


@dataclass(frozen=True)
class Path:
    """One entry of a backend's path table (Vault's ``framework.Path``).

    ``pattern`` is a regular expression matched against the whole relative
    path; its named groups are passed to the handlers.  ``operations`` maps
    each supported logical operation to its handler.  ``exists`` is the
    existence check Vault runs before a write to tell ``create`` from
    ``update`` for the ACL (None: every write is an ``update``).  ``preflight``
    runs before the operation is looked up, for a check that refuses every
    operation alike (a tune of a mount that does not exist is a 400 whatever the
    method); Vault's framework has none, so use it only to keep such an answer.
    ``synopsis`` and ``description`` are the help text.
    """

    pattern: str
    operations: Mapping[str, Handler]
    exists: ExistenceCheck | None = None
    preflight: Preflight | None = None
    synopsis: str = ""
    description: str = ""
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    #: The pattern as a metric label: ``data/:path`` (see ``route_template``).
    template: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.pattern, re.DOTALL))
        object.__setattr__(self, "template", route_template(self.pattern))

    def match(self, relative_path: str) -> dict[str, str] | None:
        """The named groups when the pattern matches all of ``relative_path``, else None."""
        found = self._regex.fullmatch(relative_path)
        return None if found is None else found.groupdict(default="")


def route_template(pattern: str) -> str:
    """A path pattern written for people and metric labels: each named group
    becomes ``:name``, an optional group ``[...]``, an optional slash and
    other regular expression syntax (``?`` after a character) go:
    ``keys/(?P<name>\\w(([\\w\\-.]+)?\\w)?)/rotate`` is ``keys/:name/rotate``,
    ``audit-hash(?:/(?P<path>.*))?`` is ``audit-hash[/:path]``.  Patterns come
    from the code, so the templates are a fixed set whatever clients send."""
    text, _ = _template(pattern, 0)
    return text


def _template(pattern: str, position: int) -> tuple[str, int]:
    """The template of ``pattern`` from ``position`` up to the ``)`` closing the
    group it is in (or the end), and the position after it."""
    out = []
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            out.append(pattern[position + 1 : position + 2])
            position += 2
        elif char == "(":
            named = re.match(r"\(\?P<(\w+)>", pattern[position:])
            start = position + (named.end() if named else 3 if pattern.startswith("(?:", position) else 1)
            inner, position = _template(pattern, start)
            optional = pattern.startswith("?", position)
            if optional:
                position += 1
            text = ":" + named.group(1) if named else inner
            out.append(f"[{text}]" if optional and not named else text)
        elif char == ")":
            return "".join(out), position + 1
        elif char in "?*+":
            position += 1
        elif pattern.startswith("/?", position):
            position += 2  # an optional trailing slash: ``mounts/?`` is ``mounts``
        else:
            out.append(char)
            position += 1
    return "".join(out), position


#: What a backend answers for a path no ``Path`` matches: a response, or an error raised.
UnsupportedPathHandler = Callable[[Request], Response | None]


def unsupported_path(req: Request) -> Response | None:
    """Vault's framework answer to an unknown path: 404 ``unsupported path``."""
    raise UnsupportedPath("unsupported path")


class Backend:
    """A mount's request handling from its path table (Vault's ``framework.Backend``); an ``Engine``.

    ``paths`` are tried in order; ``on_unsupported_path(req)`` answers a path
    none of them matches (default: ``UnsupportedPath``).  ``unauthenticated``
    lists the relative paths (glob with a trailing ``*``) that need no token.
    Subclasses pass their table to ``__init__`` and may wrap ``handle`` for
    rules that hold for every path of the mount.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        on_unsupported_path: UnsupportedPathHandler = unsupported_path,
        unauthenticated: Sequence[str] = (),
    ):
        self.paths = tuple(paths)
        self._on_unsupported_path = on_unsupported_path
        self._unauthenticated = list(unauthenticated)

    def route(self, relative_path: str) -> tuple[Path, dict[str, str]] | None:
        """The first path matching ``relative_path`` and its named groups, or None."""
        for path in self.paths:
            groups = path.match(relative_path)
            if groups is not None:
                return path, groups
        return None

    def handle(self, req: Request) -> Response | None:
        """Run the handler of ``req.operation`` on the path ``req.relative_path`` matches
        (a ``help`` request gets the path's help instead, whatever the path)."""
        if req.operation == logical.HELP:
            return self.help(req.relative_path)
        routed = self.route(req.relative_path)
        if routed is None:
            return self._on_unsupported_path(req)
        path, groups = routed
        req.route = path.template
        if path.preflight is not None:
            path.preflight(req, **groups)
        handler = path.operations.get(req.operation)
        if handler is None and req.operation == logical.CREATE:
            # Vault runs a create on a path without a create handler as an update.
            handler = path.operations.get(logical.UPDATE)
        if handler is None:
            raise MethodNotAllowed()
        return handler(req, **groups)

    def exists(self, req: Request) -> bool | None:
        """The matching path's existence check; None when it has none or no path matches."""
        routed = self.route(req.relative_path)
        if routed is None:
            return None
        path, groups = routed
        req.route = path.template
        return None if path.exists is None else path.exists(req, **groups)

    def unauthenticated_paths(self) -> list[str]:
        """Relative paths (glob with a trailing ``*``) that need no token."""
        return list(self._unauthenticated)

    def help(self, relative_path: str) -> Response:
        """The help of the path ``relative_path`` matches, as Vault's ``path-help``
        answers ``GET /v1/<path>?help=1``: ``{"help": text, "see_also": null,
        "openapi": document}``, the text and the OpenAPI document generated from
        the table.  A path no entry matches gets Vault's catch-all (``^.*$``, no
        synopsis).  https://developer.hashicorp.com/vault/api-docs#help
        """
        routed = self.route(relative_path)
        if routed is None:
            pattern, synopsis, description, operations = ".*", "<no synopsis>", "", []
        else:
            path = routed[0]
            pattern, synopsis, description = path.pattern, path.synopsis, path.description
            operations = sorted(path.operations)
        text = f"Request:        {relative_path}\nMatching Route: ^{pattern}$\n\n{synopsis}\n\n"
        if operations:
            text += "## OPERATIONS\n\n" + "\n".join(f"    {op}" for op in operations) + "\n\n"
        text += f"## DESCRIPTION\n\n{description or synopsis}"
        return Response(raw={"help": text, "see_also": None, "openapi": _openapi(relative_path, synopsis, operations)})


#: Logical operation -> the HTTP method of the OpenAPI document (list is a GET with ``list=true``).
_OPENAPI_METHODS = {
    logical.READ: "get",
    logical.LIST: "get",
    logical.CREATE: "post",
    logical.UPDATE: "post",
    logical.PATCH: "patch",
    logical.DELETE: "delete",
}


def _openapi(relative_path: str, synopsis: str, operations: Sequence[str]) -> dict[str, object]:
    """A minimal OpenAPI 3 document for one path, in the shape of Vault's ``openapi`` help field."""
    methods: dict[str, object] = {}
    for operation in operations:
        method = _OPENAPI_METHODS.get(operation)
        if method is not None:
            methods.setdefault(method, {"summary": synopsis, "responses": {"200": {"description": "OK"}}})
    return {
        "openapi": "3.0.2",
        "info": {"title": "Strongroom API", "description": "HTTP API that gives you full access to Strongroom."},
        "paths": {"/" + relative_path: {"description": synopsis, **methods}},
        "components": {"schemas": {}},
    }
