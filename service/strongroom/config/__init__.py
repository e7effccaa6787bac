"""Server configuration: Vault's HCL syntax, parsed once into frozen dataclasses.

``load(path)`` reads a file in Vault's configuration language
(https://developer.hashicorp.com/vault/docs/configuration), validates every key
and returns a ``ServerConfig``; anything wrong raises ``ConfigError`` naming the
offending key path, e.g. ``listener "tcp": unknown key "adress"``.  JSON files in
Vault's JSON form are accepted too.  Durations are kept as written (``"15s"``)
and parsed with ``parse_duration``, the same syntax the API uses for TTLs.

The dataclasses and their JSON form for workers (``to_json``/``from_json``) are
in ``model``, the per-key validators in ``values``, and the document walking
(``load``, ``loads``, the block key tables) and ``dev_config`` in ``loading``.
Importing this package never imports python-hcl2: only ``loads`` of HCL text does.
"""

from strongroom.config.loading import (
    _clean,  # noqa: F401  (the python-hcl2 shim, which tests exercise directly)
    dev_config,
    load,
    loads,
)
from strongroom.config.model import (
    DEFAULT_MAX_REQUEST_SIZE,
    ListenerConfig,
    ServerConfig,
    StorageConfig,
    TelemetryConfig,
    from_json,
    to_json,
)
from strongroom.config.values import ConfigError, parse_duration

__all__ = [
    "DEFAULT_MAX_REQUEST_SIZE",
    "ConfigError",
    "ListenerConfig",
    "ServerConfig",
    "StorageConfig",
    "TelemetryConfig",
    "dev_config",
    "from_json",
    "load",
    "loads",
    "parse_duration",
    "to_json",
]
