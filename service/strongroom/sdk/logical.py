"""The logical request and response that flow from the API through the core to
engines and auth methods, in Vault's vocabulary (``sdk/logical``).

The API layer builds a ``Request`` from HTTP; the core resolves the token,
checks the ACL, routes to the mount and calls its ``Engine``; the engine returns
a ``Response`` the API layer renders.  Nothing here knows about HTTP status codes.

A core mounts only the engine types it is given (``EngineCatalog``): engines
live above this module and below the core, which never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from strongroom.errors import InvalidRequest
from strongroom.storage import Backend

# Vault's logical operations.
READ = "read"
LIST = "list"
CREATE = "create"
UPDATE = "update"
PATCH = "patch"
DELETE = "delete"
HELP = "help"

WRITE_OPERATIONS = frozenset({CREATE, UPDATE, PATCH, DELETE})


@dataclass
class Request:
    """One operation on one path.

    ``path`` is the full request path without ``/v1/`` (``secret/data/foo``);
    the router fills ``mount_point`` (``secret/``) and ``relative_path``
    (``data/foo``) before the engine sees it.  ``data`` is the JSON body merged
    with query parameters for reads and lists.  ``token`` is the resolved client
    ``TokenEntry`` (None for unauthenticated paths).
    """

    operation: str
    path: str
    data: dict[str, Any] = field(default_factory=dict)
    client_token: str = ""
    token: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    remote_addr: str = ""
    mount_point: str = ""
    mount_type: str = ""
    mount_accessor: str = ""
    relative_path: str = ""
    request_id: str = ""
    wrap_ttl: str = ""
    #: The template of the path-table entry that matched (``data/:path``), set by
    #: ``framework.Backend``; the request metrics' route label.
    route: str = ""


@dataclass(frozen=True)
class Login:
    """A successful login an auth method hands to the core (Vault's ``logical.Auth``).

    The method only authenticates; the core mints the token (through the
    token store, under the mount's TTLs) and renders Vault's ``auth`` block, so
    no method writes a token itself.  ``policies`` are the token policies as
    configured (``default`` is added unless ``no_default_policy``); TTLs are
    seconds, 0 meaning "the mount's default".  ``display_name`` is the part
    after the mount's type (``alice`` gives ``userpass-alice``)."""

    policies: tuple[str, ...]
    metadata: Mapping[str, str]
    display_name: str
    ttl: int = 0
    max_ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    num_uses: int = 0
    no_default_policy: bool = False


@dataclass
class Response:
    """What an engine returns.

    ``data`` is rendered under ``"data"``; ``auth`` (a dict in Vault's shape:
    client_token, accessor, policies, lease_duration, renewable, ...) under
    ``"auth"``.  ``status`` overrides the default (200 with a body, 204 without).
    ``raw`` bypasses the envelope (``sys/health``-style bodies).
    """

    data: dict[str, Any] | None = None
    auth: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    lease_id: str = ""
    lease_duration: int = 0
    renewable: bool = False
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: Any = None
    # The storage index after the request's last write (X-Vault-Index).
    index: int = 0
    # Some sys/ endpoints repeat ``data`` at the top level of the body (Vault's legacy shape).
    data_at_top_level: bool = False
    # A wrapped response (core/wrapping.py): rendered with data and auth null.
    wrap_info: dict[str, Any] | None = None
    # A login's outcome: the core mints its token and fills ``auth`` (never rendered itself).
    login: Login | None = None


class Engine(Protocol):
    """A secrets engine or auth method mounted at a path (Vault's ``logical.Backend``).

    Engines see only their own ``BarrierView`` (the mount's storage, already
    encrypted under the barrier), never Consul or other mounts.  They raise the
    errors of ``strongroom.errors``; the core maps nothing.
    """

    def handle(self, req: Request) -> Response | None:
        """Execute ``req`` (``req.relative_path`` is the path inside the mount).

        Raise ``UnsupportedPath`` for paths the engine does not know and
        ``MethodNotAllowed`` for operations a known path does not support.
        Return None for "nothing here" on reads (the API answers 404).
        """

    def exists(self, req: Request) -> bool | None:
        """Existence check deciding whether a write is ``create`` or ``update``
        for the ACL (Vault's ExistenceCheck); None when the path has none
        (the write is then checked as ``update``)."""

    def unauthenticated_paths(self) -> list[str]:
        """Relative paths (glob with trailing ``*``) that need no token, e.g. ``login``."""


#: A node's clock: a zero-argument callable returning an aware UTC datetime.
Clock = Callable[[], datetime]


class Factory(Protocol):
    """Builds the engine of one mount (Vault's ``logical.Factory``).

    ``options`` are the mount's options (``{"version": "2"}``), ``view`` the
    mount's storage (its ``BarrierView``), ``clock`` the node's clock.  Raises
    ``InvalidRequest`` for options the type refuses."""

    def __call__(self, options: Mapping[str, Any], view: Backend, clock: Clock) -> Engine: ...


@dataclass(frozen=True)
class EngineType:
    """One mountable type of a core's catalog (an entry of Vault's ``CoreConfig.LogicalBackends``).

    ``check_options(options)`` raises ``InvalidRequest`` exactly when ``factory``
    would refuse ``options``, without building an engine or touching storage:
    it is what ``sys/mounts`` runs before a mount is written (what it returns is
    ignored)."""

    factory: Factory
    check_options: Callable[[Mapping[str, Any]], object]


class EngineCatalog:
    """The engine types a core may mount, given to it by whoever builds it.

    The core never imports an engine: the server wiring (and tests) hand it a
    mapping of type name to ``EngineType``, as Vault's ``NewCore`` receives
    ``CoreConfig.LogicalBackends``.  Unknown types are refused with Vault's
    ``plugin not found in the catalog`` message."""

    def __init__(self, types: Mapping[str, EngineType]):
        self._types = dict(types)

    def __contains__(self, mount_type: object) -> bool:
        return mount_type in self._types

    def _type(self, mount_type: str) -> EngineType:
        engine_type = self._types.get(mount_type)
        if engine_type is None:
            raise InvalidRequest(f"plugin not found in the catalog: {mount_type}")
        return engine_type

    def check(self, mount_type: str, options: Mapping[str, Any] | None) -> None:
        """Raise ``InvalidRequest`` unless a mount of ``mount_type`` with ``options`` can be built."""
        self._type(mount_type).check_options(options or {})

    def create(self, mount_type: str, options: Mapping[str, Any] | None, view: Backend, clock: Clock) -> Engine:
        """The engine of a mount of ``mount_type`` with ``options`` over its storage ``view``."""
        return self._type(mount_type).factory(options or {}, view, clock)


# -- operation groups: the one home of the sets path tables and checks use --------

# Operations that only look (the API skips the body; a performance standby answers them itself).
READ_OPERATIONS = frozenset({READ, LIST})
# A write of a whole value, Vault's CLI ``write``: create or update, told apart by the existence check.
CREATE_OR_UPDATE = frozenset({CREATE, UPDATE})
# Everything that changes a value in place or creates it (KV refuses these on a folder path).
MODIFY_OPERATIONS = frozenset({CREATE, UPDATE, PATCH})
