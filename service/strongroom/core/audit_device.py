"""The ``file`` audit device: options, the salted HMAC, line-atomic appends.

https://developer.hashicorp.com/vault/docs/audit/file

Each line goes out in one ``os.write`` on a descriptor opened with
``O_APPEND``, so lines from the threads of a worker and from the workers of a
node never interleave in a regular file.  (A ``stdout`` that is a pipe only
guarantees that for lines up to ``PIPE_BUF``, as with Vault.)

Where Strongroom is stricter than Vault, on purpose:

* ``prefix`` is refused unless the server allows it (Vault >= 1.20.1 and
  OpenBao do the same: with ``file_path`` and ``mode`` it let an operator write
  arbitrary executable files, CVE-2025-6000); a prefix may not contain a newline;
* execute bits are dropped from ``mode``, as OpenBao does;
* missing parent directories are not created (Vault creates them, with the
  file's mode) - an audit device is not a way to make directories;
* the file is never a way to write elsewhere (CVE-2025-6000 class): a symbolic
  link at ``file_path`` is never followed (``O_NOFOLLOW``), only a regular file
  with a single link is written (a FIFO, device, directory or hard link is
  refused), and ``mode`` applies only to a file this process creates
  (``O_CREAT | O_EXCL``), never to an existing one;
* with the server's ``audit_file_directory`` set, ``file_path`` must be an
  absolute path inside it without ``..``, and the file is opened component by
  component below that directory with ``O_NOFOLLOW``, so a symbolic link in a
  subdirectory cannot lead out of it either;
* a device notices when its file was moved or deleted (log rotation without
  SIGHUP, or a removed directory) and reopens the path before the next line,
  instead of writing on into an unlinked file.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import stat
import threading
from dataclasses import dataclass

from strongroom.core.audit_format import FormatConfig
from strongroom.errors import InvalidRequest
from strongroom.fields import parse_go_bool

logger = logging.getLogger(__name__)

STDOUT = "stdout"
DISCARD = "discard"
DEFAULT_MODE = 0o600


@dataclass(frozen=True)
class FileOptions:
    """The parsed options of a ``file`` device."""

    file_path: str
    mode: int = DEFAULT_MODE  # permission bits of a file the device creates; an existing file keeps its own
    format: FormatConfig = FormatConfig()
    prefix: str = ""
    directory: str = ""  # the server's audit_file_directory: file_path is opened below it only


def normalize_options(options: dict | None) -> dict[str, str]:
    """Options as Vault stores and lists them: a flat map of strings
    (JSON booleans and numbers become their text)."""
    out: dict[str, str] = {}
    for key, value in (options or {}).items():
        if not isinstance(key, str):
            raise InvalidRequest("audit device option names must be strings")
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            raise InvalidRequest(f'audit device option "{key}" must be a string')
        out[key] = value
    return out


def _parse_bool(options: dict[str, str], key: str, default: bool) -> bool:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        return parse_go_bool(raw)  # Vault reads the options with strconv.ParseBool
    except ValueError:
        raise InvalidRequest(f'invalid value for "{key}": {raw!r} is not a boolean') from None


def _parse_mode(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_MODE
    if not raw or any(c not in "01234567" for c in raw) or int(raw, 8) >= 1 << 32:
        raise InvalidRequest(f'invalid value for "mode": {raw!r} is not an octal file mode')
    return int(raw, 8) & 0o666


def check_inside(file_path: str, directory: str) -> None:
    """Refuse a ``file_path`` that is not an absolute path inside ``directory``
    (no ``..`` component at all, so the check is lexical and exact)."""
    root = os.path.normpath(directory)
    if (
        not os.path.isabs(file_path)
        or ".." in file_path.split("/")
        or os.path.commonpath([root, os.path.normpath(file_path)]) != root
        or os.path.normpath(file_path) == root
    ):
        raise InvalidRequest(f'file_path "{file_path}" must be a file inside audit_file_directory "{root}"')


def parse_options(options: dict[str, str], *, allow_prefix: bool, directory: str = "") -> FileOptions:
    """Validate ``file`` device options (already ``normalize_options``'d) with Vault's messages;
    ``directory`` is the server's ``audit_file_directory`` ("" when unset)."""
    file_path = options.get("file_path", options.get("path"))
    if not file_path:
        raise InvalidRequest("file_path is required")
    if file_path.lower() in (STDOUT, DISCARD):
        file_path = file_path.lower()
    elif directory:
        check_inside(file_path, directory)
        file_path = os.path.normpath(file_path)
    fmt = options.get("format", "json")
    if fmt == "jsonx":
        raise InvalidRequest(
            'jsonx formatting has been removed, consider switching to json by omitting "format" or setting it to "json"'
        )
    if fmt != "json":
        raise InvalidRequest(f'unknown format type "{fmt}"')
    prefix = options.get("prefix", "")
    if prefix and not allow_prefix:
        raise InvalidRequest("audit log prefixing is not allowed")
    if "\n" in prefix or "\r" in prefix:
        raise InvalidRequest('"prefix" may not contain line breaks')
    return FileOptions(
        file_path=file_path,
        mode=_parse_mode(options.get("mode")),
        format=FormatConfig(
            raw=_parse_bool(options, "log_raw", False),
            hmac_accessor=_parse_bool(options, "hmac_accessor", True),
            elide_list_responses=_parse_bool(options, "elide_list_responses", False),
        ),
        prefix=prefix,
        directory=os.path.normpath(directory) if directory else "",
    )


_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _refuse(file_path: str, reason: str) -> OSError:
    return OSError(errno.EPERM, reason, file_path)


def _parent(file_path: str, directory: str) -> tuple[int | None, str]:
    """The descriptor of ``file_path``'s directory and the file's name in it.

    Without ``directory``: (None, file_path) - only the last component is
    protected by ``O_NOFOLLOW``.  With it: the directory is opened (the
    operator's choice, symbolic link or not) and every component below it with
    ``O_NOFOLLOW``, so nothing below ``directory`` can point out of it."""
    if not directory:
        return None, file_path
    parts = os.path.relpath(file_path, directory).split("/")
    fd = os.open(directory, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refuse(
                        file_path, f'"{part}" is not a directory (symbolic links are never followed)'
                    ) from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def open_audit_file(file_path: str, mode: int, directory: str = "") -> int:
    """Open ``file_path`` for appending and return the descriptor (see the
    module docstring for what is refused); raises OSError.

    An existing file keeps its mode.  A missing one is created with
    ``O_EXCL`` and given ``mode`` (or 0600) with ``fchmod``, so the umask does
    not weaken it and only a file this call created is ever chmod'ed; if
    another process creates it first, that file is opened instead."""
    dir_fd, name = _parent(file_path, directory)
    try:
        for _ in range(3):
            opened = _open_once(file_path, name, dir_fd, mode)
            if opened is not None:
                return _checked(file_path, *opened, mode)
        raise OSError(errno.EAGAIN, "the file kept changing while it was opened", file_path)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _open_once(file_path: str, name: str, dir_fd: int | None, mode: int) -> tuple[int, bool] | None:
    """One attempt: the descriptor and whether this call created the file, or
    None when the name changed under us (removed, or created by another worker)."""
    try:
        before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        before = None
    if before is None:
        try:
            return os.open(name, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, mode or DEFAULT_MODE, dir_fd=dir_fd), True
        except FileExistsError:
            return None  # another worker created it meanwhile: open that one
    if stat.S_ISLNK(before.st_mode):
        raise _refuse(file_path, "is a symbolic link (audit devices never follow symbolic links)")
    if not stat.S_ISREG(before.st_mode):
        raise _refuse(file_path, "is not a regular file")
    try:
        return os.open(name, _OPEN_FLAGS, dir_fd=dir_fd), False
    except FileNotFoundError:
        return None  # removed meanwhile: look again


def _checked(file_path: str, fd: int, created: bool, mode: int) -> int:
    """``fd`` once it is known to be a regular file with one link (closed otherwise)."""
    try:
        st = os.fstat(fd)
        # Checked again on the descriptor: the name may have been swapped since the lstat.
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(file_path, "is not a regular file")
        if st.st_nlink != 1:
            raise _refuse(file_path, "has more than one hard link")
        if created:
            os.fchmod(fd, mode or DEFAULT_MODE)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "short write")
        view = view[written:]


class FileDevice:
    """One enabled ``file`` device in this process: its salt and its open file.

    ``write`` is thread-safe.  It returns True when the line was written, False
    when it could not be (the error is logged with the device path and the OS
    reason only), and None once the device is closed (disabled meanwhile).
    """

    def __init__(self, path: str, options: FileOptions, salt: bytes, *, stdout_fd: int = 1):
        self.path = path
        self.options = options
        self._mac = hmac.new(salt, digestmod=hashlib.sha256)
        self._stdout_fd = stdout_fd
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._closed = False

    @property
    def format(self) -> FormatConfig:
        return self.options.format

    @property
    def prefix(self) -> str:
        return self.options.prefix

    def hash(self, value: str) -> str:
        """``hmac-sha256:<hex>`` of ``value`` under this device's salt (Vault's GetIdentifiedHMAC)."""
        mac = self._mac.copy()
        mac.update(value.encode("utf-8", "surrogatepass"))
        return "hmac-sha256:" + mac.hexdigest()

    def _is_file(self) -> bool:
        return self.options.file_path not in (STDOUT, DISCARD)

    def open(self) -> None:
        """Open (or keep) the file; raises OSError.  A no-op for stdout and discard."""
        with self._lock:
            if self._is_file() and self._fd is None:
                self._open_locked()

    def _open_locked(self) -> int:
        fd = open_audit_file(self.options.file_path, self.options.mode, self.options.directory)
        st = os.fstat(fd)
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        return fd

    def _close_locked(self) -> None:
        if self._fd is not None:
            fd, self._fd, self._ident = self._fd, None, None
            try:
                os.close(fd)
            except OSError:
                pass

    def _current_fd(self) -> int:
        """The descriptor for the file now at ``file_path``, reopening after rotation or removal."""
        if self._fd is not None:
            try:
                # lstat: a symbolic link put in the file's place is a move, reopened (and refused).
                st = os.lstat(self.options.file_path)
                moved = (st.st_dev, st.st_ino) != self._ident
            except FileNotFoundError:
                moved = True
            if moved:
                self._close_locked()
        if self._fd is None:
            return self._open_locked()
        return self._fd

    def write(self, line: bytes) -> bool | None:
        """Append one line with a single ``os.write`` (see the class docstring for the result)."""
        with self._lock:
            if self._closed:
                return None
            if self.options.file_path == DISCARD:
                return True
            try:
                _write_all(self._stdout_fd if not self._is_file() else self._current_fd(), line)
                return True
            except OSError as first:
                if not self._is_file():
                    self._log_failure(first)
                    return False
            # As Vault does: reopen once and try again.
            self._close_locked()
            try:
                _write_all(self._current_fd(), line)
                return True
            except OSError as exc:
                self._close_locked()
                self._log_failure(exc)
                return False

    def _log_failure(self, exc: OSError) -> None:
        logger.error(
            "audit device %s could not write to %s: %s",
            self.path,
            self.options.file_path,
            exc.strerror or type(exc).__name__,
        )

    def reopen(self) -> None:
        """Close and reopen the file (Vault does this on SIGHUP, for log rotation).
        A failure is logged; the next write tries again."""
        with self._lock:
            if self._closed or not self._is_file():
                return
            self._close_locked()
            try:
                self._open_locked()
            except OSError as exc:
                self._log_failure(exc)

    def close(self) -> None:
        """Close the file for good; later writes return None."""
        with self._lock:
            self._closed = True
            self._close_locked()


class UnusableDevice(FileDevice):
    """A stored device whose options this process cannot run: it still hashes
    (``sys/audit-hash``), but every write fails, so the broker fails closed."""

    def __init__(self, path: str, salt: bytes):
        super().__init__(path, FileOptions(file_path=DISCARD), salt)

    def open(self) -> None:
        pass

    def reopen(self) -> None:
        pass

    def write(self, line: bytes) -> bool | None:
        with self._lock:
            return None if self._closed else False
