"""Finding 2 (high, the CVE-2025-6000 class): audit devices created over the API
write as the server's user wherever ``file_path`` points.

By default ``sys/audit/<path>`` refuses to create a device (the configuration
declares them); a node whose operator set ``unsafe_allow_api_audit_creation``
still never follows a symlink, never changes the mode of an existing file and
only writes regular files.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import uuid
from pathlib import Path

from tests.helpers.procs import wait_until
from tests.security.conftest import SecNode


def _victim(directory: Path) -> tuple[Path, bytes]:
    """A 0600 file with known content, standing in for /etc/shadow or a key file."""
    victim = directory / f"victim-{uuid.uuid4().hex[:8]}"
    content = f"do not touch {uuid.uuid4().hex}\n".encode()
    victim.write_bytes(content)
    os.chmod(victim, 0o600)
    return victim, content


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextlib.contextmanager
def _device(node: SecNode, options: dict, timeout: float = 10.0):
    """Try to enable a file device with ``options``; yield the answer (None if it
    timed out); disable the device afterwards if it was enabled after all."""
    name = f"dev-{uuid.uuid4().hex[:8]}"
    answer = None

    def enabled() -> bool:
        return f"{name}/" in node.ok("GET", "sys/audit").json()

    try:
        try:
            answer = node.send(
                "PUT", f"/v1/sys/audit/{name}", body={"type": "file", "options": options}, timeout=timeout
            )
        except TimeoutError:
            pass
        yield answer
    finally:
        if answer is None:
            # A request that timed out may still finish once the test unblocked it.
            with contextlib.suppress(TimeoutError):
                wait_until(enabled, 3, f"audit device {name} to appear")
        if enabled():
            node.ok("DELETE", f"sys/audit/{name}")


def _audited_traffic(node: SecNode) -> None:
    """A few audited requests, so that an enabled device has lines to write."""
    for _ in range(4):
        node.ok("GET", "sys/mounts")


def test_the_api_refuses_to_create_audit_devices_by_default(sec_node, tmp_path):
    """Finding 2: as root, ``sys/audit/x`` with ``file_path`` = an existing 0600
    file and ``mode`` = 0777 turned it world-writable and appended to it."""
    victim, content = _victim(tmp_path)
    with _device(sec_node, {"file_path": str(victim), "mode": "0777"}) as answer:
        assert answer is not None and answer.status == 400, answer
        message = " ".join(answer.errors()).lower()
        assert "audit" in message and "api" in message, message
        _audited_traffic(sec_node)
    assert _mode(victim) == 0o600
    assert victim.read_bytes() == content


def test_the_configured_audit_device_logs_requests(sec_node, unique):
    """Finding 2 (the other half): devices come from the configuration, and the
    ``audit "file" "sec"`` block of the node's file is enabled and writes."""
    marker = unique("audited")
    sec_node.send("GET", f"/v1/secret/data/{marker}")

    def logged() -> bool:
        return sec_node.audit_log.exists() and marker in sec_node.audit_log.read_text()

    wait_until(logged, 5, f"a line about {marker} in {sec_node.audit_log}")
    assert "sec/" in sec_node.ok("GET", "sys/audit").json()
    assert _mode(sec_node.audit_log) == 0o600


def test_an_api_device_never_follows_a_symlink(unsafe_node, tmp_path):
    """Finding 2: a ``file_path`` that is a symlink was followed to its target
    (the link is inside ``audit_file_directory``, its target outside)."""
    victim, content = _victim(tmp_path)
    link = unsafe_node.audit_dir / f"link-{uuid.uuid4().hex[:8]}.log"
    link.symlink_to(victim)
    with _device(unsafe_node, {"file_path": str(link)}) as answer:
        assert answer is not None and 400 <= answer.status < 500, answer
        _audited_traffic(unsafe_node)
    assert victim.read_bytes() == content
    assert _mode(victim) == 0o600


def test_an_api_device_never_changes_the_mode_of_an_existing_file(unsafe_node):
    """Finding 2: ``mode`` = 0777 on an existing 0600 file made it 0666."""
    existing, _ = _victim(unsafe_node.audit_dir)
    with _device(unsafe_node, {"file_path": str(existing), "mode": "0777"}) as answer:
        assert answer is not None, "the request timed out"
        _audited_traffic(unsafe_node)
        assert _mode(existing) == 0o600, answer
    assert _mode(existing) == 0o600


def test_an_api_device_refuses_a_directory(unsafe_node):
    """Finding 2: only regular files are audit logs."""
    directory = unsafe_node.audit_dir / f"dir-{uuid.uuid4().hex[:8]}"
    directory.mkdir(mode=0o700)
    with _device(unsafe_node, {"file_path": str(directory)}) as answer:
        assert answer is not None and 400 <= answer.status < 500, answer
    assert _mode(directory) == 0o700 and list(directory.iterdir()) == []


def test_an_api_device_refuses_a_fifo(unsafe_node):
    """Finding 2: only regular files are audit logs; a FIFO with no reader would
    also block the worker that opens it."""
    fifo = unsafe_node.audit_dir / f"fifo-{uuid.uuid4().hex[:8]}"
    os.mkfifo(fifo, 0o600)
    reader: list[int] = []
    drained = threading.Event()

    def drain() -> None:
        # Lets a device that did open the FIFO write (and be disabled) instead of blocking the node.
        while not drained.is_set():
            try:
                os.read(reader[0], 65536)
            except BlockingIOError:
                drained.wait(0.02)
            except OSError:
                return

    try:
        with _device(unsafe_node, {"file_path": str(fifo)}, timeout=3.0) as answer:
            reader.append(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            threading.Thread(target=drain, daemon=True).start()
            assert answer is not None, "enabling a FIFO as an audit log blocked for 3 s"
            assert 400 <= answer.status < 500, answer
            assert json.loads(answer.body)["errors"]
    finally:
        drained.set()
        if reader:
            os.close(reader[0])


def test_an_api_device_stays_inside_the_audit_file_directory(unsafe_node, tmp_path):
    """Finding 2: with ``audit_file_directory`` set, ``file_path`` may not point
    outside it, however spelled; a new file inside it is fine."""
    outside = tmp_path / "outside.log"
    for spelling in (str(outside), f"{unsafe_node.audit_dir}/../outside.log"):
        with _device(unsafe_node, {"file_path": spelling}) as answer:
            assert answer is not None and 400 <= answer.status < 500, (spelling, answer)
            _audited_traffic(unsafe_node)
    assert not outside.exists() and not (unsafe_node.audit_dir.parent / "outside.log").exists()
    inside = unsafe_node.audit_dir / f"inside-{uuid.uuid4().hex[:8]}.log"
    with _device(unsafe_node, {"file_path": str(inside)}) as answer:
        assert answer is not None and answer.status == 204, answer
        _audited_traffic(unsafe_node)
        assert inside.exists() and inside.stat().st_size > 0
        assert _mode(inside) == 0o600
