"""Server configuration: Vault's HCL syntax, parsed once into frozen dataclasses.

``load(path)`` reads a file in Vault's configuration language
(https://developer.hashicorp.com/vault/docs/configuration), validates every key
and returns a ``ServerConfig``; anything wrong raises ``ConfigError`` naming the
offending key path, e.g. ``listener "tcp": unknown key "adress"``.  JSON files in
Vault's JSON form are accepted too.  Durations are kept as written (``"15s"``)
and parsed with ``parse_duration``, the same syntax the API uses for TTLs.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
import re
import socket
import urllib.parse
from dataclasses import asdict, dataclass, field

DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024


class ConfigError(Exception):
    """The configuration is invalid; raised at start-up, never mapped to HTTP.

    ``str(error)`` names the key path and the problem; ``key`` holds the path
    alone (``listener "tcp".address``), empty when no single key is at fault."""

    def __init__(self, message: str, key: str = ""):
        super().__init__(message)
        self.key = key


# -- durations ---------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")


def parse_duration(value: str | int | float) -> float:
    """Seconds in a Vault duration: ``"500ms"``, ``"10s"``, ``"1h30m"``, ``"7d"``,
    a plain integer (``3600`` or ``"3600"``: seconds) or a number of seconds.

    The empty string is 0 (Vault's "unset").  Raises ``ValueError`` for anything
    else, and for negative or non-finite values."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"invalid duration {_show(value)}: expected a string like \"10s\" or a number of seconds")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        if re.fullmatch(r"\+?\d+", text):
            seconds = float(int(text))
        else:
            seconds, pos, body = 0.0, 0, text.lstrip("+")
            while pos < len(body):
                match = _DURATION_PART.match(body, pos)
                if match is None:
                    raise ValueError(f'invalid duration {_show(value)}: expected seconds or a sequence of '
                                     f'number+unit such as "500ms", "10s", "5m", "1h30m", "7d"')
                seconds += float(match[1]) * _UNITS[match[2]]
                pos = match.end()
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {_show(value)}: must be a finite, non-negative time")
    return seconds


# -- the typed configuration -------------------------------------------------


@dataclass(frozen=True)
class StorageConfig:
    """``storage "consul" { ... }`` or ``storage "inmem" {}``; Consul is also the
    HA backend (lock, sessions, service registration).

    https://developer.hashicorp.com/vault/docs/configuration/storage/consul"""

    type: str
    address: str = "127.0.0.1:8500"
    path: str = "strongroom/"
    token: str = ""
    scheme: str = "http"
    session_ttl: str = "15s"
    consistency_mode: str = "default"
    max_parallel: int = 128
    check_timeout: str = "500ms"
    disable_registration: bool = False
    service: str = "strongroom"
    service_tags: str = ""
    service_address: str = ""

    @property
    def session_ttl_seconds(self) -> float:
        """``session_ttl`` in seconds."""
        return parse_duration(self.session_ttl)

    @property
    def check_timeout_seconds(self) -> float:
        """``check_timeout`` in seconds."""
        return parse_duration(self.check_timeout)

    @property
    def service_tag_list(self) -> tuple[str, ...]:
        """``service_tags`` (comma-separated, as in Vault) as a tuple."""
        return tuple(tag.strip() for tag in self.service_tags.split(",") if tag.strip())


@dataclass(frozen=True)
class ListenerConfig:
    """``listener "tcp" { ... }``.

    ``max_request_size`` follows Vault: unset or 0 means 32 MiB, a negative
    value turns the limit off and is stored as -1 (the API reads <= 0 as "no
    limit").  https://developer.hashicorp.com/vault/docs/configuration/listener/tcp"""

    type: str = "tcp"
    address: str = "127.0.0.1:8200"
    tls_disable: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
    unauthenticated_metrics_access: bool = False


