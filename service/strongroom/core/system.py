"""The system backend: the token-protected ``sys/`` endpoints.

https://developer.hashicorp.com/vault/api-docs/system

Mounts, auth methods, policies, audit devices, keyring status and rotation,
capabilities, sealing and the UI mount lookup used by the vault CLI, as one
path table (``strongroom.sdk.framework``).  The endpoints that work while
sealed (``sys/init``, ``sys/unseal``, ``sys/seal-status``, ``sys/health``,
``sys/leader``) are served by the API layer straight from the seal and HA
state, not through here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from strongroom.core.audit import API_CREATION_REFUSED
from strongroom.core.mounts import normalize_path
from strongroom.core.rotation import rotate_config_path
from strongroom.core.sys_leases import lease_paths
from strongroom.core.sys_mounts import MountPaths, check_mount_path, render_auth, require_str, sys_mount_entry
from strongroom.core.sys_recovery import recovery_paths
from strongroom.core.sys_remount import remount_paths
from strongroom.core.wrapping import wrapping_paths
from strongroom.errors import InvalidRequest, NotFound, PermissionDenied, Sealed, UnsupportedPath
from strongroom.sdk import framework, logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response
from strongroom.timefmt import rfc3339

if TYPE_CHECKING:
    from strongroom.core.core import Core

# Endpoints whose last segments are a policy name, and those whose rest is a mount-like path.
_NAMED_PREFIXES = ("policies/acl/", "policy/")
_MOUNT_PREFIXES = ("mounts/", "auth/", "audit/", "audit-hash/")
_TUNABLE = ("mounts/", "auth/")


def canonical_policy_name(name: str) -> str:
    """A policy name as the store keeps it: trimmed, lower-cased; no ``/``
    (a name is one storage key, never a folder)."""
    canonical = name.strip().lower()
    if "/" in canonical:
        raise InvalidRequest("policy names cannot contain '/'")
    return canonical


def _unsupported(req: Request) -> Response | None:
    """The router's answer for a ``sys/`` path no entry of the table matches."""
    raise UnsupportedPath(f'no handler for route "sys/{req.relative_path}". route entry not found.')


