#!/usr/bin/env bash
# KV v2 benchmark: Strongroom beside raw Consul, OpenBao and a trivial Falcon app (bench/README.md).
# Arguments go to `python -m bench.kv` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m bench.kv "$@"
