"""The system backend: the token-protected ``sys/`` endpoints.

https://developer.hashicorp.com/vault/api-docs/system

Mounts, auth methods, policies, audit devices, keyring status and rotation,
capabilities, sealing and the UI mount lookup used by the vault CLI.  The
endpoints that work while sealed (``sys/init``, ``sys/unseal``,
``sys/seal-status``, ``sys/health``, ``sys/leader``) are served by the API layer
straight from the seal and HA state, not through here.
"""

from __future__ import annotations

import dataclasses

from strongroom.core.audit import API_CREATION_REFUSED
from strongroom.core.mounts import RESERVED, normalize_path
from strongroom.errors import InvalidRequest, MethodNotAllowed, NotFound, PermissionDenied, UnsupportedPath
from strongroom.fields import duration_seconds, number_text, to_bool, to_map, to_string
from strongroom.sdk import logical
from strongroom.sdk.logical import Request, Response

READ, LIST, WRITE, DELETE = (logical.READ,), (logical.LIST,), (logical.CREATE, logical.UPDATE), (logical.DELETE,)


def _ttl_seconds(value, name: str, *, enabling: bool = False) -> int | None:
    """A mount's ``default_lease_ttl`` / ``max_lease_ttl`` as Vault reads it: a
    string (a JSON number counts as its text), ``""`` or null for "not given"
    (None), ``"system"`` for the system default (0), else
    ``parseutil.ParseDurationSecond`` (``strongroom.fields``: no exponents, NaN,
    Infinity, fractions without a unit, nothing beyond Go's 292 years).
    ``enabling``: Vault's mount enable, which decodes the config strictly and
    wraps the parse error.  Negative values, which Vault stores as they are
    (a negative lease is meaningless), are refused."""
    if value is None or value == "":
        return None
    if enabling and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
        raise InvalidRequest("unable to convert given mount config information")
    text = (
        number_text(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else to_string(name, value, validated=True)
    )
    if text == "system":
        return 0
    try:
        seconds = duration_seconds(text)
    except ValueError as exc:
        if enabling:
            which = "default" if name == "default_lease_ttl" else "max"
            raise InvalidRequest(f"unable to parse {which} TTL of {text}: {exc}") from None
        raise InvalidRequest(str(exc)) from None
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


def _mount_config(raw, *, current: dict | None = None) -> dict:
    """The ``config`` of a mount enable (``current`` None), or the settings a
    tune changes in the ``current`` config, validated as Vault validates them;
    raises before anything is stored.

    Enable: the lease TTLs must satisfy default <= max when max is set (Vault's
    "given default lease TTL greater than given max lease TTL").  Tune: a TTL
    not given keeps its value, and the resulting pair must satisfy the same
    (Vault's "backend max lease TTL of ... would be less than ...")."""
    enabling = current is None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        to_map("config", raw, validated=True)
    config = {}
    ttls = {key: _ttl_seconds(raw.get(key), key, enabling=enabling) for key in ("default_lease_ttl", "max_lease_ttl")}
    if enabling:
        config.update({key: seconds or 0 for key, seconds in ttls.items() if key in raw})
        if config.get("max_lease_ttl") and config.get("default_lease_ttl", 0) > config["max_lease_ttl"]:
            raise InvalidRequest("given default lease TTL greater than given max lease TTL")
    else:
        config.update({key: seconds for key, seconds in ttls.items() if seconds is not None})
        if config:
            default = config.get("default_lease_ttl", current.get("default_lease_ttl", 0))
            maximum = config.get("max_lease_ttl", current.get("max_lease_ttl", 0))
            if default and maximum and maximum < default:
                raise InvalidRequest(
                    f"backend max lease TTL of {maximum} would be less than backend default lease TTL of {default}"
                )
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


def _options(raw) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidRequest("'options' must be an object")
    return {str(k): str(v) for k, v in raw.items()}


def _require_str(data: dict, key: str, required: bool = True) -> str:
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


class SystemBackend:
    """Dispatches ``sys/<relative path>`` to one handler per endpoint group."""

    def __init__(self, core):
        self.core = core

    def unauthenticated_paths(self) -> list[str]:
        return []

    def exists(self, req: Request) -> bool | None:
        return None

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

    def handle(self, req: Request) -> Response | None:
        path, op = req.relative_path, req.operation
        head, _, rest = path.partition("/")
        if head == "mounts":
            return self._mounts(rest, op, req)
        if head == "auth":
            return self._auth(rest, op, req)
        if head == "policy":
            return self._policy(rest, op, req, legacy=True)
        if path == "policies/acl" or path.startswith("policies/acl/"):
            return self._policy(path[len("policies/acl/") :], op, req, legacy=False)
        if head == "audit":
            return self._audit(rest, op, req)
        if head == "audit-hash":
            self._ops(op, WRITE)
            return Response(
                data={
                    "hash": self.core.audit.hash(normalize_path(rest), _require_str(req.data, "input", required=False))
                },
                data_at_top_level=True,
            )
        if path == "key-status":
            self._ops(op, READ)
            keyring = self.core.barrier.keyring
            key = keyring.active_key()
            return Response(
                data={
                    "term": key.term,
                    "install_time": key.install_time.isoformat().replace("+00:00", "Z"),
                    "encryptions": 0,
                },
                data_at_top_level=True,
            )
        if path == "rotate":
            self._ops(op, WRITE)
            self.core.seal.rotate()
            return Response(status=204)
        if path == "seal":
            self._ops(op, WRITE)
            self.core.seal.seal()
            return Response(status=204)
        if path == "step-down":
            self._ops(op, WRITE)
            self.core.step_down()
            return Response(status=204)
        if path == "ha-status":
            self._ops(op, READ)
            return Response(data=self.core.ha_status(), data_at_top_level=True)
        if path in ("capabilities-self", "capabilities", "capabilities-accessor"):
            return self._capabilities(path, op, req)
        if path == "internal/ui/mounts" or path.startswith("internal/ui/mounts/"):
            return self._ui_mounts(path[len("internal/ui/mounts/") :], op, req)
        raise UnsupportedPath(f'no handler for route "sys/{path}". route entry not found.')

    @staticmethod
    def _ops(op: str, allowed: tuple[str, ...]) -> None:
        if op not in allowed:
            raise MethodNotAllowed()

    # --- sys/mounts ------------------------------------------------------------

    def _mounts(self, rest: str, op: str, req: Request) -> Response | None:
        table = self.core.mounts
        if not rest:
            self._ops(op, READ)
            listing = {e.path: e.render() for e in table.entries().values()}
            listing["sys/"] = self._sys_mount()
            return Response(data=listing, data_at_top_level=True)
        if rest.endswith("/tune"):
            return self._tune(table, rest[: -len("tune")], op, req)
        path = normalize_path(rest)
        if op == logical.READ:
            entry = table.entries().get(path)
            if entry is None:
                raise InvalidRequest(f"No secret engine mount at {path}")
            return Response(data=entry.render(), data_at_top_level=True)
        if op in WRITE:
            return self._enable_mount(path, req)
        if op == logical.DELETE:
            if path in table.entries():
                _, index = table.remove(path)
                self.core.changed(["mounts"])
                return Response(status=204, index=index)
            return Response(status=204)
        raise MethodNotAllowed()

    def _sys_mount(self) -> dict:
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

    def _enable_mount(self, path: str, req: Request) -> Response:
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

    def _tune(self, table, rest: str, op: str, req: Request) -> Response:
        path = normalize_path(rest)
        entry = table.entries().get(path)
        if entry is None:
            raise InvalidRequest(f'cannot fetch sysview for path "{path}"')
        if op == logical.READ:
            config = {
                "default_lease_ttl": self.core.config.default_lease_ttl,
                "max_lease_ttl": self.core.config.max_lease_ttl,
                "force_no_cache": False,
            }
            config.update({k: v for k, v in entry.config.items() if v})
            config["description"] = entry.description
            if entry.options:
                config["options"] = entry.options
            return Response(data=config, data_at_top_level=True)
        self._ops(op, WRITE)
        data = req.data
        # Work on a copy: the cached entry must not change unless the write succeeds.
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
        index = table.update(entry)
        self.core.changed(["mounts"])
        return Response(status=204, index=index)

    # --- sys/auth --------------------------------------------------------------

    def _auth(self, rest: str, op: str, req: Request) -> Response | None:
        table = self.core.auth_mounts
        if not rest:
            self._ops(op, READ)
            return Response(data={e.path: e.render() for e in table.entries().values()}, data_at_top_level=True)
        if rest.endswith("/tune"):
            return self._tune(table, rest[: -len("tune")], op, req)
        path = normalize_path(rest)
        if op in WRITE:
            mount_type = _require_str(req.data, "type")
            if mount_type == "token":
                raise InvalidRequest("token credential backend cannot be instantiated")
            raise InvalidRequest(f"plugin not found in the catalog: {mount_type}")
        if op == logical.DELETE:
            if path == "token/":
                raise InvalidRequest("token credential backend cannot be disabled")
            return Response(status=204)
        raise MethodNotAllowed()

    # --- sys/policy and sys/policies/acl ---------------------------------------

    def _policy(self, name: str, op: str, req: Request, legacy: bool) -> Response | None:
        store = self.core.policies
        if not name:
            self._ops(op, READ + LIST)
            names = store.names()
            if legacy:
                return Response(data={"keys": names, "policies": names}, data_at_top_level=True)
            return Response(data={"keys": names})
        if op == logical.READ:
            policy = store.get(name)
            if policy is None:
                raise NotFound()
            key = "rules" if legacy else "policy"
            return Response(data={"name": policy.name, key: policy.raw}, data_at_top_level=legacy)
        if op in WRITE:
            text = req.data.get("policy", req.data.get("rules", ""))
            if not isinstance(text, str):
                raise InvalidRequest("'policy' must be a string")
            index = store.put(name, text)
            self.core.changed([f"policy/{name.lower()}"])
            return Response(status=204, index=index)
        if op == logical.DELETE:
            index = store.delete(name)
            self.core.changed([f"policy/{name.lower()}"])
            return Response(status=204, index=index)
        raise MethodNotAllowed()

    # --- sys/audit -------------------------------------------------------------

    def _audit(self, rest: str, op: str, req: Request) -> Response | None:
        broker = self.core.audit
        if not rest:
            self._ops(op, READ)
            return Response(data=broker.list(), data_at_top_level=True)
        path = normalize_path(rest)
        if op in WRITE:
            # CVE-2025-6000 class: a device writes as the server's user wherever file_path points.
            if not self.core.config.unsafe_allow_api_audit_creation:
                raise InvalidRequest(API_CREATION_REFUSED)
            data = req.data
            options = data.get("options") or {}
            if not isinstance(options, dict):
                raise InvalidRequest("'options' must be an object")
            broker.enable(
                path,
                _require_str(data, "type"),
                _require_str(data, "description", required=False),
                options,
                local=bool(data.get("local", False)),
            )
            self.core.changed(["audit"])
            return Response(status=204)
        if op == logical.DELETE:
            broker.disable(path)
            self.core.changed(["audit"])
            return Response(status=204)
        raise MethodNotAllowed()

    # --- sys/capabilities* -----------------------------------------------------

    def _capabilities(self, endpoint: str, op: str, req: Request) -> Response:
        self._ops(op, WRITE)
        data = req.data
        paths = data.get("paths", data.get("path"))
        if isinstance(paths, str):
            paths = [p.strip() for p in paths.split(",") if p.strip()]
        if not paths or not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise InvalidRequest("missing paths")
        if endpoint == "capabilities-self":
            token = req.token
        elif endpoint == "capabilities":
            token = self.core.tokens.lookup(_require_str(data, "token"))
        else:
            token = self.core.tokens.lookup_accessor(_require_str(data, "accessor"))
        if token is None:
            raise InvalidRequest("invalid token")
        acl = self.core.policies.acl(token.policies)
        result = {p: acl.capabilities(p.lstrip("/")) for p in paths}
        if len(paths) == 1:
            result["capabilities"] = result[paths[0]]
        return Response(data=result, data_at_top_level=True)

    # --- sys/internal/ui/mounts ------------------------------------------------

    def _ui_mounts(self, path: str, op: str, req: Request) -> Response:
        self._ops(op, READ)
        if not path:
            return Response(
                data={
                    "secret": {e.path: e.render() for e in self.core.mounts.entries().values()},
                    "auth": {e.path: e.render() for e in self.core.auth_mounts.entries().values()},
                }
            )
        entry = self.core.mounts.match(path)
        if entry is None:
            raise _unmounted(path)
        body = entry.render()
        body["path"] = entry.path
        return Response(data=body)


def _unmounted(path: str) -> PermissionDenied:
    """Vault answers an unmounted UI lookup with this 403."""
    return PermissionDenied(
        f'preflight capability check returned 403, please ensure client\'s policies grant access to path "{path}/"'
    )
