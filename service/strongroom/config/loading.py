"""Building a ``ServerConfig``: ``load``/``loads`` walk a Vault configuration
document (HCL, or Vault's JSON form) block by block against per-block key
tables, and ``dev_config`` builds what ``strongroom server -dev`` runs.

python-hcl2 (and lark) is imported only when HCL text is parsed, never at
import time: workers import this package and get the parsed form (``from_json``).
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import socket
from typing import Any

from strongroom.config.model import (
    DEFAULT_MAX_REQUEST_SIZE,
    SYSTEM_LEASE_TTL,
    AuditDeviceConfig,
    ListenerConfig,
    ServerConfig,
    StorageConfig,
    TelemetryConfig,
    TransitSealConfig,
)
from strongroom.config.values import (
    ConfigError,
    _absolute_dir,
    _address,
    _bool,
    _choice,
    _consul_path,
    _duration,
    _host_port,
    _integer,
    _literal,
    _node_id,
    _nonempty,
    _pem_certificates,
    _pem_private_key,
    _prefix_filter,
    _readable_file,
    _service_tags,
    _show,
    _string,
    _trimmed,
    _url,
    parse_duration,
)

# -- loading -----------------------------------------------------------------


def load(path: str | os.PathLike, *, hostname: str | None = None, cpu_count: int | None = None) -> ServerConfig:
    """Read and validate the configuration file at ``path`` (HCL, or JSON)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f'cannot read configuration file "{os.fspath(path)}": {reason}') from None
    return loads(text, source=os.fspath(path), hostname=hostname, cpu_count=cpu_count)


def loads(
    text: str, source: str = "<string>", *, hostname: str | None = None, cpu_count: int | None = None
) -> ServerConfig:
    """Parse and validate configuration text; ``source`` names it in syntax errors.

    ``hostname`` and ``cpu_count`` (default: this machine's) derive ``node_id``,
    an ``api_addr`` for a wildcard listener, and ``workers``."""
    if text.lstrip().startswith("{"):  # HCL cannot start with "{": this is Vault's JSON form
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{source}: invalid JSON: {exc}") from None
        wraps_strings = False
    else:
        import hcl2  # here, not at the top: workers get the parsed form (``from_json``) and never load lark

        try:
            doc = hcl2.loads(text)
        except Exception as exc:  # lark raises several unrelated types; all mean "bad syntax"
            raise ConfigError(f"{source}: invalid HCL: {_syntax_detail(exc)}") from None
        wraps_strings = _hcl2_wraps_strings()
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the configuration must be an object of keys and blocks")
    return _server(
        _clean(doc, wraps_strings), hostname or socket.gethostname(), os.cpu_count() if cpu_count is None else cpu_count
    )


def dev_config(listen_address: str = "127.0.0.1:8200", *, hostname: str | None = None) -> ServerConfig:
    """What ``strongroom server -dev`` runs: in-memory storage, one worker, plain
    HTTP on ``listen_address``.  Never for production: nothing survives a restart."""
    host, port = _host_port(listen_address, "-dev-listen-address")
    hostname = hostname or socket.gethostname()
    return ServerConfig(
        storage=StorageConfig(type="inmem"),
        listeners=(ListenerConfig(address=listen_address, tls_disable=True),),
        api_addr=_derive_api_addr("http", host, port, hostname),
        workers=1,
        node_id=_derive_node_id(hostname, host, port),
    )


def _syntax_detail(exc: Exception) -> str:
    line = getattr(exc, "line", -1)
    if isinstance(line, int) and line > 0:  # lark's UnexpectedInput: its text lists the whole grammar
        return f"unexpected input at line {line}, column {getattr(exc, 'column', '?')}"
    lines = [text.strip() for text in str(exc).splitlines() if text.strip()]
    return lines[-1] if lines else type(exc).__name__


@functools.cache
def _hcl2_wraps_strings() -> bool:
    # Some python-hcl2 releases keep the double quotes around string values.
    import hcl2

    return hcl2.loads('probe = "x"\n').get("probe") == '"x"'


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _clean(value: Any, wraps_strings: bool) -> Any:
    """Strip python-hcl2's wrapping quotes and metadata keys, recursively."""
    if isinstance(value, dict):
        return {_unquote(k): _clean(v, wraps_strings) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(v, wraps_strings) for v in value]
    if isinstance(value, str) and wraps_strings:
        return _unquote(value)
    return value