@dataclass(frozen=True)
class TelemetryConfig:
    """The top-level ``telemetry { ... }`` block: Vault's common keys.  Strongroom
    exports Prometheus only, so sinks (statsd, circonus, ...) are refused.

    https://developer.hashicorp.com/vault/docs/configuration/telemetry"""

    prometheus_retention_time: str = "24h"
    disable_hostname: bool = True
    usage_gauge_period: str = "10m"  # "none" turns the usage gauges off
    maximum_gauge_cardinality: int = 500
    enable_hostname_label: bool = False
    lease_metrics_epsilon: str = "1h"
    num_lease_metrics_buckets: int = 168
    add_lease_metrics_namespace_labels: bool = False
    filter_default: bool = True
    prefix_filter: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerConfig:
    """The whole server configuration, as ``load``/``loads`` return it: every
    default filled in (``api_addr``, ``node_id``, ``workers``) and validated.

    https://developer.hashicorp.com/vault/docs/configuration"""

    storage: StorageConfig
    listeners: tuple[ListenerConfig, ...]
    api_addr: str = ""
    cluster_addr: str = ""
    cluster_name: str = ""
    ui: bool = False
    disable_mlock: bool = True  # accepted for Vault compatibility; Strongroom never mlocks
    log_level: str = "info"
    workers: int = 1
    disable_performance_standby: bool = False
    default_lease_ttl: str = "768h"
    max_lease_ttl: str = "768h"
    node_id: str = ""
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    raw_storage_endpoint: bool = False
    pid_file: str = ""
    # After sys/step-down the node stays out of the election this long, so another node wins.
    step_down_holdoff: str = "2s"
    # The active node's per-worker read cache, in entries (Vault's setting); see storage/cache.py.
    cache_size: int = 16384
    disable_cache: bool = False

    @property
    def default_lease_ttl_seconds(self) -> float:
        """``default_lease_ttl`` in seconds."""
        return parse_duration(self.default_lease_ttl)

    @property
    def max_lease_ttl_seconds(self) -> float:
        """``max_lease_ttl`` in seconds."""
        return parse_duration(self.max_lease_ttl)


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


def loads(text: str, source: str = "<string>", *, hostname: str | None = None,
          cpu_count: int | None = None) -> ServerConfig:
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
    return _server(_clean(doc, wraps_strings), hostname or socket.gethostname(),
                   os.cpu_count() if cpu_count is None else cpu_count)


def to_json(config: ServerConfig) -> str:
    """The validated configuration as JSON, for ``from_json`` in another process."""
    return json.dumps(asdict(config))


def from_json(text: str) -> ServerConfig:
    """What ``to_json`` wrote, as the same ``ServerConfig`` (no validation: it was validated)."""
    doc = json.loads(text)
    telemetry = doc["telemetry"]
    return ServerConfig(**{
        **doc,
        "storage": StorageConfig(**doc["storage"]),
        "listeners": tuple(ListenerConfig(**listener) for listener in doc["listeners"]),
        "telemetry": TelemetryConfig(**{**telemetry, "prefix_filter": tuple(telemetry["prefix_filter"])}),
    })


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


def _clean(value, wraps_strings: bool):
    """Strip python-hcl2's wrapping quotes and metadata keys, recursively."""
    if isinstance(value, dict):
        return {_unquote(k): _clean(v, wraps_strings) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(v, wraps_strings) for v in value]
    if isinstance(value, str) and wraps_strings:
        return _unquote(value)
    return value


# -- value coercion: each takes (value, key path) and returns the typed value --


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "null" if value is None else str(value)


def _literal(value, path):
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        raise ConfigError(f"{path}: expressions are not supported, write a literal value (got {_show(value)})", path)
    if isinstance(value, (dict, list)) or value is None:
        got = "null" if value is None else ("a list" if isinstance(value, list) else "a block")
        raise ConfigError(f"{path}: expected a single value, got {got}", path)
    return value


def _string(value, path) -> str:
    value = _literal(value, path)
    if not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {_show(value)}", path)
    return value


def _trimmed(value, path) -> str:
    return _string(value, path).strip()


def _nonempty(value, path) -> str:
    text = _string(value, path).strip()
    if not text:
        raise ConfigError(f"{path}: must not be empty", path)
    return text


def _bool(value, path) -> bool:
    value = _literal(value, path)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "t", "1", "false", "f", "0"):
        return value.strip().lower() in ("true", "t", "1")
    raise ConfigError(f"{path}: invalid boolean {_show(value)}: use true or false", path)


def _integer(minimum: int | None = None):
    def coerce(value, path) -> int:
        value = _literal(value, path)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            value = int(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: invalid integer {_show(value)}", path)
        if minimum is not None and value < minimum:
            raise ConfigError(f"{path}: must be at least {minimum}, got {value}", path)
        return value
    return coerce


def _choice(*choices: str):
    def coerce(value, path) -> str:
        text = _string(value, path).strip().lower()
        if text not in choices:
            allowed = ", ".join(f'"{c}"' for c in choices)
            raise ConfigError(f"{path}: invalid value {_show(value)}: must be one of {allowed}", path)
        return text
    return coerce


def _format_seconds(seconds: float) -> str:
    if seconds.is_integer():
        return str(int(seconds))
    return f"{seconds:.9f}".rstrip("0") + "s"


def _duration(minimum: str = "", maximum: str = "", why: str = "", allow_none: bool = False):
    low = parse_duration(minimum) if minimum else 0.0
    high = parse_duration(maximum) if maximum else math.inf

    def coerce(value, path) -> str:
        value = _literal(value, path)
        if allow_none and isinstance(value, str) and value.strip().lower() == "none":
            return "none"
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}", path) from None
        if not low <= seconds <= high:
            bounds = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
            raise ConfigError(f"{path}: must be {bounds}{why}, got {_show(value)}", path)
        return value.strip() if isinstance(value, str) else _format_seconds(seconds)
    return coerce


