"""Audit devices: the audit table and the broker that writes every request and
response to every enabled device.

https://developer.hashicorp.com/vault/docs/audit
https://developer.hashicorp.com/vault/api-docs/system/audit
https://developer.hashicorp.com/vault/api-docs/system/audit-hash

The table lives in the barrier view the core hands in (``sys/audit/``), one
record per device at ``device/<hex of the path>``: path, type, description,
options, local, uuid and the device's random HMAC salt.  One key per device
means two workers enabling different devices at once cannot overwrite each
other, and every worker and every node (and a restarted one) loads the same
devices with the same salt, so a value hashes the same everywhere.

Devices come from two places.  Declared devices (``audit "file" "<path>" {}``
in the server configuration, OpenBao's declarative audit devices) are written
to the table by the active node at start (``sync_declared``): created, updated
in place (same uuid and salt), or removed when their block is gone; their
record says ``declared`` and the API can neither disable nor overwrite them.
API-created devices exist only where the server allows it
(``unsafe_allow_api_audit_creation``, checked by ``sys/audit``): an audit
device writes as the server's user wherever ``file_path`` points, which is
why files are opened so warily (``audit_device``) and may be confined to
``audit_file_directory``.

Failure semantics are Vault's: with devices enabled, an entry that no device
could write raises ``AuditFailed`` - for the request entry the request is then
refused before it runs, for the response entry the response is withheld; one
device succeeding is enough.  With no device enabled, logging is a no-op.
Nothing here puts a logged value into an exception or into Python logging.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING

from strongroom import metrics
from strongroom.core.audit_device import FileDevice, UnusableDevice, normalize_options, parse_options
from strongroom.core.audit_format import encode, request_entry, response_entry, test_entry
from strongroom.core.mounts import normalize_path
from strongroom.errors import AuditFailed, InvalidRequest
from strongroom.sdk.logical import Request, Response
from strongroom.storage import Backend

if TYPE_CHECKING:
    from strongroom.config.model import AuditDeviceConfig

logger = logging.getLogger(__name__)

DEVICE_PREFIX = "device/"
SALT_BYTES = 32
DEVICE_TYPES = ("file",)
# OpenBao's words, so clients and scripts that know them recognise the refusal.
API_CREATION_REFUSED = (
    "cannot enable audit device via API; use declarative, config-based audit device management instead"
)


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit table, as stored."""

    path: str
    type: str
    uuid: str
    salt: str  # hex
    description: str = ""
    options: dict = field(default_factory=dict)
    local: bool = False
    declared: bool = False  # from the server configuration: only the configuration changes it

    def render(self) -> dict:
        """The entry as ``GET sys/audit`` shows it (never the salt)."""
        return {
            "type": self.type,
            "description": self.description,
            "options": dict(self.options),
            "local": self.local,
            "path": self.path,
        }

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> AuditEntry:
        stored = json.loads(raw)
        return cls(**{f.name: stored[f.name] for f in fields(cls) if f.name in stored})


def _storage_key(path: str) -> str:
    # Hex keeps nested device paths (``a/b/``) as one flat key.
    return DEVICE_PREFIX + path.encode().hex()


@dataclass
class _Loaded:
    entry: AuditEntry
    device: FileDevice


