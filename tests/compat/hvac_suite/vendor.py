"""Re-create ``integration_tests/`` from a git checkout of hvac: the modules
Strongroom runs, with the harness imports pointed at ``tests/compat/hvac_suite``
and the tests Strongroom cannot run taken out (each leaves a comment in its place).

    python -m tests.compat.hvac_suite.vendor /path/to/hvac.git v2.4.0

The lists below are the record of what was left out and why (README.md repeats them).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE / "integration_tests"

MODULES = [
    "api/auth_methods/test_approle.py",
    "api/auth_methods/test_token.py",
    "api/secrets_engines/test_kv_v1.py",
    "api/secrets_engines/test_kv_v2.py",
    "api/secrets_engines/test_transit.py",
    "api/system_backend/test_audit.py",
    "api/system_backend/test_auth.py",
    "api/system_backend/test_health.py",
    "api/system_backend/test_init.py",
    "api/system_backend/test_key.py",
    "api/system_backend/test_leader.py",
    "api/system_backend/test_mount.py",
    "api/system_backend/test_policies.py",
    "api/system_backend/test_policy.py",
    "api/system_backend/test_seal.py",
    "api/system_backend/test_wrapping.py",
    "v1/test_approle.py",
    "v1/test_integration.py",
    "v1/test_system_backend.py",
]

GITHUB = "enables the GitHub auth method, which Strongroom does not offer"
ENTERPRISE = "RGP/EGP Sentinel policies are Vault Enterprise only"

#: (module, test function, reason)
LEFT_OUT_TESTS = [
    ("api/system_backend/test_auth.py", "test_auth_backend_manipulation", GITHUB),
    ("v1/test_system_backend.py", "test_auth_backend_manipulation", GITHUB),
    ("v1/test_system_backend.py", "test_read_lease", "needs the PKI secrets engine, which Strongroom does not offer"),
    (
        "v1/test_integration.py",
        "test_auth_gcp_alternate_mount_point_with_no_client_token_exception",
        "enables the GCP auth method, which Strongroom does not offer",
    ),
    (
        "v1/test_integration.py",
        "test_illegal_token",
        "asserts the wording of requests' own InvalidHeader, raised before anything is sent",
    ),
] + [
    ("api/system_backend/test_policies.py", f"test_{verb}_{kind}_policy", ENTERPRISE)
    for kind in ("rgp", "egp")
    for verb in ("create", "update", "read", "list", "delete")
]

#: (module, the param(...) block as hvac writes it, reason)
LEFT_OUT_CASES = [
    (
        "api/secrets_engines/test_transit.py",
        '            param(\n                "allow_plaintext_backup false",\n'
        "                allow_plaintext_backup=False,\n"
        "                raises=exceptions.InternalServerError,\n"
        '                exception_message="plaintext backup is disallowed on the policy",\n            ),\n',
        "expects Vault's 500, Strongroom answers 400",
    ),
    (
        "api/secrets_engines/test_transit.py",
        '            param(\n                "existing key without force",\n                name=None,\n'
        "                raises=exceptions.InternalServerError,\n"
        '                exception_message="already exists",\n            ),\n',
        "expects Vault's 500, Strongroom answers 400",
    ),
]

IMPORTS = [
    (
        "from tests.utils.hvac_integration_test_case import",
        "from tests.compat.hvac_suite.utils.hvac_integration_test_case import",
    ),
    ("from tests import utils\n", "from tests.compat.hvac_suite import utils\n"),
    ("from tests.utils import", "from tests.compat.hvac_suite.utils import"),
]

HEADER = (
    "# Vendored from hvac (https://github.com/hvac/hvac) tests/integration_tests/{module}\n"
    "# at {tag} (commit {commit}).\n"
    "# Copyright hvac contributors, Apache License 2.0 (tests/compat/hvac_suite/LICENSE).\n"
    "# Adapted for Strongroom by tests/compat/hvac_suite/vendor.py: harness imports, left-out tests.\n"
)


def remove_function(source: str, name: str, reason: str) -> str:
    """``source`` without the function ``name`` (decorators included), a comment in its place."""
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
            end = node.end_lineno or node.lineno
            if end < len(lines) and not lines[end].strip():
                end += 1
            indent = lines[node.lineno - 1][: node.col_offset]
            lines[start:end] = [f"{indent}# Left out for Strongroom: {name}: {reason}.\n\n"]
            return "".join(lines)
    raise LookupError(f"{name} not found")


def vendor(git_dir: str, tag: str) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "--git-dir", git_dir, *args], capture_output=True, text=True, check=True).stdout

    commit = git("rev-parse", f"{tag}^{{commit}}").strip()
    for module in MODULES:
        source = git("show", f"{commit}:tests/integration_tests/{module}")
        for old, new in IMPORTS:
            source = source.replace(old, new)
        for where, name, reason in LEFT_OUT_TESTS:
            if where == module:
                source = remove_function(source, name, reason)
        for where, block, reason in LEFT_OUT_CASES:
            if where == module:
                label = block.split('"')[1]
                if block not in source:
                    raise LookupError(f"{label!r} not found in {module}")
                source = source.replace(block, f'            # Left out for Strongroom: "{label}": {reason}.\n')
        target = TARGET / module
        target.parent.mkdir(parents=True, exist_ok=True)
        package = target.parent
        while package != HERE:
            (package / "__init__.py").touch()
            package = package.parent
        target.write_text(HEADER.format(module=module, tag=tag, commit=commit) + source)


if __name__ == "__main__":
    vendor(sys.argv[1], sys.argv[2])
