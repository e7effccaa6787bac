"""What a worker process loads: the HCL parser (python-hcl2 and lark, ~13 MiB
imported and ~8 MiB more once it has parsed) stays out of a worker until a
policy written in HCL has to be parsed; the configuration reaches workers
already parsed (``STRONGROOM_CONFIG_JSON``).  Issue 15 bounds a worker at
60 MiB."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
import strongroom.server.wsgi
from strongroom.core.policy_parser import parse_policy
parse_policy("json", '{"path": {"secret/*": {"capabilities": ["read"]}}}')
print(sorted(name for name in ("hcl2", "lark") if name in sys.modules))
parse_policy("hcl", 'path "secret/*" { capabilities = ["read"] }')
print(sorted(name for name in ("hcl2", "lark") if name in sys.modules))
"""


def test_the_worker_app_and_json_policies_load_no_hcl_parser():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    before, after = done.stdout.splitlines()
    assert before == "[]"
    assert after == "['hcl2', 'lark']"  # an HCL policy still parses, with the library


WORKER = """
import sys
from strongroom.core.policy_parser import parse_policy, use_hcl_parser
from strongroom.errors import InvalidRequest
from strongroom.server.nodelink import NodeLink

use_hcl_parser(NodeLink(sys.argv[1], connect_timeout=5).parse_hcl)
policy = parse_policy("p", 'path "secret/*" { capabilities = ["read", "list"] }')
print(sorted((rule.path, sorted(rule.capabilities)) for rule in policy.rules))
try:
    parse_policy("bad", 'path "secret/*" { capabilities = ')
except InvalidRequest as exc:
    print(str(exc))
print(sorted(name for name in ("hcl2", "lark") if name in sys.modules))
"""


def test_a_worker_has_its_node_core_parse_hcl_policies(tmp_path):
    """The same rules and the same syntax errors as a local parse, and no HCL parser in the worker."""
    import tempfile

    from strongroom.core.policy_parser import parse_policy
    from strongroom.errors import InvalidRequest
    from strongroom.server.nodelink import NodeLinkServer, _parse_hcl

    with tempfile.TemporaryDirectory(prefix="hcl-") as folder:  # a Unix socket path holds 107 bytes
        path = f"{folder}/node.sock"
        server = NodeLinkServer(path, {"parse_hcl": _parse_hcl}, state=lambda: {"keyring": None, "ha": {}})
        server.start()
        try:
            done = subprocess.run(
                [sys.executable, "-c", WORKER, path], capture_output=True, text=True, timeout=60, check=True
            )
        finally:
            server.close()
    rules, error, loaded = done.stdout.splitlines()
    assert rules == "[('secret/*', ['list', 'read'])]"
    with pytest.raises(InvalidRequest) as local:
        parse_policy("bad", 'path "secret/*" { capabilities = ')
    assert error == str(local.value)  # the node core describes it as a local parse would
    assert loaded == "[]"
