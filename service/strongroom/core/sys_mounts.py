"""The ``sys/mounts`` and ``sys/auth`` endpoints, with their ``tune`` paths.

https://developer.hashicorp.com/vault/api-docs/system/mounts
https://developer.hashicorp.com/vault/api-docs/system/auth

Part of the system backend's path table (``core.system``): enabling, reading,
tuning and disabling secrets engines and auth methods over the core's two
mount tables, with Vault's field conversions and refusals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from strongroom.core.mounts import RESERVED, MountEntry, MountTable, normalize_path
from strongroom.errors import InvalidRequest
from strongroom.fields import duration_seconds, number_text, to_bool, to_map, to_string, ttl_seconds
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

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


def require_str(data: dict[str, Any], key: str, required: bool = True) -> str:
    value = data.get(key)
    if value is None:
        value = ""  # hvac sends null for unset optional strings; Vault accepts it
    if not isinstance(value, str):
        raise InvalidRequest(f"'{key}' must be a string")
    if required and not value:
        raise InvalidRequest(f"missing required field '{key}'")
    return value


def check_mount_path(req: Request, path: str) -> None:
    """A mount, auth or audit path must normalise (not empty, no ``..``), whatever the operation."""
    normalize_path(path)


def render_auth(entry: MountEntry) -> dict[str, Any]:
    """An auth mount as ``sys/auth`` shows it: Vault adds the token type to the config."""
    body = entry.render()
    body["config"].setdefault("token_type", "default-service")
    return body


def sys_mount_entry() -> dict[str, Any]:
    """The ``sys/`` mount as ``sys/mounts`` and the UI mount lookup show it (it is no table entry)."""
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


class MountPaths:
    """The mount and auth-method entries of the ``sys/`` path table, calling back into the core."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def paths(self) -> list[Path]:
        """In matching order: ``<mount>/tune`` before the mount named by the rest."""
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
                preflight=check_mount_path,
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
                preflight=check_mount_path,
                synopsis="Enable, read or disable a credential backend.",
                description=(
                    "Write with 'type' (userpass), and optionally 'description' and 'config' (default_lease_ttl, "
                    "max_lease_ttl, ...).  Delete removes the method and its data.  The built-in token method "
                    "can be neither enabled again nor disabled."
                ),
            ),
        ]

    # --- sys/mounts ------------------------------------------------------------

    def _list_mounts(self, req: Request) -> Response:
        listing = {e.path: e.render() for e in self.core.mounts.entries().values()}
        listing["sys/"] = sys_mount_entry()
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

    def _enable_mount(self, req: Request, path: str) -> Response:
        path = normalize_path(path)
        data = req.data
        mount_type = require_str(data, "type")
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
            require_str(data, "description", required=False),
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
            entry.description = require_str(data, "description", required=False)
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
            data={e.path: render_auth(e) for e in self.core.auth_mounts.entries().values()}, data_at_top_level=True
        )

    def _read_auth(self, req: Request, path: str) -> Response:
        path = normalize_path(path)
        entry = self.core.auth_mounts.entries().get(path)
        if entry is None:
            raise InvalidRequest(f"No auth engine at {path}")
        return Response(data=render_auth(entry), data_at_top_level=True)

    def _enable_auth(self, req: Request, path: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/auth#enable-auth-method"""
        path = normalize_path(path)
        data = req.data
        mount_type = require_str(data, "type")
        if mount_type == "token":
            raise InvalidRequest("token credential backend cannot be instantiated")
        options = _options(data.get("options"))
        self.core.auth_catalog.check(mount_type, options)  # unknown types refused, nothing built
        config = _mount_config(data.get("config"))
        table = self.core.auth_mounts
        entry = table.new_entry(
            path,
            mount_type,
            require_str(data, "description", required=False),
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