def _url(value, path) -> str:
    text = _string(value, path).strip()
    if not text:
        return ""
    parts = urllib.parse.urlsplit(text)
    try:
        parts.port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f'{path}: invalid URL {_show(value)}: expected "https://host:port"', path)
    return text.rstrip("/")


def _host_port(address: str, path: str) -> tuple[str, int]:
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]\s]*):(\d+)", address)
    port = int(match[2] or match[4]) if match else 0
    if not match or not 0 < port < 65536:
        raise ConfigError(f'{path}: invalid address {_show(address)}: expected "host:port" '
                          f'(IPv6 as "[::1]:8200")', path)
    return (match[1] or match[3] or ""), port


def _address(value, path) -> str:
    text = _nonempty(value, path)
    _host_port(text, path)
    return text


def _consul_path(value, path) -> str:
    # As Vault does: no leading slash, always a trailing one.
    text = _nonempty(value, path).lstrip("/")
    if not text:
        raise ConfigError(f"{path}: must name a key prefix, not the root of Consul's KV store", path)
    return text if text.endswith("/") else text + "/"


def _service_tags(value, path) -> str:
    if isinstance(value, list):
        return ",".join(_nonempty(tag, f"{path}[{i}]") for i, tag in enumerate(value))
    return _string(value, path).strip()


def _prefix_filter(value, path) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f'{path}: expected a list such as ["+vault.token", "-vault.expire"]', path)
    entries = tuple(_nonempty(entry, f"{path}[{i}]") for i, entry in enumerate(value))
    for i, entry in enumerate(entries):
        if entry[0] not in "+-":
            raise ConfigError(f'{path}[{i}]: {_show(entry)} must start with "+" or "-"', f"{path}[{i}]")
    return entries


def _node_id(value, path) -> str:
    text = _string(value, path).strip()
    if text and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", text):
        raise ConfigError(f"{path}: invalid node id {_show(value)}: use letters, digits, '.', '_' and '-'", path)
    return text


# -- blocks ------------------------------------------------------------------

_CONSUL_KEYS = {
    "address": _nonempty, "path": _consul_path, "token": _string, "scheme": _choice("http", "https"),
    "session_ttl": _duration("10s", "24h", " (Consul's session TTL limits)"),
    "consistency_mode": _choice("default", "strong"), "max_parallel": _integer(1),
    "check_timeout": _duration("100ms", why=" (Consul needs time to run the check)"),
    "disable_registration": _bool, "service": _nonempty, "service_tags": _service_tags,
    "service_address": _trimmed,
}
_LISTENER_KEYS = {
    "address": _address, "tls_disable": _bool, "tls_cert_file": _string, "tls_key_file": _string,
    "max_request_size": _integer(), "unauthenticated_metrics_access": _bool,
}
_LISTENER_TELEMETRY_KEYS = {"unauthenticated_metrics_access": _bool}
_TELEMETRY_KEYS = {
    "prometheus_retention_time": _duration(), "disable_hostname": _bool,
    "usage_gauge_period": _duration(allow_none=True), "maximum_gauge_cardinality": _integer(1),
    "enable_hostname_label": _bool, "lease_metrics_epsilon": _duration(),
    "num_lease_metrics_buckets": _integer(1), "add_lease_metrics_namespace_labels": _bool,
    "filter_default": _bool, "prefix_filter": _prefix_filter,
}
_TELEMETRY_SINKS = ("statsite_", "statsd_", "dogstatsd_", "circonus_", "stackdriver_", "metrics_prefix")
_TOP_KEYS = {
    "api_addr": _url, "cluster_addr": _url, "cluster_name": _trimmed,
    "ui": _bool, "disable_mlock": _bool,
    "log_level": _choice("trace", "debug", "info", "warn", "warning", "error"),
    "workers": _integer(1), "disable_performance_standby": _bool,
    "default_lease_ttl": _duration(), "max_lease_ttl": _duration(), "node_id": _node_id,
    "raw_storage_endpoint": _bool, "pid_file": _trimmed, "step_down_holdoff": _duration(),
    "cache_size": _integer(0), "disable_cache": _bool,
}
_TOP_BLOCKS = ("storage", "listener", "telemetry")
_UNSUPPORTED_TOP = {
    "ha_storage": 'storage "consul" is also the HA backend',
    "service_registration": 'service registration is configured in storage "consul"',
    "seal": "only Shamir unseal keys are supported",
}
_UNSUPPORTED_TOP.update(dict.fromkeys(
    ("plugin_directory", "disable_clustering", "log_format", "log_file",
     "license_path", "entropy", "replication", "sentinel", "cluster_cipher_suites", "plugin_file_uid",
     "plugin_file_permissions", "default_max_request_duration", "introspection_endpoint"),
    "not supported by Strongroom"))


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