# -- blocks ------------------------------------------------------------------

_CONSUL_KEYS = {
    "address": _nonempty,
    "path": _consul_path,
    "token": _string,
    "scheme": _choice("http", "https"),
    "session_ttl": _duration("10s", "24h", " (Consul's session TTL limits)"),
    "consistency_mode": _choice("default", "strong"),
    "max_parallel": _integer(1),
    "check_timeout": _duration("100ms", why=" (Consul needs time to run the check)"),
    "disable_registration": _bool,
    "service": _nonempty,
    "service_tags": _service_tags,
    "service_address": _trimmed,
    "tls_ca_file": _trimmed,
    "tls_cert_file": _trimmed,
    "tls_key_file": _trimmed,
    "tls_skip_verify": _bool,
    "tls_min_version": _choice("tls10", "tls11", "tls12", "tls13"),
}
_CONSUL_DEFAULTS = StorageConfig(type="consul")
_CONSUL_TLS_KEYS = ("tls_ca_file", "tls_cert_file", "tls_key_file", "tls_skip_verify", "tls_min_version")
_LISTENER_KEYS = {
    "address": _address,
    "tls_disable": _bool,
    "tls_cert_file": _string,
    "tls_key_file": _string,
    "max_request_size": _integer(),
    "unauthenticated_metrics_access": _bool,
    "disable_unauthed_rekey_endpoints": _bool,
    "disable_unauthed_generate_root_endpoints": _bool,
    "max_json_depth": _integer(),
    "max_json_string_value_length": _integer(),
    "max_json_object_entry_count": _integer(),
    "max_json_array_element_count": _integer(),
    "max_json_token": _integer(),
    "http_read_header_timeout": _duration(),
    "http_read_timeout": _duration(),
}
# Measured: 400 levels of nesting go through the audit devices and KV v2, 500 do not.
MAX_JSON_DEPTH = 350
_LISTENER_TELEMETRY_KEYS = {"unauthenticated_metrics_access": _bool}
_TELEMETRY_KEYS = {
    "prometheus_retention_time": _duration(),
    "disable_hostname": _bool,
    "usage_gauge_period": _duration(allow_none=True),
    "maximum_gauge_cardinality": _integer(1),
    "enable_hostname_label": _bool,
    "lease_metrics_epsilon": _duration(),
    "num_lease_metrics_buckets": _integer(1),
    "add_lease_metrics_namespace_labels": _bool,
    "filter_default": _bool,
    "prefix_filter": _prefix_filter,
    "vault_metric_names": _bool,
}
_TELEMETRY_SINKS = ("statsite_", "statsd_", "dogstatsd_", "circonus_", "stackdriver_", "metrics_prefix")
_TOP_KEYS = {
    "api_addr": _url,
    "cluster_addr": _url,
    "cluster_name": _trimmed,
    "cluster_ca_file": _trimmed,
    "ui": _bool,
    "disable_mlock": _bool,
    "log_level": _choice("trace", "debug", "info", "warn", "warning", "error"),
    "workers": _integer(1),
    "disable_performance_standby": _bool,
    "default_lease_ttl": _duration(),
    "max_lease_ttl": _duration(),
    "node_id": _node_id,
    "raw_storage_endpoint": _bool,
    "pid_file": _trimmed,
    "step_down_holdoff": _duration(),
    "cache_size": _integer(0),
    "disable_cache": _bool,
    "unsafe_allow_api_audit_creation": _bool,
    "audit_file_directory": _absolute_dir,
}
_TOP_BLOCKS = ("storage", "listener", "telemetry", "audit", "seal")
_TRANSIT_SEAL_KEYS = {
    "address": _trimmed,
    "token": _string,
    "key_name": _trimmed,
    "mount_path": _trimmed,
    "namespace": _trimmed,
    "disable_renewal": _bool,
    "tls_ca_cert": _trimmed,
    "tls_client_cert": _trimmed,
    "tls_client_key": _trimmed,
    "tls_server_name": _trimmed,
    "tls_skip_verify": _bool,
}
_AUDIT_KEYS = {"description": _string, "local": _bool}
_AUDIT_TYPES = ("file",)
_UNSUPPORTED_TOP = {
    "ha_storage": 'storage "consul" is also the HA backend',
    "service_registration": 'service registration is configured in storage "consul"',
}
_UNSUPPORTED_TOP.update(
    dict.fromkeys(
        (
            "plugin_directory",
            "disable_clustering",
            "log_format",
            "log_file",
            "license_path",
            "entropy",
            "replication",
            "sentinel",
            "cluster_cipher_suites",
            "plugin_file_uid",
            "plugin_file_permissions",
            "default_max_request_duration",
            "introspection_endpoint",
        ),
        "not supported by Strongroom",
    )
)


