"""The install machinery: Makefile checks, scripts/install-*.sh and .ci/run.

Only the paths that need no network and change nothing run here: everything
is already installed when the suite runs (``make test`` depends on ``deps``).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS_CONSUL = REPO / "tools" / "consul" / "usr" / "bin" / "consul"

MAKE = shutil.which("make") or "make"  # the suite runs under `make test`, so make is there


def _clean_env(**changes: str) -> dict[str, str]:
    """This environment without what an enclosing ``make test`` passes down."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CONSUL_BIN")}
    env.update(changes)
    return env


def _make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # DEBS=bash keeps the Debian step a no-op whatever this machine lacks.
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPO), "DEBS=bash", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or _clean_env(),
    )


def test_ci_run_is_executable_and_runs_make_test():
    ci = REPO / ".ci" / "run"
    assert ci.stat().st_mode & stat.S_IXUSR
    text = ci.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert "make test" in text


def test_install_debs_does_nothing_when_every_package_is_installed():
    done = subprocess.run(
        [str(REPO / "scripts" / "install-debs.sh"), "bash", "coreutils"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_install_debs_needs_package_names():
    done = subprocess.run([str(REPO / "scripts" / "install-debs.sh")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "usage" in done.stderr


def test_python_check_accepts_this_interpreter():
    import sys

    done = _make("python-check", f"PYTHON={sys.executable}")
    assert done.returncode == 0, done.stderr


def test_python_check_names_the_required_version(tmp_path):
    old = tmp_path / "python3"
    old.write_text('#!/bin/sh\ncase "$*" in *-V*) echo "Python 3.9.2";; *) exit 1;; esac\n')
    old.chmod(0o755)
    done = _make("python-check", f"PYTHON={old}")
    assert done.returncode != 0
    assert ">= 3.11" in done.stderr
    assert "Python 3.9.2" in done.stderr


def test_python_check_reports_a_missing_interpreter():
    done = _make("python-check", "PYTHON=no-such-python3")
    assert done.returncode != 0
    assert "not found" in done.stderr and ">= 3.11" in done.stderr


def test_consul_bin_points_at_tools_when_consul_is_not_on_path(tmp_path):
    # An empty PATH: no consul anywhere (the Makefile's shell is /bin/bash by absolute path).
    env = _clean_env(PATH=str(tmp_path))
    done = subprocess.run(
        [
            MAKE,
            "--no-print-directory",
            "-C",
            str(REPO),
            "--eval",
            'show-consul-bin: ; @echo "$$CONSUL_BIN"',
            "show-consul-bin",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(TOOLS_CONSUL)


def test_install_consul_keeps_a_working_binary():
    assert os.access(TOOLS_CONSUL, os.X_OK), "consul is not in tools/: run `make deps` (scripts/install-consul.sh)"
    before = TOOLS_CONSUL.stat().st_mtime
    done = subprocess.run([str(REPO / "scripts" / "install-consul.sh")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert TOOLS_CONSUL.stat().st_mtime == before