class SystemBackend(framework.Backend):
    """The ``sys/`` mount: one ``Path`` per endpoint, each calling back into the core."""

    def __init__(self, core: Core):
        self.core = core
        self._mounts = MountPaths(core)
        super().__init__(self._paths(), on_unsupported_path=_unsupported)

    @staticmethod
    def canonical_path(relative_path: str) -> str:
        """The spelling of ``sys/<relative_path>`` that the handlers act on:
        policy names trimmed and lower-cased (as the policy store keeps them),
        mount, auth and audit paths without leading or trailing slashes.  The
        core rewrites the request to it before the ACL check, so a rule on
        ``sys/policies/acl/deleg`` also covers ``.../DELEG`` and ``.../deleg%20``."""
        for prefix in _NAMED_PREFIXES:
            if relative_path.startswith(prefix) and len(relative_path) > len(prefix):
                return prefix + canonical_policy_name(relative_path[len(prefix) :])
        for prefix in _MOUNT_PREFIXES:
            if relative_path.startswith(prefix):
                rest = relative_path[len(prefix) :]
                if prefix in _TUNABLE and rest.endswith("/tune") and rest[: -len("/tune")].strip("/"):
                    return prefix + rest[: -len("/tune")].strip("/") + "/tune"
                return (prefix + rest.strip("/")).rstrip("/")
        return relative_path

    @staticmethod
    def acl_aliases(canonical: str) -> list[str]:
        """Other spellings of a canonical mount, auth or audit path that policies
        may be written for: the mount path with its trailing slash (the vault
        CLI sends ``sys/mounts/x/``).  A deny on either spelling denies."""
        head = canonical.split("/", 1)[0] + "/"
        if head in _MOUNT_PREFIXES and not canonical.endswith("/tune"):
            return [canonical + "/"]
        return []

    def _paths(self) -> list[Path]:
        """The table, in matching order: ``<mount>/tune`` before the mount named by the rest."""
        return [
            *self._mounts.paths(),
            *self._policy_paths(
                "policy",
                legacy=True,
                listing="The legacy endpoint: the names under both 'keys' and 'policies'.",
                synopsis="Read, write, and delete access control policies.",
                description="The legacy endpoint: the policy text is read and written as 'rules' (or 'policy').",
            ),
            *self._policy_paths(
                "policies/acl",
                legacy=False,
                listing="The names of the ACL policies under 'keys'.",
                synopsis="Read, write, and delete ACL policies.",
                description="The policy text, in HCL or JSON, is read and written as 'policy'.  Names are "
                "case-insensitive; 'root' cannot be changed and 'default' cannot be deleted.",
            ),
            Path(
                "audit/?",
                {logical.READ: self._list_audit},
                synopsis="List the enabled audit devices.",
                description="Devices come from the server configuration; see sys/audit/<path>.",
            ),
            Path(
                "audit/(?P<path>.+)",
                {logical.UPDATE: self._enable_audit, logical.DELETE: self._disable_audit},
                preflight=check_mount_path,
                synopsis="Enable or disable an audit device.",
                description=(
                    "Enabling through the API is refused unless the server configuration sets "
                    "unsafe_allow_api_audit_creation: a device writes files as the server's user."
                ),
            ),
            Path(
                "audit-hash(?:/(?P<path>.*))?",
                {logical.UPDATE: self._audit_hash},
                synopsis="The hash of the given string via the given audit backend.",
                description="Write 'input'; the answer is the HMAC the device would log for it.",
            ),
            Path(
                "key-status",
                {logical.READ: self._key_status},
                synopsis="Provides information about the backend encryption key.",
                description="The term and install time of the keyring's active key.",
            ),
            rotate_config_path(self.core),
            Path(
                "rotate(?:/keyring)?",
                {logical.UPDATE: self._rotate},
                synopsis="Rotates the backend encryption key used to persist data.",
                description="A new key term is added to the keyring; older terms still decrypt what they wrote.",
            ),
            Path(
                "seal",
                {logical.UPDATE: self._seal},
                synopsis="Seal the node.",
                description="The node forgets its keys until it is unsealed again.",
            ),
            Path(
                "step-down",
                {logical.UPDATE: self._step_down},
                synopsis="Cause the node to step down from active duty.",
                description="The active node releases the HA lock so that a standby takes over.",
            ),
            Path(
                "ha-status",
                {logical.READ: self._ha_status},
                synopsis="Check the HA status of the cluster.",
                description="The nodes of the cluster and which one is active.",
            ),
            self._capabilities_path("capabilities-self", self._own_token, "the token making the request"),
            self._capabilities_path("capabilities", self._named_token, "the token given as 'token'"),
            self._capabilities_path("capabilities-accessor", self._accessor_token, "the token of 'accessor'"),
            Path(
                "internal/ui/resultant-acl",
                {logical.READ: self._resultant_acl},
                synopsis="Information about a token's resultant ACL. Internal API; its location, "
                "inputs, and outputs may change.",
                description="The merged rules of the calling token's policies, as the UI reads them.",
            ),
            Path(
                "internal/ui/mounts",
                {logical.READ: self._ui_mounts},
                synopsis="Information about mounts returned according to their tuned visibility. "
                "Internal API; its location, inputs, and outputs may change.",
                description="The secrets and auth mounts the caller may see: those tuned to "
                "listing_visibility 'unauth', and, with a token, those it has any capability under.",
            ),
            Path(
                "internal/ui/mounts/(?P<path>.+)",
                {logical.READ: self._ui_mount},
                synopsis="Return information about the given mount. Internal API; its location, "
                "inputs, and outputs may change.",
                description="The mount serving the given path, for a token with any capability under "
                "that mount (the vault CLI asks it before every kv command).",
            ),
            *recovery_paths(self.core),
            *wrapping_paths(self.core.wrapping),
            *remount_paths(self.core),
            *lease_paths(self.core),
        ]

    # --- sys/policy and sys/policies/acl ---------------------------------------

    def _policy_paths(self, prefix: str, *, legacy: bool, listing: str, synopsis: str, description: str) -> list[Path]:
        """The listing and the named policy under ``prefix``; ``legacy`` (``sys/policy``)
        answers at the top level and names the text ``rules``."""
        names = partial(self._list_policies, legacy=legacy)
        return [
            Path(
                f"{prefix}/?",
                {logical.READ: names, logical.LIST: names},
                synopsis="List the configured access control policies.",
                description=listing,
            ),
            Path(
                f"{prefix}/(?P<name>.+)",
                {
                    logical.READ: partial(self._read_policy, legacy=legacy),
                    logical.UPDATE: self._write_policy,
                    logical.DELETE: self._delete_policy,
                },
                synopsis=synopsis,
                description=description,
            ),
        ]

    def _list_policies(self, req: Request, *, legacy: bool) -> Response:
        names = self.core.policies.names()
        if legacy:
            return Response(data={"keys": names, "policies": names}, data_at_top_level=True)
        return Response(data={"keys": names})

    def _read_policy(self, req: Request, name: str, *, legacy: bool) -> Response:
        policy = self.core.policies.get(name)
        if policy is None:
            raise NotFound()
        key = "rules" if legacy else "policy"
        return Response(data={"name": policy.name, key: policy.raw}, data_at_top_level=legacy)

    def _write_policy(self, req: Request, name: str) -> Response:
        text = req.data.get("policy", req.data.get("rules", ""))
        if not isinstance(text, str):
            raise InvalidRequest("'policy' must be a string")
        index = self.core.policies.put(name, text)
        self.core.changed([f"policy/{name.lower()}"])
        return Response(status=204, index=index)

    def _delete_policy(self, req: Request, name: str) -> Response:
        index = self.core.policies.delete(name)
        self.core.changed([f"policy/{name.lower()}"])
        return Response(status=204, index=index)

    # --- sys/audit and sys/audit-hash ------------------------------------------

    def _list_audit(self, req: Request) -> Response:
        return Response(data=self.core.audit.list(), data_at_top_level=True)

    def _enable_audit(self, req: Request, path: str) -> Response:
        path = normalize_path(path)
        # CVE-2025-6000 class: a device writes as the server's user wherever file_path points.
        if not self.core.config.unsafe_allow_api_audit_creation:
            raise InvalidRequest(API_CREATION_REFUSED)
        data = req.data
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise InvalidRequest("'options' must be an object")
        self.core.audit.enable(
            path,
            require_str(data, "type"),
            require_str(data, "description", required=False),
            options,
            local=bool(data.get("local", False)),
        )
        self.core.changed(["audit"])
        return Response(status=204)

    def _disable_audit(self, req: Request, path: str) -> Response:
        self.core.audit.disable(normalize_path(path))
        self.core.changed(["audit"])
        return Response(status=204)

    def _audit_hash(self, req: Request, path: str) -> Response:
        digest = self.core.audit.hash(normalize_path(path), require_str(req.data, "input", required=False))
        return Response(data={"hash": digest}, data_at_top_level=True)

    # --- keyring, seal and HA ----------------------------------------------------

    def _key_status(self, req: Request) -> Response:
        keyring = self.core.barrier.keyring
        if keyring is None:  # sealed since the core checked
            raise Sealed()
        key = keyring.active_key()
        return Response(
            data={
                "term": key.term,
                "install_time": rfc3339(key.install_time),
                "encryptions": 0,
            },
            data_at_top_level=True,
        )

    def _rotate(self, req: Request) -> Response:
        self.core.seal.rotate()
        return Response(status=204)

    def _seal(self, req: Request) -> Response:
        self.core.seal.seal()
        return Response(status=204)

    def _step_down(self, req: Request) -> Response:
        self.core.step_down()
        return Response(status=204)

    def _ha_status(self, req: Request) -> Response:
        return Response(data=self.core.ha_status(), data_at_top_level=True)

    # --- sys/capabilities* -----------------------------------------------------

    def _capabilities_path(self, pattern: str, token_of: Callable[[Request], Any], whose: str) -> Path:
        return Path(
            pattern,
            {logical.UPDATE: partial(self._capabilities, token_of)},
            synopsis=f"Fetches the capabilities of {whose} on the given paths.",
            description="Write 'paths' (a list, or a comma-separated string); the answer maps each path to "
            "its capabilities, and repeats them under 'capabilities' when there is one path.",
        )

    @staticmethod
    def _own_token(req: Request) -> Any:
        return req.token

    def _named_token(self, req: Request) -> Any:
        return self.core.tokens.lookup(require_str(req.data, "token"))

    def _accessor_token(self, req: Request) -> Any:
        token = self.core.tokens.lookup_accessor(require_str(req.data, "accessor"))
        if token is None:
            raise InvalidRequest("invalid accessor")
        return token

    def _capabilities(self, token_of: Callable[[Request], Any], req: Request) -> Response:
        paths = req.data.get("paths", req.data.get("path"))
        if isinstance(paths, str):
            paths = [p.strip() for p in paths.split(",") if p.strip()]
        if not paths or not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise InvalidRequest("paths must be supplied")
        token = token_of(req)
        if token is None:
            raise InvalidRequest("invalid token")
        acl = self.core.policies.acl(token.policies)
        result: dict[str, Any] = {p: acl.capabilities(p.lstrip("/")) for p in paths}
        if len(paths) == 1:
            result["capabilities"] = result[paths[0]]
        return Response(data=result, data_at_top_level=True)

    # --- sys/internal/ui/mounts ------------------------------------------------
    # No ACL on these paths (core.HANDLER_AUTHORIZED_SYS_PATHS): they answer from the caller's own
    # ACL, as Vault's pathInternalUIMountsRead / pathInternalUIMountRead do.

    def _ui_mounts(self, req: Request) -> Response:
        acl = None if req.token is None else self.core.policies.acl(req.token.policies)

        def visible(entry_path: str, config: dict[str, Any]) -> bool:
            if config.get("listing_visibility") == "unauth":
                return True
            return acl is not None and acl.has_mount_access(entry_path)

        def shown(entry: dict[str, Any]) -> dict[str, Any]:
            if acl is not None:
                return entry
            return {"type": entry["type"], "description": entry["description"], "options": entry["options"]}

        secret = {e.path: shown(e.render()) for e in self.core.mounts.entries().values() if visible(e.path, e.config)}
        sys_mount = sys_mount_entry()
        if visible("sys/", sys_mount["config"]):
            secret["sys/"] = shown(sys_mount)
        auth = {
            e.path: shown(e.render())
            for e in self.core.auth_mounts.entries().values()
            if visible("auth/" + e.path, e.config)
        }
        return Response(data={"secret": secret, "auth": auth})

    def _resultant_acl(self, req: Request) -> Response:
        return Response(data=self.core.policies.acl(req.token.policies).resultant())

    def _ui_mount(self, req: Request, path: str) -> Response:
        if req.token is None:
            raise PermissionDenied("permission denied")
        path = path.strip("/") + "/"
        # Vault's MatchingMountEntry: sys/ and auth/<method>/ are mounts too; the ACL walks the full path.
        if path.startswith("sys/"):
            mount_path, body = "sys/", sys_mount_entry()
            body["path"] = "sys/"
        else:
            in_auth = path.startswith("auth/")
            entry = (self.core.auth_mounts if in_auth else self.core.mounts).match(path[5:] if in_auth else path)
            if entry is None:
                raise _unmounted(path)
            mount_path = ("auth/" if in_auth else "") + entry.path
            body = render_auth(entry) if in_auth else entry.render()
            body["path"] = entry.path
        if not self.core.policies.acl(req.token.policies).has_mount_access(mount_path):
            raise _unmounted(path)
        return Response(data=body)


def _unmounted(path: str) -> PermissionDenied:
    """Vault answers an unmounted UI lookup with this 403."""
    return PermissionDenied(
        f'preflight capability check returned 403, please ensure client\'s policies grant access to path "{path}"'
    )