class AuditBroker:
    """The audit table of this process and the devices it writes to.

    ``view`` is the barrier view of ``sys/audit/`` (get/put/delete/list);
    ``clock`` returns an aware ``datetime``; ``randbytes`` makes salts and ids.
    ``allow_prefix`` mirrors Vault's ``allow_audit_log_prefixing`` server
    setting; ``file_directory`` is the server's ``audit_file_directory`` (every
    file device, however created, must write inside it; "" for no limit).
    The table is read lazily on first use and again after ``reload()``; open
    files survive a reload when their device did not change.
    """

    def __init__(
        self,
        view: Backend,
        clock: Callable[[], datetime],
        randbytes: Callable[[int], bytes] = os.urandom,
        *,
        allow_prefix: bool = False,
        stdout_fd: int = 1,
        file_directory: str = "",
    ) -> None:
        self._view = view
        self._clock = clock
        self._randbytes = randbytes
        self._allow_prefix = allow_prefix
        self._stdout_fd = stdout_fd
        self._file_directory = file_directory
        self._lock = threading.RLock()
        self._devices: dict[str, _Loaded] = {}
        self._stale = True

    # --- the table ---------------------------------------------------------------

    def reload(self) -> None:
        """The table changed elsewhere (another worker or node): reread it before
        the next use.  Lazy, so it is safe to call while the node is sealed."""
        with self._lock:
            self._stale = True

    def _table(self) -> dict[str, _Loaded]:
        """A snapshot of the devices, path -> loaded, reading storage if stale."""
        with self._lock:
            if self._stale:
                self._load()
                self._stale = False
            return dict(self._devices)

    def _stored(self) -> dict[str, AuditEntry]:
        entries = {}
        for name in self._view.list(DEVICE_PREFIX):
            raw = self._view.get(DEVICE_PREFIX + name)
            if raw is not None:
                entry = AuditEntry.from_json(raw)
                entries[entry.path] = entry
        return entries

    def _load(self) -> None:
        entries = self._stored()
        loaded: dict[str, _Loaded] = {}
        for path, entry in entries.items():
            old = self._devices.get(path)
            if old is not None and old.entry == entry:
                loaded[path] = old
                continue
            try:
                # An API-created prefix was allowed when it was enabled; a declared one is judged now.
                device = self._device(entry, allow_prefix=self._allow_prefix if entry.declared else True)
            except InvalidRequest as exc:
                # Written by another version of Strongroom: fail closed rather than skip the device.
                logger.error("audit device %s has options this node cannot use: %s", path, exc)
                device = UnusableDevice(path, bytes.fromhex(entry.salt))
            try:
                device.open()
            except OSError as exc:
                # Keep it: writes retry the open, and fail (closed) until it works.
                logger.error("audit device %s cannot open %s: %s", path, device.options.file_path, exc.strerror)
            loaded[path] = _Loaded(entry, device)
        for path, old in self._devices.items():
            if loaded.get(path) is not old:
                old.device.close()
        self._devices = loaded

    def _device(self, entry: AuditEntry, *, allow_prefix: bool) -> FileDevice:
        options = parse_options(entry.options, allow_prefix=allow_prefix, directory=self._file_directory)
        return FileDevice(entry.path, options, bytes.fromhex(entry.salt), stdout_fd=self._stdout_fd)

    def enable(
        self, path: str, type: str, description: str = "", options: dict | None = None, local: bool = False
    ) -> None:
        """``PUT sys/audit/:path``: validate, probe the device, then persist it.

        https://developer.hashicorp.com/vault/api-docs/system/audit#enable-audit-device

        Whether the API may create devices at all is the caller's decision
        (``sys/audit`` checks ``unsafe_allow_api_audit_creation``).  Raises
        ``InvalidRequest`` for a path that is taken or overlaps another device
        (a declared one included), an unknown type, bad options, a file outside
        ``audit_file_directory``, or a file that cannot be opened or written
        (Vault writes a test entry for ``sys/audit/test`` first)."""
        path = normalize_path(path)
        with self._lock:
            self._stale = True  # decide on the stored table, not on a cache
            for existing, loaded in self._table().items():
                if existing == path and loaded.entry.declared:
                    raise InvalidRequest(
                        f'audit device "{path}" is declared in the server configuration; change it there'
                    )
                if existing.startswith(path) or path.startswith(existing):
                    raise InvalidRequest("path already in use")
            if type not in DEVICE_TYPES:
                raise InvalidRequest(f'unknown backend type: "{type or ""}"')
            entry = AuditEntry(
                path=path,
                type=type,
                uuid=str(uuid.UUID(bytes=self._randbytes(16))),
                salt=self._randbytes(SALT_BYTES).hex(),
                description=description or "",
                options=normalize_options(options),
                local=bool(local),
            )
            device = self._device(entry, allow_prefix=self._allow_prefix)
            try:
                try:
                    device.open()
                except OSError as exc:
                    raise InvalidRequest(
                        f'sanity check failed; unable to open "{device.options.file_path}" for writing: {exc.strerror}'
                    ) from None
                probe = test_entry(self._clock(), str(uuid.UUID(bytes=self._randbytes(16))))
                if not device.write(encode(probe, device.prefix)):
                    raise InvalidRequest(f'sanity check failed; unable to write to "{device.options.file_path}"')
                self._view.put(_storage_key(path), entry.to_json())
            except BaseException:
                device.close()
                raise
            self._devices[path] = _Loaded(entry, device)

    def disable(self, path: str) -> bool:
        """``DELETE sys/audit/:path``; True if a device was there (Vault answers 204 either way).

        https://developer.hashicorp.com/vault/api-docs/system/audit#disable-audit-device"""
        path = normalize_path(path)
        with self._lock:
            raw = self._view.get(_storage_key(path))
            existed = raw is not None
            if raw is not None and AuditEntry.from_json(raw).declared:
                raise InvalidRequest(
                    f'cannot disable audit device "{path}": it is declared in the server '
                    "configuration; remove its audit block there"
                )
            if existed:
                self._view.delete(_storage_key(path))
            loaded = self._devices.pop(path, None)
            if loaded is not None:
                loaded.device.close()
            return existed or loaded is not None

    def sync_declared(self, declared: Iterable[AuditDeviceConfig]) -> bool:
        """Make the table hold exactly the ``declared`` devices among those the
        configuration declares (OpenBao's semantics); True when it changed.

        Called by the active node when it becomes active.  A declared device
        already stored with the same settings is left alone; one whose settings
        changed is rewritten with its uuid and salt (hashes stay comparable);
        a device stored as declared but no longer in ``declared`` is removed.
        API-created devices are never touched: a declared device whose path
        overlaps one is not enabled (logged as an error), as in OpenBao.
        Neither options nor files are checked here: every process checks and
        opens them when it loads the table, and a declared device it cannot
        use (bad options, a symlink, a file outside ``audit_file_directory``)
        fails requests closed there, as Vault does when no device can log."""
        wanted = {normalize_path(device.path): device for device in declared}
        changed = False
        with self._lock:
            stored = self._stored()
            for path, entry in stored.items():
                if entry.declared and path not in wanted:
                    self._view.delete(_storage_key(path))
                    changed = True
            for path, device in wanted.items():
                old = stored.get(path)
                clash = [p for p, e in stored.items() if not e.declared and (p.startswith(path) or path.startswith(p))]
                if clash:
                    logger.error(
                        "declared audit device %s not enabled: its path overlaps the API-created device %s",
                        path,
                        clash[0],
                    )
                    continue
                if device.type not in DEVICE_TYPES:
                    logger.error("declared audit device %s not enabled: unknown type %r", path, device.type)
                    continue
                entry = AuditEntry(
                    path=path,
                    type=device.type,
                    uuid=old.uuid if old else str(uuid.UUID(bytes=self._randbytes(16))),
                    salt=old.salt if old else self._randbytes(SALT_BYTES).hex(),
                    description=device.description or "",
                    options=normalize_options(dict(device.options)),
                    local=bool(device.local),
                    declared=True,
                )
                if entry == old:
                    continue
                self._view.put(_storage_key(path), entry.to_json())
                changed = True
            self._stale = True
        return changed

    def list(self) -> dict:
        """``GET sys/audit``: ``{"file/": {"type", "description", "options", "local", "path"}}``.

        https://developer.hashicorp.com/vault/api-docs/system/audit#list-enabled-audit-devices"""
        table = self._table()
        return {path: table[path].entry.render() for path in sorted(table)}

    def hash(self, path: str, input: str) -> str:
        """``POST sys/audit-hash/:path``: ``input`` hashed exactly as the device logs it.

        https://developer.hashicorp.com/vault/api-docs/system/audit-hash"""
        if not input:
            raise InvalidRequest('the "input" parameter is empty')
        path = normalize_path(path)
        loaded = self._table().get(path)
        if loaded is None:
            raise InvalidRequest(f'unknown audit backend "{path}"')
        return loaded.device.hash(input)

    # --- logging -----------------------------------------------------------------

    def log_request(
        self, req: Request, auth: dict | None, error: str = "", *, non_hmac_keys: Collection[str] = ()
    ) -> None:
        """Write the request entry to every device, before the request runs.

        ``auth`` is the client token in Vault's audit shape (client_token,
        accessor, display_name, policies, token_policies, metadata, entity_id,
        token_type, ...) or None; ``error`` the reason when the request is
        refused (e.g. permission denied); ``non_hmac_keys`` the mount's
        ``audit_non_hmac_request_keys``.  Raises ``AuditFailed`` when no device
        could write it."""
        now = self._clock()
        self._fan_out(lambda dev: request_entry(now, req, auth, error, dev.format, dev.hash, non_hmac_keys), "request")

    def log_response(
        self,
        req: Request,
        auth: dict | None,
        resp: Response | None,
        error: str = "",
        *,
        non_hmac_request_keys: Collection[str] = (),
        non_hmac_response_keys: Collection[str] = (),
    ) -> None:
        """Write the response entry (the request again, plus ``resp`` or ``error``).

        Raises ``AuditFailed`` when no device could write it: the caller must
        then not return the response (Vault answers 500)."""
        now = self._clock()
        self._fan_out(
            lambda dev: response_entry(
                now, req, auth, resp, error, dev.format, dev.hash, non_hmac_request_keys, non_hmac_response_keys
            ),
            "response",
        )

    def _fan_out(self, build: Callable[[FileDevice], dict], kind: str) -> None:
        with self._lock:
            devices = self._table().values()
        if not devices:
            return
        attempted = written = 0
        for loaded in devices:
            device = loaded.device
            try:
                line = encode(build(device), device.prefix)
            except Exception as exc:  # the message could quote a value: log only its type
                logger.error(
                    "audit device %s could not format the %s entry (%s)", device.path, kind, type(exc).__name__
                )
                attempted += 1
                continue
            result = device.write(line)
            if result is None:  # disabled meanwhile: as if it had not been there
                continue
            attempted += 1
            written += result
        if attempted and not written:
            metrics.inc(metrics.labelled(metrics.audit_failures_total, kind))
            raise AuditFailed(f"failed to log {kind} to any audit device")

    def reopen(self) -> None:
        """Close and reopen every device's file (what Vault does on SIGHUP)."""
        with self._lock:
            devices = list(self._devices.values())
        for loaded in devices:
            loaded.device.reopen()

    def close(self) -> None:
        """Close every open file (process shutdown); the next use reloads the table."""
        with self._lock:
            for loaded in self._devices.values():
                loaded.device.close()
            self._devices = {}
            self._stale = True