def _fields(body: dict, block: str, spec: dict, extra: tuple[str, ...] = ()) -> dict:
    """Coerce the keys of one block by ``spec``; unknown keys are errors."""
    out = {}
    for key, value in body.items():
        path = f"{block}.{key}" if block else key
        if key in spec:
            out[key] = spec[key](value, path)
        elif key not in extra:
            raise _unknown(key, block, list(spec) + list(extra))
    return out


def _unknown(key: str, block: str, known: list[str]) -> ConfigError:
    where = f"{block}: unknown key" if block else "unknown top-level key"
    close = difflib.get_close_matches(key, known, n=1)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    return ConfigError(f'{where} "{key}"{hint}', f"{block}.{key}" if block else key)


def _bodies(value: Any, path: str) -> list[dict]:
    """An unlabelled block's bodies: python-hcl2 gives a list, JSON maybe a dict."""
    bodies = value if isinstance(value, list) else [value]
    if not all(isinstance(b, dict) for b in bodies):
        raise ConfigError(f"{path}: expected a block, e.g. {path.rsplit('.', 1)[-1]} {{ ... }}", path)
    return bodies


def _labelled(value: Any, name: str, example: str) -> list[tuple[str, dict]]:
    """``name "label" { ... }`` blocks as (label, body) pairs, in file order."""
    blocks: list[tuple[str, dict]] = []
    for entry in _bodies(value, name):
        if not entry or not all(isinstance(body, (dict, list)) for body in entry.values()):
            raise ConfigError(f"{name}: expected a type label, e.g. {example}", name)
        for label, body in entry.items():
            blocks.extend((label, one) for one in _bodies(body, f'{name} "{label}"'))
    return blocks


def _storage(doc: dict) -> StorageConfig:
    blocks = _labelled(doc["storage"], "storage", 'storage "consul" { ... }') if "storage" in doc else []
    if len(blocks) != 1:
        found = f"found {len(blocks)}" if blocks else 'none found, e.g. storage "consul" { ... }'
        raise ConfigError(f"storage: exactly one storage block is required, {found}", "storage")
    label, body = blocks[0]
    block = f'storage "{label}"'
    if label not in ("consul", "inmem"):
        raise ConfigError(
            f'{block}: unsupported storage type "{label}" (Strongroom supports "consul" and "inmem")', "storage"
        )
    if label == "inmem":
        return StorageConfig(type=label, **_fields(body, block, {}))
    values = _fields(body, block, _CONSUL_KEYS)
    _consul_scheme(values, block)
    storage = StorageConfig(type=label, **values)
    _check_consul_tls(storage, block)
    return storage


def _consul_scheme(values: dict, block: str) -> None:
    """An address written as ``https://host:port`` sets the scheme; a ``scheme``
    that says otherwise is an error rather than a guess."""
    address = values.get("address", "")
    if "://" not in address:
        return
    written = address.split("://", 1)[0].lower()
    if written not in ("http", "https"):
        raise ConfigError(
            f"{block}.address: unsupported scheme {_show(written)} in {_show(address)}: "
            f'use "http://" or "https://" (or host:port and the scheme key)',
            f"{block}.address",
        )
    if values.get("scheme", written) != written:
        raise ConfigError(
            f'{block}.scheme: "{values["scheme"]}" contradicts the address {_show(address)}', f"{block}.scheme"
        )
    values["scheme"] = written


