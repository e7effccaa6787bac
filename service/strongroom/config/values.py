"""What a single configuration key may hold: ``ConfigError``, ``parse_duration``
and the coercers the block key tables (``strongroom.config.loading``) are made of.

Each coercer takes ``(value, key path)`` and returns the typed value, or raises
``ConfigError`` naming the key path; so do the checks of the files a key names
(present, readable, PEM that loads).  ``parse_duration`` reads text with
the parser request fields use (``strongroom.durations``: Vault reads both with
``parseutil.ParseDurationSecond``) and raises ``ValueError``; the coercers add
the key path.
"""

from __future__ import annotations

import json
import math
import os
import re
import ssl
import urllib.parse
from collections.abc import Callable
from typing import Any, NoReturn

from strongroom.durations import MAX_SECONDS, SECOND_NS, DurationOverflow, parse_duration_second

#: What a key table holds for each key: ``(value, key path) -> typed value``, ``ConfigError`` otherwise.
Coercer = Callable[[Any, str], Any]


class ConfigError(Exception):
    """The configuration is invalid; raised at start-up, never mapped to HTTP.

    ``str(error)`` names the key path and the problem; ``key`` holds the path
    alone (``listener "tcp".address``), empty when no single key is at fault."""

    def __init__(self, message: str, key: str = ""):
        super().__init__(message)
        self.key = key


# -- durations ---------------------------------------------------------------

# The longest Go time.Duration (int64 nanoseconds), the most any Vault duration can hold.
MAX_DURATION_SECONDS = MAX_SECONDS


