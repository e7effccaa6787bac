"""The core: from a logical request to an engine's response.

For every request the core (1) makes sure the barrier holds the node's current
keyring, (2) routes the path to ``sys/``, an auth method or a secrets engine,
(3) resolves the client token and checks its ACL (create vs update decided by the
engine's existence check, sudo for Vault's root paths), (4) writes the request to
the audit devices, (5) dispatches, and (6) audits the response.

Shared tables (mounts, auth methods, policies, audit devices) are cached per
process.  A change made here is applied locally at once and announced through
``notify`` so the other workers of the node (and, with HA, the other nodes) drop
their copies; ``invalidate`` is how such announcements arrive.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from strongroom import metrics
from strongroom.auth.login import issue_token
from strongroom.auth.token import TokenAuthBackend, TokenEntry, TokenStore
from strongroom.barrier import Barrier, BarrierView
from strongroom.config.model import SYSTEM_LEASE_TTL_SECONDS
from strongroom.core.audit import AuditBroker
from strongroom.core.mounts import AUTH_PATH, MOUNTS_PATH, MountEntry, MountTable, default_auth_mounts
from strongroom.core.policy_store import PolicyStore
from strongroom.core.seal import HA_DISABLED, NodeControl
from strongroom.core.wrapping import Wrapping, wrap_ttl_seconds
from strongroom.errors import InvalidRequest, PermissionDenied, Sealed, UnsupportedPath
from strongroom.sdk import logical, sealing
from strongroom.sdk.logical import Engine, EngineCatalog, EngineType, Request, Response
from strongroom.storage import Backend, consistency
from strongroom.storage.cache import CachedBackend


def utcnow() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


# Vault's system-backend paths that need ``sudo`` (logical/system.go PathsSpecial.Root).
SUDO_SYS_PATHS = (
    "audit",
    "audit/",
    "auth/",
    "raw",
    "raw/",
    "remount",
    "rotate",
    "rotate/keyring",
    "seal",
    "step-down",
    "leases/revoke-prefix/",
    "leases/revoke-force/",
    "leases/lookup/",
    "revoke-prefix/",
    "revoke-force/",
    "config/",
    "internal/counters/",
    # Vault serves these to anyone; Strongroom asks for sudo unless the listener opens them
    # (core/sys_recovery.py).
    "rekey/",
    "rekey-recovery-key/",
    "generate-root",
    "generate-root/",
    "generate-root-token/",
)
# Reachable without a token once unsealed.
UNAUTHENTICATED_SYS_PATHS = (
    "health",
    "seal-status",
    "leader",
    "init",
    "unseal",
    "ha-status-public",
    "wrapping/lookup",
)
# Where a client token that is not valid is first judged as a wrapping token (400, not 403).
WRAPPING_TOKEN_PATHS = ("wrapping/unwrap", "wrapping/rewrap")
# No ACL on the path itself: the handler judges the token (a token given must be valid; none is
# no token).  Vault lists these as unauthenticated and its handlers fetch the caller's ACL.
HANDLER_AUTHORIZED_SYS_PATHS = ("internal/ui/mounts", "internal/ui/mounts/*")


@dataclass(frozen=True)
class CoreConfig:
    """Node-wide settings the core needs (parsed from the server configuration)."""

    default_lease_ttl: int = SYSTEM_LEASE_TTL_SECONDS
    max_lease_ttl: int = SYSTEM_LEASE_TTL_SECONDS
    cluster_name: str = ""  # "": named after the cluster id, as Vault does (core/seal.py)
    storage_type: str = "consul"
    unauthenticated_metrics_access: bool = False
    # sys/ paths the listener serves without a token beyond UNAUTHENTICATED_SYS_PATHS
    # (disable_unauthed_rekey_endpoints / disable_unauthed_generate_root_endpoints = false).
    unauthenticated_sys_paths: frozenset[str] = frozenset()
    # sys/audit may create audit devices only when the server's configuration says so.
    unsafe_allow_api_audit_creation: bool = False
    # When set, a file audit device's file_path must lie inside this directory.
    audit_file_directory: str = ""
    # The audit devices the server's configuration declares (config.AuditDeviceConfig), written to the
    # audit table by the active node at start (sync_declared_audit).
    audit_devices: tuple = ()
    # What a token revocation waits after it commits, so no performance standby still accepts the
    # token when the client hears of it (auth/token_store.py; 0: no standby follows this node).
    revocation_settle: float = 0.0


class Core:
    """One process's view of the node: barrier, tables, token store, routing.

    ``backend`` is the storage (already fenced when HA is on), ``seal`` where the
    keyring lives (``SealManager`` in-process or the node core via ``NodeLink``),
    ``notify(keys)`` announces a change of shared tables to the rest of the node.
    ``backends`` are the engine types this core may mount (type name ->
    ``EngineType``), given by the server wiring as Vault's ``NewCore`` receives
    ``CoreConfig.LogicalBackends``: the core imports no engine.  ``auth_backends``
    are the auth method types ``sys/auth`` may enable, given the same way
    (``CoreConfig.CredentialBackends``); the token method is built in.
    """

    def __init__(
        self,
        backend: Backend,
        seal: NodeControl,
        *,
        backends: Mapping[str, EngineType],
        auth_backends: Mapping[str, EngineType] | None = None,
        config: CoreConfig = CoreConfig(),
        clock: Callable[[], datetime] = utcnow,
        randbytes: Callable[[int], bytes] = os.urandom,
        notify: Callable[[list[str]], None] | None = None,
    ):
        self.backend = backend
        self.seal = seal
        self.config = config
        self.clock = clock
        self.randbytes = randbytes
        self._notify = notify
        self.catalog = EngineCatalog(backends)
        self.auth_catalog = EngineCatalog(auth_backends or {})
        self.barrier = Barrier(backend)
        self.mounts = MountTable(self.barrier, MOUNTS_PATH, "logical/", randbytes=randbytes)
        self.auth_mounts = MountTable(
            self.barrier, AUTH_PATH, "auth/", defaults=default_auth_mounts, randbytes=randbytes
        )
        self.policies = PolicyStore(BarrierView(self.barrier, "sys/policy/"))
        self.tokens = TokenStore(
            BarrierView(self.barrier, "sys/token/"),
            clock,
            randbytes=randbytes,
            default_ttl=config.default_lease_ttl,
            max_ttl=config.max_lease_ttl,
            # A live token's lookup is kept while the storage cache vouches for its records.
            freshness=backend if isinstance(backend, CachedBackend) else None,
            storage_prefix="sys/token/",
            settle=config.revocation_settle,
        )
        self.token_backend = TokenAuthBackend(
            self.tokens,
            has_sudo=lambda r: self.policies.acl(r.token.policies).allowed(r.path, "sudo"),
            policy_exists=lambda name: self.policies.get(name) is not None,
        )
        self.audit = AuditBroker(
            BarrierView(self.barrier, "sys/audit/"),
            clock,
            randbytes=randbytes,
            file_directory=config.audit_file_directory,
        )
        self._engines: dict[str, Engine] = {}
        self._engines_lock = threading.Lock()
        from strongroom.core.system import SystemBackend  # the system backend calls back into the core

        self.wrapping = Wrapping(self)
        self.system = SystemBackend(self)

    # --- keyring and caches ----------------------------------------------------

    def sync_keyring(self) -> bool:
        """Adopt the node's current keyring; True when unsealed.

        Called at the start of every request: a pointer comparison unless the
        keyring changed, in which case every cache is dropped (it may predate a
        seal, or another node's changes)."""
        keyring = self.seal.keyring()
        if keyring is not self.barrier.keyring:
            self.barrier.set_keyring(keyring)
            self.tokens.forget_decoded()
            # Dropped when a keyring arrives, not when it goes: requests still in
            # flight at a seal (the sys/seal request itself) finish with the
            # audit devices they started with, and nothing cached survives the
            # next unseal.  Engines (and the key material they keep) go at the
            # seal: a request in flight holds its own engine to the end.
            if keyring is not None:
                self.invalidate(["*"])
            else:
                with self._engines_lock:
                    self._engines.clear()
                sealing.sealed()
        return keyring is not None

    def require_unsealed(self) -> None:
        if not self.sync_keyring():
            raise Sealed()

    def invalidate(self, keys: list[str]) -> None:
        """Drop cached copies of shared tables named by ``keys``
        (``mounts``, ``auth``, ``policy/<name>``, ``audit``, or ``*``)."""
        for key in keys:
            if key in ("*", "mounts", "auth"):
                self.mounts.invalidate()
                self.auth_mounts.invalidate()
                with self._engines_lock:
                    self._engines.clear()
            if key == "*" or key.startswith("policy/"):
                self.policies.invalidate(None if key == "*" else key[len("policy/") :])
            if key in ("*", "audit"):
                self.audit.reload()

    def sync_declared_audit(self) -> None:
        """Make the audit table match ``config.audit_devices`` (see ``AuditBroker.sync_declared``).

        For nodes without a node core (in-memory storage): called once the node
        is unsealed, which makes it active; the node core does the same for HA
        nodes when it becomes active."""
        self.require_unsealed()
        if self.audit.sync_declared(self.config.audit_devices):
            self.changed(["audit"])

    def changed(self, keys: list[str]) -> None:
        """This process changed shared tables: apply locally, tell the node."""
        self.invalidate(keys)
        if self._notify:
            self._notify(keys)

    # --- seal operations served while sealed ---------------------------------

    def initialize(
        self,
        shares: int,
        threshold: int,
        root_token_id: str = "",
        recovery_shares: int = 0,
        recovery_threshold: int = 0,
    ) -> dict:
        """``sys/init``: create the keys, split the unseal key (the recovery key with an
        auto seal), mint the root token."""
        return self.seal.initialize(
            shares,
            threshold,
            root_token_id=root_token_id,
            recovery_shares=recovery_shares,
            recovery_threshold=recovery_threshold,
        )

    # --- HA state (pushed by the node core; disabled for single-process nodes) ---

    def ha_state(self) -> dict:
        """``{"enabled", "role", "leader_address", "leader_node", "active_time"}``."""
        state = self.seal.ha()
        return state if state.get("enabled") else dict(HA_DISABLED)

    def awaits_leader(self, state: dict) -> bool:
        """Whether ``state`` leaves this unsealed node without a place for writes: a
        standby that knows no active node, or a role still "sealed" although the
        keyring already arrived (the node core's pushes are applied in order)."""
        role = state.get("role")
        if role == "sealed":
            return self.seal.keyring() is not None
        return role in ("standby", "perfstandby") and not state.get("leader_address")

    def await_leader(self, seen: dict, timeout: float) -> dict:
        """The HA state once this standby knows an active node (or is one, or is
        sealed), waiting at most ``timeout`` seconds for the node core's pushes:
        a worker may hear of an election a moment after its node core (right after
        the unseal that opened the node, or a failover)."""
        deadline = time.monotonic() + timeout
        state = seen
        while self.awaits_leader(state):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.seal.await_ha_change(state, remaining)
            state = self.ha_state()
        return state

    def is_active(self) -> bool:
        return self.ha_state()["role"] == "active"

    def step_down(self) -> None:
        """``sys/step-down``: only the active node steps down (standbys forward it)."""
        self.seal.step_down()

    def ha_status(self) -> dict:
        """``sys/ha-status``: the nodes of the cluster (none without HA)."""
        return self.seal.ha_status()

    def health(self) -> dict:
        """The state ``sys/health`` reports: initialised, sealed, standby, performance standby."""
        status = self.seal.status()
        role = self.ha_state()["role"] if not status["sealed"] else "sealed"
        return {
            "initialized": status["initialized"],
            "sealed": status["sealed"],
            # As Vault: a sealed node reports itself a standby (a core starts as one).
            "standby": status["sealed"] or role in ("standby", "perfstandby"),
            "performance_standby": role == "perfstandby",
            "cluster_name": status.get("cluster_name", ""),
            "cluster_id": status.get("cluster_id", ""),
            "version": status["version"],
        }

    def leader(self) -> dict:
        """``sys/leader``: who holds the lock, from this node's point of view."""
        ha = self.ha_state()
        if not ha["enabled"]:
            return {
                "ha_enabled": False,
                "is_self": False,
                "active_time": "0001-01-01T00:00:00Z",
                "leader_address": "",
                "leader_cluster_address": "",
                "performance_standby": False,
                "performance_standby_last_remote_wal": 0,
            }
        return {
            "ha_enabled": True,
            "is_self": ha["role"] == "active",
            "active_time": ha.get("active_time") or "0001-01-01T00:00:00Z",
            "leader_address": ha.get("leader_address", ""),
            "leader_cluster_address": ha.get("leader_address", ""),
            "performance_standby": ha["role"] == "perfstandby",
            "performance_standby_last_remote_wal": 0,
        }

    # --- routing ---------------------------------------------------------------

    def engine_for(self, table: MountTable, entry: MountEntry) -> Engine:
        """The engine of a mount, built on first use and kept until the mount table changes."""
        with self._engines_lock:
            engine = self._engines.get(entry.uuid)
            if engine is None:
                view = BarrierView(self.barrier, table.storage_prefix(entry))
                catalog = self.auth_catalog if table is self.auth_mounts else self.catalog
                engine = catalog.create(entry.type, entry.options, view, self.clock)
                self._engines[entry.uuid] = engine
            return engine

    def route(self, req: Request) -> Engine:
        """Fill the request's mount fields and return the backend that serves it."""
        path = req.path
        if path == "sys" or path.startswith("sys/"):
            req.mount_point, req.mount_type, req.relative_path = "sys/", "system", path[4:]
            return self.system
        if path.startswith("auth/"):
            entry = self.auth_mounts.match(path[len("auth/") :])
            if entry is not None:
                req.mount_point = "auth/" + entry.path
                req.mount_type, req.mount_accessor = entry.type, entry.accessor
                req.relative_path = path[len(req.mount_point) :]
                if entry.type == "token":
                    return self.token_backend
                return self.engine_for(self.auth_mounts, entry)
        else:
            entry = self.mounts.match(path)
            if entry is not None:
                req.mount_point, req.mount_type, req.mount_accessor = entry.path, entry.type, entry.accessor
                req.relative_path = path[len(entry.path) :]
                return self.engine_for(self.mounts, entry)
        raise UnsupportedPath(f'no handler for route "{path}". route entry not found.')

    # --- the request pipeline --------------------------------------------------

    def require_index(self, index: int) -> None:
        """The request being handled must see storage at ``index`` or later (its
        ``X-Vault-Index``; 0: any): a standby's caches serve it only from there on."""
        consistency.require_index(index)

    def handle_indexed(self, req: Request, body: Callable[[bool], dict] | None = None) -> Response:
        """``handle``, and any request that wrote answers with its commit index (a
        token revocation too, whose handler sets none), so the client can present
        it to a performance standby (read-your-writes)."""
        consistency.track_writes()
        resp = self.handle(req, body)
        written = consistency.last_write_index()
        return replace(resp, index=written) if written and not resp.index else resp

    def handle(self, req: Request, body: Callable[[bool], dict] | None = None) -> Response:
        """Run one logical request through routing, ACL, audit and the engine.

        ``body(authenticated)``, when given, parses the request body into
        ``req.data``: it is called only once the client token is known to be
        valid (or the path needs none), so a stranger's body is never parsed;
        ``authenticated`` tells the parser which bound applies."""
        self.require_unsealed()
        if not req.request_id:
            h = self.randbytes(16).hex()  # a uuid's text without the UUID object (as hashicorp/go-uuid formats)
            req.request_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        wrap_ttl = wrap_ttl_seconds(req.wrap_ttl)  # a bad X-Vault-Wrap-TTL fails before anything runs
        try:
            backend = self.route(req)
        except UnsupportedPath:
            # As in Vault, a stranger learns nothing about what is mounted: 403 before 404.
            self.lookup_token(req.client_token)
            raise
        self.canonicalize(backend, req)
        handler_authorized = backend is self.system and _handler_authorized(req.relative_path)
        unauthenticated = self._is_unauthenticated(backend, req) or (handler_authorized and not req.client_token)
        try:
            if not unauthenticated:
                req.token = self._authenticate(backend, req, body)
        except (PermissionDenied, InvalidRequest) as exc:
            # Refused before authentication: the entry carries the request's metadata, never its body.
            self.audit.log_request(req, None, error=str(exc))
            self.audit.log_response(req, None, None, error=str(exc))
            raise
        if body is not None:
            req.data = body(not unauthenticated)
        try:
            if not unauthenticated and not handler_authorized:
                self._authorize(backend, req, wrap_ttl)
        except PermissionDenied as exc:
            auth = self._audit_auth(req.token)
            self.audit.log_request(req, auth, error=str(exc))
            self.audit.log_response(req, auth, None, error=str(exc))
            raise
        auth = self._audit_auth(req.token)
        self.audit.log_request(req, auth)
        try:
            if req.token is not None and not handler_authorized:
                req.token = self.tokens.use(req.token)
                if req.token is None:
                    raise PermissionDenied("permission denied")
            resp = self._dispatch(backend, req, wrap_ttl)
        except Exception as exc:
            self.audit.log_response(req, auth, None, error=str(exc))
            raise
        if resp is None:
            resp = Response(status=404 if req.operation in logical.READ_OPERATIONS else 204)
        self.audit.log_response(req, auth, resp)
        return resp

    def _dispatch(self, backend: Engine, req: Request, wrap_ttl: int = 0) -> Response | None:
        """The backend's answer; a login's token is minted here, after the method
        accepted it, and the answer is wrapped when the client asked for it."""
        resp = backend.handle(req)
        if resp is not None and resp.login is not None:
            resp.auth = self._issue_login_token(req, resp.login)
        if wrap_ttl and resp is not None and resp.wrap_info is None and _has_content(resp):
            # The secret never leaves in plain text: only the wrapping token does.
            resp = self.wrapping.wrap(req, resp, wrap_ttl)
        return resp

    def _issue_login_token(self, req: Request, login: logical.Login) -> dict:
        """Mint the token of an auth method's successful login (its first write:
        a performance standby raises ReadOnly here and forwards the request)."""
        entry = self.auth_mounts.match(req.mount_point[len("auth/") :])
        config = entry.config if entry is not None else {}
        auth = issue_token(self.tokens, login, path=req.path, mount_type=req.mount_type, mount_config=config)
        metrics.count_token_creation(req.mount_type, req.mount_point, auth.get("lease_duration", 0))
        return auth

    def canonicalize(self, backend: Engine, req: Request) -> None:
        """Rewrite ``req.path`` to the spelling the handler will act on, before
        anything judges it: the system backend normalises policy names and
        mount, auth and audit paths exactly as its handlers store them."""
        if backend is self.system:
            req.relative_path = self.system.canonical_path(req.relative_path)
            req.path = req.mount_point + req.relative_path

    def _acl_paths(self, backend: Engine, req: Request) -> list[str]:
        """The canonical path, then the other spellings that name the same
        target (``sys/mounts/x`` and ``sys/mounts/x/``)."""
        if backend is self.system:
            return [req.path] + [req.mount_point + alias for alias in self.system.acl_aliases(req.relative_path)]
        return [req.path]

    def _is_unauthenticated(self, backend: Engine, req: Request) -> bool:
        if backend is self.system:
            return (
                req.relative_path in UNAUTHENTICATED_SYS_PATHS
                or req.relative_path in self.config.unauthenticated_sys_paths
            )
        for pattern in backend.unauthenticated_paths():
            if pattern.endswith("*") and req.relative_path.startswith(pattern[:-1]):
                return True
            if req.relative_path == pattern:
                return True
        return False

    def _authenticate(self, backend: Engine, req: Request, body: Callable[[bool], dict] | None) -> TokenEntry:
        """The request's token entry; PermissionDenied when it has none that is valid,
        except on unwrap and rewrap, where Vault first judges the wrapping token (the
        body's, else the client token): a spent or unknown one is a 400, not a 403."""
        try:
            return self.lookup_token(req.client_token)
        except PermissionDenied:
            if backend is self.system and req.relative_path in WRAPPING_TOKEN_PATHS:
                if body is not None:
                    req.data = body(False)  # the unauthenticated bound
                self.wrapping.check_token(req)
            raise

    def lookup_token(self, client_token: str) -> TokenEntry:
        """The token entry for a client token, or PermissionDenied (missing, unknown, expired)."""
        if not client_token:
            raise PermissionDenied("permission denied")
        entry = self.tokens.lookup(client_token)
        if entry is None:
            raise PermissionDenied("permission denied")
        return entry

    def _authorize(self, backend: Engine, req: Request, wrap_ttl: int = 0) -> None:
        """The ACL check, on every spelling of the target: allowed when one
        spelling is allowed and no spelling is explicitly denied (deny wins).
        ``wrap_ttl`` (0: not wrapping) is judged against min/max_wrapping_ttl."""
        acl = self.policies.acl(req.token.policies)
        paths = self._acl_paths(backend, req)
        operation = req.operation
        if operation in logical.CREATE_OR_UPDATE and any(acl.distinguishes_create(p) for p in paths):
            exists = backend.exists(req)
            operation = logical.CREATE if exists is False else logical.UPDATE
        wrap = wrap_ttl or None
        if len(paths) == 1:
            permitted = acl.permits(req.path, operation, req.data, wrap_ttl=wrap)
        else:
            permitted = not any(acl.denies(p, operation) for p in paths) and any(
                acl.permits(p, operation, req.data, wrap_ttl=wrap) for p in paths
            )
        if not permitted:
            raise PermissionDenied("permission denied")
        if (
            backend is self.system
            and req.operation != logical.HELP  # help needs no sudo, as in Vault's performPolicyChecks
            and self._needs_sudo(req.relative_path)
            and not any(acl.allowed(p, "sudo") for p in paths)
        ):
            raise PermissionDenied("permission denied")

    @staticmethod
    def _needs_sudo(relative_path: str) -> bool:
        return any(relative_path == p or (p.endswith("/") and relative_path.startswith(p)) for p in SUDO_SYS_PATHS)

    @staticmethod
    def _audit_auth(token: TokenEntry | None) -> dict | None:
        if token is None:
            return None
        return {
            "client_token": token.id,
            "accessor": token.accessor,
            "display_name": token.display_name,
            "policies": list(token.policies),
            "token_policies": list(token.policies),
            "metadata": dict(token.meta or {}),
            "entity_id": "",
            "token_type": "service",
        }


def _has_content(resp: Response) -> bool:
    """Whether a response carries something to wrap (a 204 has nothing)."""
    return resp.data is not None or resp.auth is not None or resp.raw is not None


def _handler_authorized(relative_path: str) -> bool:
    """Whether ``sys/<relative_path>`` is one of ``HANDLER_AUTHORIZED_SYS_PATHS`` (glob with a trailing ``*``)."""
    return any(
        relative_path.startswith(p[:-1]) if p.endswith("*") else relative_path == p
        for p in HANDLER_AUTHORIZED_SYS_PATHS
    )