def _check_consul_tls(storage: StorageConfig, block: str) -> None:
    """The TLS settings for Consul: only with https (a CA file next to plain HTTP
    would leave the token and the data readable on the wire while looking secure),
    cert and key together, every file present and loadable."""
    if storage.scheme != "https":
        for key in _CONSUL_TLS_KEYS:
            # Written out at its default a key changes nothing, so it is let through.
            if getattr(storage, key) != getattr(_CONSUL_DEFAULTS, key):
                raise ConfigError(
                    f'{block}.{key}: Consul is reached over plain HTTP: set scheme = "https" '
                    f"(or an https:// address) to use TLS",
                    f"{block}.{key}",
                )
        return
    cert, key = storage.tls_cert_file, storage.tls_key_file
    if bool(cert) != bool(key):
        missing, given = ("tls_key_file", "tls_cert_file") if cert else ("tls_cert_file", "tls_key_file")
        raise ConfigError(
            f"{block}.{missing}: required with {given} (the client certificate and its key go together)",
            f"{block}.{missing}",
        )
    for name in ("tls_ca_file", "tls_cert_file"):
        if getattr(storage, name):
            _pem_certificates(getattr(storage, name), f"{block}.{name}")
    if key:
        _pem_private_key(key, cert, f"{block}.tls_key_file")


def _listeners(doc: dict) -> tuple[ListenerConfig, ...]:
    blocks = _labelled(doc["listener"], "listener", 'listener "tcp" { ... }') if "listener" in doc else []
    if not blocks:
        raise ConfigError('listener: at least one listener "tcp" block is required', "listener")
    listeners: list[ListenerConfig] = []
    seen: dict[str, str] = {}
    for index, (label, body) in enumerate(blocks):
        block = f'listener "{label}"' + (f" #{index + 1}" if len(blocks) > 1 else "")
        if label != "tcp":
            raise ConfigError(f'{block}: unsupported listener type "{label}" (only "tcp")', "listener")
        values = _fields(body, block, _LISTENER_KEYS, extra=("telemetry",))
        if "telemetry" in body:
            nested = {}
            for sub in _bodies(body["telemetry"], f"{block}.telemetry"):
                nested.update(_fields(sub, f"{block}.telemetry", _LISTENER_TELEMETRY_KEYS))
            if "unauthenticated_metrics_access" in nested and "unauthenticated_metrics_access" in values:
                raise ConfigError(
                    f"{block}.unauthenticated_metrics_access: set it either here or in the "
                    f"telemetry sub-block, not both",
                    f"{block}.unauthenticated_metrics_access",
                )
            values.update(nested)
        depth = values.get("max_json_depth", MAX_JSON_DEPTH)
        if not 1 <= depth <= MAX_JSON_DEPTH:
            raise ConfigError(
                f"{block}.max_json_depth: must be between 1 and {MAX_JSON_DEPTH}, got {depth} "
                f"(deeper bodies would exhaust the interpreter's recursion limit in the audit "
                f"and KV code; Vault's default is 300)",
                f"{block}.max_json_depth",
            )
        size = values.get("max_request_size", 0)
        values["max_request_size"] = DEFAULT_MAX_REQUEST_SIZE if size == 0 else max(size, -1)
        listener = ListenerConfig(type=label, **values)
        if listener.address in seen:
            raise ConfigError(
                f'{block}.address: "{listener.address}" is already used by {seen[listener.address]}', f"{block}.address"
            )
        seen[listener.address] = block
        if not listener.tls_disable:
            _check_tls_files(listener, block)
        listeners.append(listener)
    return tuple(listeners)


def _check_tls_files(listener: ListenerConfig, block: str) -> None:
    for key in ("tls_cert_file", "tls_key_file"):
        path, name = f"{block}.{key}", getattr(listener, key)
        if not name:
            raise ConfigError(f"{path}: required when TLS is enabled (or set tls_disable = true)", path)
        _readable_file(name, path)


