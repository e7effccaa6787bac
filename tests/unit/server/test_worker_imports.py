"""What a worker process loads: the HCL parser (python-hcl2 and lark, ~13 MiB
imported and ~8 MiB more once it has parsed) stays out of a worker until a
policy written in HCL has to be parsed; the configuration reaches workers
already parsed (``STRONGROOM_CONFIG_JSON``).  Issue 15 bounds a worker at
60 MiB."""

from __future__ import annotations

import subprocess
import sys

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
