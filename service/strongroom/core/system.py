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

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from strongroom.core.audit import API_CREATION_REFUSED
from strongroom.core.mounts import RESERVED, MountEntry, MountTable, normalize_path
from strongroom.core.rotation import rotate_config_path
from strongroom.core.sys_leases import lease_paths
from strongroom.core.sys_recovery import recovery_paths
from strongroom.core.sys_remount import remount_paths
from strongroom.core.wrapping import wrapping_paths
from strongroom.errors import InvalidRequest, NotFound, PermissionDenied, Sealed, UnsupportedPath
from strongroom.fields import duration_seconds, number_text, to_bool, to_map, to_string, ttl_seconds
from strongroom.sdk import framework, logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response
from strongroom.timefmt import rfc3339

if TYPE_CHECKING:
    from strongroom.core.core import Core

_TTL_KEYS = ("default_lease_ttl", "max_lease_ttl")


def _ttl_seconds(value: Any, name: str, *, enabling: bool = False) -> int | None:
    """A mount's ``default_lease_ttl`` / ``max_lease_ttl``: ``""`` or null for
    "not given" (None), else as ``strongroom.fields.ttl_seconds`` reads it
    (``"system"`` is 0, the system default; negative refused).  ``enabling``:
    Vault's mount enable, which decodes the config strictly (a string or a
    number, nothing else) and wraps the parse error."""
    if value is None or value == "":
        return None
    if not enabling:
        return ttl_seconds(value, name, system=True)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidRequest("unable to convert given mount config information")
    text = value if isinstance(value, str) else number_text(value)
    if text == "system":
        return 0
    try:
        seconds = duration_seconds(text)
    except ValueError as exc:
        which = "default" if name == "default_lease_ttl" else "max"
        raise InvalidRequest(f"unable to parse {which} TTL of {text}: {exc}") from None
    if seconds < 0:
        raise InvalidRequest(f"{name} must be positive")
    return seconds


_LISTING_VISIBILITY = ("", "unauth", "hidden")
_LIST_KEYS = (
    "audit_non_hmac_request_keys",
    "audit_non_hmac_response_keys",
    "passthrough_request_headers",
    "allowed_response_headers",
)


