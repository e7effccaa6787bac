"""``strongroom server -config FILE -check``: validate, print, exit; start nothing.

Ansible's ``template`` module runs it as ``validate:`` before a rendered
configuration replaces the live one (ansible/roles/strongroom)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from strongroom.cli import main

CONSUL = 'storage "consul" {\n  address = "127.0.0.1:%d"\n  token = "t0k3n"\n}\n'
LISTENER = 'listener "tcp" {\n  address = "127.0.0.1:%d"\n  tls_disable = true\n}\n'
AUDIT = 'audit "file" "to-file" {\n  options {\n    file_path = "%s"\n%s  }\n}\n'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "strongroom.hcl"
    path.write_text(text)
    return str(path)


def test_a_valid_file_exits_0_and_says_so(tmp_path, capsys):
    path = _write(tmp_path, CONSUL % 8500 + LISTENER % 18200 + AUDIT % (tmp_path / "audit.log", ""))
    assert main(["server", "-config", path, "-check"]) == 0
    out = capsys.readouterr()
    assert "configuration is valid" in out.out
    assert "storage consul at 127.0.0.1:8500" in out.out
    assert "1 audit device(s)" in out.out
    assert "t0k3n" not in out.out + out.err  # the Consul token is a secret


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (CONSUL % 8500 + 'listener "tcp" {\n  adress = "127.0.0.1:1"\n}\n', '"adress"'),
        ('storage "consul" {\n  token = 42\n}\n' + LISTENER % 18200, 'storage "consul".token'),
        (CONSUL % 8500 + 'listener "tcp" {\n  address = "127.0.0.1:1"\n}\n', "tls_cert_file"),
        (LISTENER % 18200, "storage"),
        (CONSUL % 8500 + LISTENER % 18200 + "storage_x {\n}\n", "storage_x"),
        (CONSUL % 8500 + LISTENER % 18200 + 'audit "file" "a" {\n  options {\n  }\n}\n', "file_path"),
        (CONSUL % 8500 + LISTENER % 18200 + AUDIT % ("/tmp/a.log", '    format = "jsonx"\n'), "jsonx"),
        (CONSUL % 8500 + LISTENER % 18200 + AUDIT % ("/tmp/a.log", '    mode = "999"\n'), "mode"),
        (CONSUL % 8500 + LISTENER % 18200 + AUDIT % ("/tmp/a.log", '    prefix = "x"\n'), "prefixing"),
        (
            CONSUL % 8500
            + LISTENER % 18200
            + 'audit_file_directory = "/var/log/strongroom"\n'
            + AUDIT % ("/etc/passwd", ""),
            "audit_file_directory",
        ),
        ("storage {{{", "invalid HCL"),
    ],
)
def test_an_invalid_file_exits_1_and_names_the_problem(tmp_path, capsys, text, named):
    path = _write(tmp_path, text)
    assert main(["server", "-config", path, "-check"]) == 1
    out = capsys.readouterr()
    assert named in out.err
    assert "configuration is valid" not in out.out
    assert "Traceback" not in out.err


def test_a_missing_file_exits_1(tmp_path, capsys):
    assert main(["server", "-config", str(tmp_path / "nope.hcl"), "-check"]) == 1
    assert "cannot read configuration file" in capsys.readouterr().err


def test_check_starts_nothing(tmp_path):
    """Consul is unreachable and the listener port is free: a node would wait for
    storage forever (and take the port); ``-check`` returns at once and leaves
    the port free."""
    consul_port, listen_port = _free_port(), _free_port()
    path = _write(tmp_path, CONSUL % consul_port + LISTENER % listen_port)
    done = subprocess.run(
        [sys.executable, "-m", "strongroom.cli", "server", "-config", path, "-check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "configuration is valid" in done.stdout
    assert "waiting for storage" not in done.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", listen_port))  # nothing listens there