def _telemetry(doc: dict) -> TelemetryConfig:
    bodies = _bodies(doc["telemetry"], "telemetry") if "telemetry" in doc else []
    if len(bodies) > 1:
        raise ConfigError(f"telemetry: at most one telemetry block is allowed, found {len(bodies)}", "telemetry")
    body = bodies[0] if bodies else {}
    for key in body:
        if key.startswith(_TELEMETRY_SINKS):
            raise ConfigError(
                f"telemetry.{key}: not supported: Strongroom exports Prometheus metrics only, "
                f"named strongroom_* (/v1/sys/metrics)",
                f"telemetry.{key}",
            )
    return TelemetryConfig(**_fields(body, "telemetry", _TELEMETRY_KEYS))


def _audit_devices(doc: dict) -> tuple[AuditDeviceConfig, ...]:
    """``audit "<type>" "<path>" { ... }`` blocks, in file order; paths are unique."""
    if "audit" not in doc:
        return ()
    devices, seen = [], set()
    for device_type, named in _labelled(doc["audit"], "audit", 'audit "file" "name" { ... }'):
        block = f'audit "{device_type}"'
        if device_type not in _AUDIT_TYPES:
            raise ConfigError(f'{block}: unsupported audit device type "{device_type}" (only "file")', "audit")
        if not named or not all(isinstance(body, (dict, list)) for body in named.values()):
            raise ConfigError(f'{block}: expected a path label, e.g. audit "file" "to-file" {{ ... }}', "audit")
        for label, bodies in named.items():
            for body in _bodies(bodies, f'{block} "{label}"'):
                where = f'{block} "{label}"'
                path = label.strip("/")
                if not path or ".." in path.split("/"):
                    raise ConfigError(f"{where}: invalid audit device path {_show(label)}", "audit")
                if path in seen:
                    raise ConfigError(f"{where}: the path is already used by another audit block", "audit")
                seen.add(path)
                values = _fields(body, where, _AUDIT_KEYS, extra=("options",))
                options = {}
                for sub in _bodies(body.get("options", {}), f"{where}.options"):
                    for key, value in sub.items():
                        options[key] = (
                            str(_literal(value, f"{where}.options.{key}")).lower()
                            if isinstance(value, bool)
                            else str(_literal(value, f"{where}.options.{key}"))
                        )
                if not options.get("file_path"):
                    raise ConfigError(
                        f"{where}.options.file_path: required for a file audit device", f"{where}.options.file_path"
                    )
                devices.append(
                    AuditDeviceConfig(
                        type=device_type, path=path + "/", options=tuple(sorted(options.items())), **values
                    )
                )
    return tuple(devices)


#: Vault's deprecated name for the storage block, still accepted by Vault.
BACKEND_WARNING = 'the top-level "backend" block is deprecated: name it "storage" (same contents)'


def _backend_as_storage(doc: dict) -> tuple[dict, tuple[str, ...]]:
    """Vault's deprecated ``backend "consul" { ... }`` read as ``storage``, with a warning."""
    if "backend" not in doc:
        return doc, ()
    if "storage" in doc:
        raise ConfigError('backend: set "storage" or the deprecated "backend", not both', "backend")
    doc = {("storage" if key == "backend" else key): value for key, value in doc.items()}
    return doc, (BACKEND_WARNING,)


def _seal(doc: dict, storage_type: str) -> TransitSealConfig | None:
    """``seal "transit" { ... }`` (at most one; ``disabled = true`` is Vault's seal
    migration, which Strongroom does not do).  None: the Shamir seal."""
    if "seal" not in doc:
        return None
    blocks = _labelled(doc["seal"], "seal", 'seal "transit" { ... }')
    if len(blocks) != 1:
        raise ConfigError(f"seal: at most one seal block is allowed, found {len(blocks)}", "seal")
    label, body = blocks[0]
    block = f'seal "{label}"'
    if label == "shamir":
        raise ConfigError(f"{block}: the Shamir seal is the default: remove the seal block", "seal")
    if label != "transit":
        raise ConfigError(f'{block}: unsupported seal type "{label}" (Strongroom supports "transit")', "seal")
    if "disabled" in body:
        raise ConfigError(f"{block}.disabled: seal migration is not supported by Strongroom", f"{block}.disabled")
    if storage_type == "inmem":
        raise ConfigError(f'{block}: auto-unseal needs storage "consul" (a node core keeps the seal)', "seal")
    return TransitSealConfig(**_fields(body, block, _TRANSIT_SEAL_KEYS))