def _mount_config(raw: Any, *, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``config`` of a mount enable (``current`` None), or the settings a
    tune changes in the ``current`` config, validated as Vault validates them;
    raises before anything is stored."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        to_map("config", raw, validated=True)
    ttls = {key: _ttl_seconds(raw.get(key), key, enabling=current is None) for key in _TTL_KEYS}
    config = _enabled_ttls(raw, ttls) if current is None else _tuned_ttls(ttls, current)
    config.update(_mount_settings(raw, enabling=current is None))
    return config


def _enabled_ttls(raw: dict[str, Any], ttls: dict[str, int | None]) -> dict[str, Any]:
    """The lease TTLs of a mount enable: those given (null counts as 0), with
    default <= max when max is set (Vault's "given default lease TTL greater
    than given max lease TTL")."""
    config = {key: seconds or 0 for key, seconds in ttls.items() if key in raw}
    if config.get("max_lease_ttl") and config.get("default_lease_ttl", 0) > config["max_lease_ttl"]:
        raise InvalidRequest("given default lease TTL greater than given max lease TTL")
    return config


def _tuned_ttls(ttls: dict[str, int | None], current: dict[str, Any]) -> dict[str, Any]:
    """The lease TTLs a tune changes: a TTL not given keeps its value, and the
    resulting pair must satisfy default <= max (Vault's "backend max lease TTL
    of ... would be less than ...")."""
    config = {key: seconds for key, seconds in ttls.items() if seconds is not None}
    if config:
        default = config.get("default_lease_ttl", current.get("default_lease_ttl", 0))
        maximum = config.get("max_lease_ttl", current.get("max_lease_ttl", 0))
        if default and maximum and maximum < default:
            raise InvalidRequest(
                f"backend max lease TTL of {maximum} would be less than backend default lease TTL of {default}"
            )
    return config


def _mount_settings(raw: dict[str, Any], *, enabling: bool) -> dict[str, Any]:
    """The settings of a mount config other than its lease TTLs.  ``enabling``:
    Vault's mount enable decodes them strictly (a string is not a bool)."""
    config: dict[str, Any] = {}
    if "force_no_cache" in raw:
        if enabling and not isinstance(raw["force_no_cache"], bool):
            raise InvalidRequest("unable to convert given mount config information")
        config["force_no_cache"] = to_bool("force_no_cache", raw["force_no_cache"], validated=True)
    if raw.get("listing_visibility") is not None:
        visibility = raw["listing_visibility"]
        if enabling and not isinstance(visibility, str):
            raise InvalidRequest("unable to convert given mount config information")
        text = to_string("listing_visibility", visibility, validated=True)
        if text not in _LISTING_VISIBILITY:
            raise InvalidRequest(f"invalid listing_visibility {text}")
        config["listing_visibility"] = text
    for key in _LIST_KEYS:
        if key in raw:
            config[key] = list(raw[key]) if isinstance(raw[key], list) else [str(raw[key])]
    return config


def _options(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidRequest("'options' must be an object")
    return {str(k): str(v) for k, v in raw.items()}


def _require_str(data: dict[str, Any], key: str, required: bool = True) -> str:
    value = data.get(key)
    if value is None:
        value = ""  # hvac sends null for unset optional strings; Vault accepts it
    if not isinstance(value, str):
        raise InvalidRequest(f"'{key}' must be a string")
    if required and not value:
        raise InvalidRequest(f"missing required field '{key}'")
    return value


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


def _check_mount_path(req: Request, path: str) -> None:
    """A mount, auth or audit path must normalise (not empty, no ``..``), whatever the operation."""
    normalize_path(path)


def _unsupported(req: Request) -> Response | None:
    """The router's answer for a ``sys/`` path no entry of the table matches."""
    raise UnsupportedPath(f'no handler for route "sys/{req.relative_path}". route entry not found.')


class SystemBackend(framework.Backend):
    """The ``sys/`` mount: one ``Path`` per endpoint, each calling back into the core."""

    def __init__(self, core: Core):
        self.core = core
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
            Path(
                "mounts/?",
                {logical.READ: self._list_mounts},
                synopsis="List the currently mounted secrets engines.",
                description="Every mount with its type, description, accessor, config and options; sys/ included.",
            ),
            self._tune_path("mounts", self._secret_mounts, "secrets engine"),
            Path(
                "mounts/(?P<path>.+)",
                {
                    logical.READ: self._read_mount,
                    logical.UPDATE: self._enable_mount,
                    logical.DELETE: self._disable_mount,
                },
                preflight=_check_mount_path,
                synopsis="Mount a new secrets engine, read a mount's configuration, or unmount it.",
                description=(
                    "Write with 'type' (kv, kv-v2, generic), and optionally 'description', 'config' "
                    "(default_lease_ttl, max_lease_ttl, force_no_cache, listing_visibility, ...), 'options' "
                    "({\"version\": \"2\"}), 'local' and 'seal_wrap'.  Delete removes the mount and its data."
                ),
            ),
            Path(
                "auth/?",
                {logical.READ: self._list_auth},
                synopsis="List the currently enabled credential backends.",
                description="The token method is always enabled at auth/token/.",
            ),
            self._tune_path("auth", self._auth_mounts, "auth method"),
            Path(
                "auth/(?P<path>.+)",
                {logical.READ: self._read_auth, logical.UPDATE: self._enable_auth, logical.DELETE: self._disable_auth},
                preflight=_check_mount_path,
                synopsis="Enable, read or disable a credential backend.",
                description=(
                    "Write with 'type' (userpass), and optionally 'description' and 'config' (default_lease_ttl, "
                    "max_lease_ttl, ...).  Delete removes the method and its data.  The built-in token method "
                    "can be neither enabled again nor disabled."
                ),
            ),
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
                preflight=_check_mount_path,
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

    # --- sys/mounts ------------------------------------------------------------

    def _list_mounts(self, req: Request) -> Response:
        listing = {e.path: e.render() for e in self.core.mounts.entries().values()}
        listing["sys/"] = self._sys_mount()
        return Response(data=listing, data_at_top_level=True)

    def _read_mount(self, req: Request, path: str) -> Response:
        path = normalize_path(path)
        entry = self.core.mounts.entries().get(path)
        if entry is None:
            raise InvalidRequest(f"No secret engine mount at {path}")
        return Response(data=entry.render(), data_at_top_level=True)

    def _disable_mount(self, req: Request, path: str) -> Response:
        path = normalize_path(path)
        table = self.core.mounts
        if path in table.entries():
            _, index = table.remove(path)
            self.core.changed(["mounts"])
            return Response(status=204, index=index)
        return Response(status=204)

    def _sys_mount(self) -> dict[str, Any]:
        return {
            "accessor": "system_00000000",
            "config": {
                "default_lease_ttl": 0,
                "max_lease_ttl": 0,
                "force_no_cache": False,
                "passthrough_request_headers": ["Accept"],
            },
            "description": "system endpoints used for control, policy and debugging",
            "external_entropy_access": False,
            "local": False,
            "options": None,
            "plugin_version": "",
            "running_plugin_version": "v0.1.0+builtin.strongroom",
            "running_sha256": "",
            "seal_wrap": True,
            "type": "system",
            "uuid": "system",
        }

    def _enable_mount(self, req: Request, path: str) -> Response:
        path = normalize_path(path)
        data = req.data
        mount_type = _require_str(data, "type")
        options = _options(data.get("options"))
        if mount_type == "kv-v2":
            mount_type, options = "kv", {**options, "version": "2"}
        if any(path.startswith(r) for r in RESERVED):
            raise InvalidRequest(f"cannot mount '{path}' of type '{mount_type}': reserved path")
        self.core.catalog.check(mount_type, options)  # rejects unknown types and options, builds nothing
        config = _mount_config(data.get("config"))
        system_max = self.core.config.max_lease_ttl
        if config.get("default_lease_ttl", 0) > system_max and not config.get("max_lease_ttl"):
            raise InvalidRequest(f"given default lease TTL greater than system max lease TTL of {system_max}")
        entry = self.core.mounts.new_entry(
            path,
            mount_type,
            _require_str(data, "description", required=False),
            config,
            options,
            local=bool(data.get("local", False)),
            seal_wrap=bool(data.get("seal_wrap", False)),
        )
        index = self.core.mounts.add(entry)
        self.core.changed(["mounts"])
        return Response(status=204, index=index)

    # --- sys/mounts/<path>/tune and sys/auth/<path>/tune ------------------------

    def _secret_mounts(self) -> MountTable:
        return self.core.mounts

    def _auth_mounts(self) -> MountTable:
        return self.core.auth_mounts

    def _tune_path(self, head: str, table: Callable[[], MountTable], kind: str) -> Path:
        return Path(
            f"{head}/(?P<path>.*)/tune",
            {logical.READ: partial(self._read_tune, table), logical.UPDATE: partial(self._write_tune, table)},
            preflight=partial(self._tuned_entry, table),
            synopsis=f"Tune the configuration of a mounted {kind}.",
            description=(
                "Read the effective lease TTLs, description and options, or write default_lease_ttl, "
                "max_lease_ttl, description, options and the other mount settings.  A mount named 'tune' "
                f"is sys/{head}/tune itself, not this path."
            ),
        )

    @staticmethod
    def _tuned_entry(table: Callable[[], MountTable], req: Request, path: str) -> MountEntry:
        """The entry a tune acts on; a 400 for a missing mount whatever the operation."""
        path = normalize_path(path + "/")
        entry = table().entries().get(path)
        if entry is None:
            raise InvalidRequest(f'cannot fetch sysview for path "{path}"')
        return entry

    def _read_tune(self, table: Callable[[], MountTable], req: Request, path: str) -> Response:
        entry = self._tuned_entry(table, req, path)
        config: dict[str, Any] = {
            "default_lease_ttl": self.core.config.default_lease_ttl,
            "max_lease_ttl": self.core.config.max_lease_ttl,
            "force_no_cache": False,
        }
        config.update({k: v for k, v in entry.config.items() if v})
        if table() is self.core.auth_mounts:
            config["token_type"] = "default-service"
        config["description"] = entry.description
        if entry.options:
            config["options"] = entry.options
        return Response(data=config, data_at_top_level=True)

    def _write_tune(self, table: Callable[[], MountTable], req: Request, path: str) -> Response:
        data = req.data
        # Work on a copy: the cached entry must not change unless the write succeeds.
        entry = self._tuned_entry(table, req, path)
        entry = dataclasses.replace(entry, config=dict(entry.config), options=dict(entry.options))
        entry.config.update(
            _mount_config({k: v for k, v in data.items() if k not in ("description", "options")}, current=entry.config)
        )
        if "description" in data:
            entry.description = _require_str(data, "description", required=False)
        if "options" in data:
            options = _options(data["options"])
            if entry.type == "kv" and options.get("version") == "1" and entry.options.get("version") == "2":
                raise InvalidRequest("cannot downgrade mount from KV v2 to KV v1")
            entry.options.update(options)
        index = table().update(entry)
        self.core.changed(["mounts"])
        return Response(status=204, index=index)

    # --- sys/auth --------------------------------------------------------------

    def _list_auth(self, req: Request) -> Response:
        return Response(
            data={e.path: _render_auth(e) for e in self.core.auth_mounts.entries().values()}, data_at_top_level=True
        )

    def _read_auth(self, req: Request, path: str) -> Response:
        path = normalize_path(path)
        entry = self.core.auth_mounts.entries().get(path)
        if entry is None:
            raise InvalidRequest(f"No auth engine at {path}")
        return Response(data=_render_auth(entry), data_at_top_level=True)

    def _enable_auth(self, req: Request, path: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/auth#enable-auth-method"""
        path = normalize_path(path)
        data = req.data
        mount_type = _require_str(data, "type")
        if mount_type == "token":
            raise InvalidRequest("token credential backend cannot be instantiated")
        options = _options(data.get("options"))
        self.core.auth_catalog.check(mount_type, options)  # unknown types refused, nothing built
        config = _mount_config(data.get("config"))
        table = self.core.auth_mounts
        entry = table.new_entry(
            path,
            mount_type,
            _require_str(data, "description", required=False),
            config,
            options,
            local=bool(data.get("local", False)),
            seal_wrap=bool(data.get("seal_wrap", False)),
        )
        # Vault names auth accessors auth_<type>_<hex>.
        index = table.add(dataclasses.replace(entry, accessor="auth_" + entry.accessor))
        self.core.changed(["auth"])
        return Response(status=204, index=index)

    def _disable_auth(self, req: Request, path: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/auth#disable-auth-method"""
        path = normalize_path(path)
        if path == "token/":
            raise InvalidRequest("token credential backend cannot be disabled")
        table = self.core.auth_mounts
        if path not in table.entries():
            return Response(status=204)
        # As Vault: the method's tokens go first, so a failure leaves no token of a removed method.
        self.core.tokens.revoke_under_path(f"auth/{path}")
        _, index = table.remove(path)  # the entry and every value under auth/<uuid>/, in one transaction
        self.core.changed(["auth"])
        return Response(status=204, index=index)

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
            _require_str(data, "type"),
            _require_str(data, "description", required=False),
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
        digest = self.core.audit.hash(normalize_path(path), _require_str(req.data, "input", required=False))
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
        return self.core.tokens.lookup(_require_str(req.data, "token"))

    def _accessor_token(self, req: Request) -> Any:
        token = self.core.tokens.lookup_accessor(_require_str(req.data, "accessor"))
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
        sys_mount = self._sys_mount()
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
            mount_path, body = "sys/", self._sys_mount()
            body["path"] = "sys/"
        else:
            in_auth = path.startswith("auth/")
            entry = (self.core.auth_mounts if in_auth else self.core.mounts).match(path[5:] if in_auth else path)
            if entry is None:
                raise _unmounted(path)
            mount_path = ("auth/" if in_auth else "") + entry.path
            body = _render_auth(entry) if in_auth else entry.render()
            body["path"] = entry.path
        if not self.core.policies.acl(req.token.policies).has_mount_access(mount_path):
            raise _unmounted(path)
        return Response(data=body)


def _render_auth(entry: MountEntry) -> dict[str, Any]:
    """An auth mount as ``sys/auth`` shows it: Vault adds the token type to the config."""
    body = entry.render()
    body["config"].setdefault("token_type", "default-service")
    return body


def _unmounted(path: str) -> PermissionDenied:
    """Vault answers an unmounted UI lookup with this 403."""
    return PermissionDenied(
        f'preflight capability check returned 403, please ensure client\'s policies grant access to path "{path}"'
    )
