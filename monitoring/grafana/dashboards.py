"""Strongroom's Grafana dashboards, as code.

``python -m monitoring.grafana.dashboards`` (re)writes
``monitoring/grafana/dashboards/<uid>.json``, the files Grafana's file
provider loads (``provisioning/dashboards/strongroom.yml``).  The JSON is
committed; a test regenerates it and fails on any difference, so edit the
modules named in ``DASHBOARDS``, never the JSON.

Metric names: Strongroom's own (``strongroom_*``, service/strongroom/metrics.py),
HAProxy 2.6's built-in exporter (``haproxy_*``, names as served by a real
haproxy rendered from our template) and Consul's agent metrics
(``consul_*``, as served by Consul 1.8.7 with ``prometheus_retention_time``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from monitoring.grafana import api, frontdoor, overview, storage

OUTPUT_DIR = Path(__file__).parent / "dashboards"

# Where Grafana's file provider (provisioning/dashboards/strongroom.yml) loads
# the JSON from: the Ansible role installs OUTPUT_DIR's files there.
PROVISIONED_PATH = "/var/lib/grafana/dashboards/strongroom"

DASHBOARDS: tuple[Callable[[], Any], ...] = (overview.dashboard, api.dashboard, storage.dashboard, frontdoor.dashboard)


def render() -> dict[str, str]:
    """``{file name: JSON text}`` for every dashboard, exactly as committed."""
    rendered = {}
    for make in DASHBOARDS:
        model = json.loads(JSONEncoder(sort_keys=True).encode(make().build()))
        rendered[f"{model['uid']}.json"] = json.dumps(model, indent=2, sort_keys=True) + "\n"
    return rendered


def write(directory: Path = OUTPUT_DIR) -> list[Path]:
    """Write every dashboard into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main() -> int:
    for path in write():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