def _server(doc: dict, hostname: str, cpu_count: int | None) -> ServerConfig:
    doc, warnings = _backend_as_storage(doc)
    for key in doc:
        if key in _UNSUPPORTED_TOP:
            raise ConfigError(f'top-level key "{key}": {_UNSUPPORTED_TOP[key]}', key)
    values = _fields(doc, "", _TOP_KEYS, extra=_TOP_BLOCKS)
    storage, listeners, telemetry = _storage(doc), _listeners(doc), _telemetry(doc)
    values["audit"] = _audit_devices(doc)
    values["seal"] = _seal(doc, storage.type)
    _check_files(values)
    directory = values.get("audit_file_directory", "")
    for device in values["audit"]:
        if directory and not _inside(device.options_dict["file_path"], directory):
            raise ConfigError(
                f'audit "{device.type}" "{device.path.rstrip("/")}".options.file_path: '
                f"{_show(device.options_dict['file_path'])} is outside audit_file_directory "
                f"{_show(directory)}",
                "audit",
            )

    if storage.type == "inmem":
        if values.get("workers", 1) != 1:
            raise ConfigError(
                f'workers: storage "inmem" keeps its data in one process, so it requires '
                f"workers = 1 (got {values['workers']})",
                "workers",
            )
        values["workers"] = 1
    # One gevent worker per core: a worker uses at most one core, and a second busy worker on
    # the same core only adds context switches (measured: README, "Sizing workers").
    values.setdefault("workers", cpu_count or 1)

    for key in ("default_lease_ttl", "max_lease_ttl"):
        if parse_duration(values.setdefault(key, SYSTEM_LEASE_TTL)) == 0:  # Vault: 0 means the system default
            values[key] = SYSTEM_LEASE_TTL
    if parse_duration(values["default_lease_ttl"]) > parse_duration(values["max_lease_ttl"]):
        raise ConfigError(
            f"default_lease_ttl: {_show(values['default_lease_ttl'])} exceeds max_lease_ttl "
            f"{_show(values['max_lease_ttl'])}",
            "default_lease_ttl",
        )

    first = listeners[0]
    host, port = _host_port(first.address, "listener")
    if not values.get("api_addr"):
        values["api_addr"] = _derive_api_addr("http" if first.tls_disable else "https", host, port, hostname)
    if not values.get("node_id"):
        values["node_id"] = _derive_node_id(hostname, host, port)
    return ServerConfig(storage=storage, listeners=listeners, telemetry=telemetry, warnings=warnings, **values)


def _check_files(values: dict) -> None:
    """The top-level settings that name files: readable, and what they must hold."""
    if values.get("cluster_ca_file"):
        _pem_certificates(values["cluster_ca_file"], "cluster_ca_file")


def _inside(file_path: str, directory: str) -> bool:
    """Whether ``file_path`` names a file inside ``directory`` (lexically: no ``..`` at all,
    as the audit device itself checks, core/audit_device.py)."""
    if file_path.lower() in ("stdout", "discard"):
        return True
    normalized = os.path.normpath(file_path)
    return (
        os.path.isabs(file_path)
        and ".." not in file_path.split("/")
        and normalized.startswith(directory.rstrip("/") + "/")
    )


def _derive_api_addr(scheme: str, host: str, port: int, hostname: str) -> str:
    """The first listener's URL; a wildcard bind is reachable at the hostname."""
    if host in ("", "0.0.0.0", "::"):
        host = hostname
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _derive_node_id(hostname: str, host: str, port: int) -> str:
    """``<hostname>-<listen host>-<port>``: stable across restarts and worker
    reloads, and distinct for several nodes on one machine (loopback test clusters)."""
    raw = re.sub(r"[^A-Za-z0-9._-]", "-", f"{hostname}-{host}-{port}")
    return re.sub(r"-{2,}", "-", raw).strip("-._") or "strongroom"