def _bodies(value, path: str) -> list[dict]:
    """An unlabelled block's bodies: python-hcl2 gives a list, JSON maybe a dict."""
    bodies = value if isinstance(value, list) else [value]
    if not all(isinstance(b, dict) for b in bodies):
        raise ConfigError(f"{path}: expected a block, e.g. {path.rsplit('.', 1)[-1]} {{ ... }}", path)
    return bodies


def _labelled(value, name: str, example: str) -> list[tuple[str, dict]]:
    """``name "label" { ... }`` blocks as (label, body) pairs, in file order."""
    blocks = []
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
        raise ConfigError(f'{block}: unsupported storage type "{label}" (Strongroom supports "consul" and "inmem")',
                          "storage")
    return StorageConfig(type=label, **_fields(body, block, _CONSUL_KEYS if label == "consul" else {}))


def _listeners(doc: dict) -> tuple[ListenerConfig, ...]:
    blocks = _labelled(doc["listener"], "listener", 'listener "tcp" { ... }') if "listener" in doc else []
    if not blocks:
        raise ConfigError('listener: at least one listener "tcp" block is required', "listener")
    listeners, seen = [], {}
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
                raise ConfigError(f"{block}.unauthenticated_metrics_access: set it either here or in the "
                                  f"telemetry sub-block, not both", f"{block}.unauthenticated_metrics_access")
            values.update(nested)
        size = values.get("max_request_size", 0)
        values["max_request_size"] = DEFAULT_MAX_REQUEST_SIZE if size == 0 else max(size, -1)
        listener = ListenerConfig(type=label, **values)
        if listener.address in seen:
            raise ConfigError(f'{block}.address: "{listener.address}" is already used by {seen[listener.address]}',
                              f"{block}.address")
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
        if not os.path.isfile(name):
            raise ConfigError(f"{path}: file not found: {_show(name)}", path)
        if not os.access(name, os.R_OK):
            raise ConfigError(f"{path}: file not readable: {_show(name)}", path)


def _telemetry(doc: dict) -> TelemetryConfig:
    bodies = _bodies(doc["telemetry"], "telemetry") if "telemetry" in doc else []
    if len(bodies) > 1:
        raise ConfigError(f"telemetry: at most one telemetry block is allowed, found {len(bodies)}", "telemetry")
    body = bodies[0] if bodies else {}
    for key in body:
        if key.startswith(_TELEMETRY_SINKS):
            raise ConfigError(f"telemetry.{key}: not supported: Strongroom exports Prometheus metrics only, "
                              f"named strongroom_* (/v1/sys/metrics)", f"telemetry.{key}")
    return TelemetryConfig(**_fields(body, "telemetry", _TELEMETRY_KEYS))


def _server(doc: dict, hostname: str, cpu_count: int | None) -> ServerConfig:
    for key in doc:
        if key in _UNSUPPORTED_TOP:
            raise ConfigError(f'top-level key "{key}": {_UNSUPPORTED_TOP[key]}', key)
    values = _fields(doc, "", _TOP_KEYS, extra=_TOP_BLOCKS)
    storage, listeners, telemetry = _storage(doc), _listeners(doc), _telemetry(doc)

    if storage.type == "inmem":
        if values.get("workers", 1) != 1:
            raise ConfigError(f'workers: storage "inmem" keeps its data in one process, so it requires '
                              f'workers = 1 (got {values["workers"]})', "workers")
        values["workers"] = 1
    values.setdefault("workers", 2 * (cpu_count or 1))

    for key in ("default_lease_ttl", "max_lease_ttl"):
        if parse_duration(values.setdefault(key, "768h")) == 0:  # Vault: 0 means the system default
            values[key] = "768h"
    if parse_duration(values["default_lease_ttl"]) > parse_duration(values["max_lease_ttl"]):
        raise ConfigError(f'default_lease_ttl: {_show(values["default_lease_ttl"])} exceeds max_lease_ttl '
                          f'{_show(values["max_lease_ttl"])}', "default_lease_ttl")

    first = listeners[0]
    host, port = _host_port(first.address, "listener")
    if not values.get("api_addr"):
        values["api_addr"] = _derive_api_addr("http" if first.tls_disable else "https", host, port, hostname)
    if not values.get("node_id"):
        values["node_id"] = _derive_node_id(hostname, host, port)
    return ServerConfig(storage=storage, listeners=listeners, telemetry=telemetry, **values)


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