def parse_duration(value: str | int | float) -> float:
    """Seconds in a Vault duration: ``"500ms"``, ``"10s"``, ``"1h30m"``, ``"7d"``,
    a plain integer (``3600`` or ``"3600"``: seconds) or a number of seconds.

    Text is read by Vault's own parser (``strongroom.durations``, as Vault's
    server configuration reads it with ``parseutil.ParseDurationSecond``), after
    surrounding blanks are dropped; an HCL number is seconds, its fraction kept.
    The empty string is 0 (Vault's "unset").  Raises ``ValueError`` for anything
    else, and for negative or non-finite values."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f'invalid duration {_show(value)}: expected a string like "10s" or a number of seconds')
    if isinstance(value, str):
        try:
            seconds = parse_duration_second(value.strip()) / SECOND_NS
        except DurationOverflow:
            raise ValueError(_too_long(value)) from None
        except ValueError:
            raise ValueError(
                f"invalid duration {_show(value)}: expected seconds or a sequence of "
                f'number+unit such as "500ms", "10s", "5m", "1h30m", or "7d"'
            ) from None
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {_show(value)}: must be a finite, non-negative time")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(_too_long(value))
    return seconds


def _too_long(value: str | int | float) -> str:
    # Vault's durations are Go int64 nanoseconds; a longer one would break every client reading it back.
    return f"invalid duration {_show(value)}: longer than {int(MAX_DURATION_SECONDS)}s (about 292 years)"


# -- value coercion: each takes (value, key path) and returns the typed value --


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "null" if value is None else str(value)


def _literal(value: Any, path: str) -> Any:
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        raise ConfigError(f"{path}: expressions are not supported, write a literal value (got {_show(value)})", path)
    if isinstance(value, (dict, list)) or value is None:
        got = "null" if value is None else ("a list" if isinstance(value, list) else "a block")
        raise ConfigError(f"{path}: expected a single value, got {got}", path)
    return value


def _string(value: Any, path: str) -> str:
    value = _literal(value, path)
    if not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {_show(value)}", path)
    return value


def _trimmed(value: Any, path: str) -> str:
    return _string(value, path).strip()


def _absolute_dir(value: Any, path: str) -> str:
    text = _trimmed(value, path)
    if text and not os.path.isabs(text):
        raise ConfigError(f"{path}: must be an absolute directory, got {_show(text)}", path)
    return os.path.normpath(text) if text else ""


def _nonempty(value: Any, path: str) -> str:
    text = _string(value, path).strip()
    if not text:
        raise ConfigError(f"{path}: must not be empty", path)
    return text


def _bool(value: Any, path: str) -> bool:
    value = _literal(value, path)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "t", "1", "false", "f", "0"):
        return value.strip().lower() in ("true", "t", "1")
    raise ConfigError(f"{path}: invalid boolean {_show(value)}: use true or false", path)


def _integer(minimum: int | None = None) -> Coercer:
    def coerce(value: Any, path: str) -> int:
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


def _choice(*choices: str) -> Coercer:
    def coerce(value: Any, path: str) -> str:
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


def _duration(minimum: str = "", maximum: str = "", why: str = "", allow_none: bool = False) -> Coercer:
    low = parse_duration(minimum) if minimum else 0.0
    high = parse_duration(maximum) if maximum else math.inf

    def coerce(value: Any, path: str) -> str:
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


def _url(value: Any, path: str) -> str:
    text = _string(value, path).strip()
    if not text:
        return ""
    parts = urllib.parse.urlsplit(text)
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number in range
        valid = False
    if not valid:
        raise ConfigError(f'{path}: invalid URL {_show(value)}: expected "https://host:port"', path)
    return text.rstrip("/")


def _host_port(address: str, path: str) -> tuple[str, int]:
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]\s]*):(\d+)", address)
    port = int(match[2] or match[4]) if match else 0
    if not match or not 0 < port < 65536:
        raise ConfigError(
            f'{path}: invalid address {_show(address)}: expected "host:port" (IPv6 as "[::1]:8200")', path
        )
    return (match[1] or match[3] or ""), port


def _address(value: Any, path: str) -> str:
    text = _nonempty(value, path)
    _host_port(text, path)
    return text


def _consul_path(value: Any, path: str) -> str:
    # As Vault does: no leading slash, always a trailing one.
    text = _nonempty(value, path).lstrip("/")
    if not text:
        raise ConfigError(f"{path}: must name a key prefix, not the root of Consul's KV store", path)
    return text if text.endswith("/") else text + "/"


def _service_tags(value: Any, path: str) -> str:
    if isinstance(value, list):
        return ",".join(_nonempty(tag, f"{path}[{i}]") for i, tag in enumerate(value))
    return _string(value, path).strip()


def _prefix_filter(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f'{path}: expected a list such as ["+vault.token", "-vault.expire"]', path)
    entries = tuple(_nonempty(entry, f"{path}[{i}]") for i, entry in enumerate(value))
    for i, entry in enumerate(entries):
        if entry[0] not in "+-":
            raise ConfigError(f'{path}[{i}]: {_show(entry)} must start with "+" or "-"', f"{path}[{i}]")
    return entries


def _node_id(value: Any, path: str) -> str:
    text = _string(value, path).strip()
    if text and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", text):
        raise ConfigError(f"{path}: invalid node id {_show(value)}: use letters, digits, '.', '_' and '-'", path)
    return text


# -- files named by a key ----------------------------------------------------


def _readable_file(name: str, path: str) -> None:
    """The file ``name`` (set at key ``path``) exists and this process may read it."""
    if not os.path.isfile(name):
        raise ConfigError(f"{path}: file not found: {_show(name)}", path)
    if not os.access(name, os.R_OK):
        raise ConfigError(f"{path}: file not readable: {_show(name)}", path)


def _pem_certificates(name: str, path: str) -> None:
    """``name`` is a readable file holding at least one PEM certificate."""
    _readable_file(name, path)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=name)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{path}: no PEM certificate in {_show(name)} ({_ssl_reason(exc)})", path) from None


def _pem_private_key(name: str, certificate: str, path: str) -> None:
    """``name`` is a readable, unencrypted PEM private key that matches the
    certificate in the file ``certificate`` (already checked)."""
    _readable_file(name, path)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(certificate, name, password=_refuse_password)
    except _EncryptedKey:
        raise ConfigError(f"{path}: {_show(name)} is encrypted: Strongroom needs an unencrypted key", path) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{path}: {_show(name)} is not the PEM private key of tls_cert_file ({_ssl_reason(exc)})", path
        ) from None


class _EncryptedKey(Exception):
    pass


def _refuse_password() -> NoReturn:
    # Without a callback OpenSSL would ask for the passphrase on the terminal.
    raise _EncryptedKey()


def _ssl_reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return reason.replace("_", " ").lower() if reason else (getattr(exc, "strerror", None) or type(exc).__name__)
