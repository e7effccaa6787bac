"""A gunicorn worker reaches Consul through the hot-path transport alone and
never loads py-consul or requests (about 5 MiB of every worker: bench/README.md).

Run in a fresh interpreter, as a worker starts: the worker's app module, its
storage built by ``make_backend`` from a node configuration, and every storage
operation a worker performs against the real agent; then the node core's way
in (``client``) loads py-consul, which shows the check can fail."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

SCRIPT = r"""
import json, sys
import strongroom.server.wsgi  # the worker's app module, as gunicorn imports it
from strongroom.config import loads
from strongroom.server.build import make_backend
from strongroom.storage import TxnOp, check_op

address, prefix = sys.argv[1], sys.argv[2]
config = loads(
    f'storage "consul" {{\n  address = "{address}"\n  path = "{prefix}"\n}}\n'
    'listener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n}\n'
    'api_addr = "http://127.0.0.1:8200"\ndisable_mlock = true\n',
    hostname="node1",
    cpu_count=2,
)
backend = make_backend(config)
seen = {}
index = backend.txn([check_op("folder/a", 0), TxnOp("set", "folder/a", b"1"), TxnOp("set", "folder/sub/b", b"2")])
seen["get"] = backend.get_with_index("folder/a") == (b"1", index)
seen["list"] = backend.list("folder/")
seen["prefix"] = sorted(backend.get_prefix("folder/"))
backend.delete("folder/a")
seen["deleted"] = backend.get("folder/a") is None
seen["missing_list"] = backend.list("nothing/")

def third_party():
    return sorted({m.split(".")[0] for m in sys.modules} & {"consul", "requests", "urllib3", "charset_normalizer"})

seen["worker"] = third_party()
backend.client  # the node core's py-consul client (sessions, registry, watches)
seen["node_core"] = third_party()
backend.delete_prefix("")
print(json.dumps(seen))
"""


def test_a_worker_s_storage_path_loads_neither_py_consul_nor_requests(consul_agent):
    prefix = f"test-{uuid.uuid4().hex}/"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, consul_agent.address, prefix],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["get"] is True
    assert seen["list"] == ["a", "sub/"]
    assert seen["prefix"] == ["folder/a", "folder/sub/b"]
    assert seen["deleted"] is True
    assert seen["missing_list"] == []
    assert seen["worker"] == []
    assert seen["node_core"] == ["charset_normalizer", "consul", "requests", "urllib3"]
