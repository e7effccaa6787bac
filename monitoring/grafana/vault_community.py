"""The queries of Vault's community dashboard (grafana.com 12904, "HashiCorp Vault").

Operators who run Vault already have this dashboard; issue 12 wants it to read
a Strongroom node through the Vault metric names.  The repository keeps its
panel titles, queries and template variables only
(``vault-community/hashicorp-vault-12904.json``, Grafana-shaped so
``queries.panel_queries`` reads it like any dashboard): enough to evaluate
every panel against a Strongroom scrape, without vendoring a third-party
dashboard whose licence is not stated (see ``vault-community/README.md``).

``python -m monitoring.grafana.vault_community FULL.json`` rewrites the extract
from a full copy of the dashboard (e.g. downloaded from grafana.com).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

EXTRACT = Path(__file__).parent / "vault-community" / "hashicorp-vault-12904.json"

SOURCE = {
    "dashboard": "https://grafana.com/grafana/dashboards/12904-hashicorp-vault/",
    "copy_read": (
        "https://github.com/this-is-tobi/homelab/blob/d1da6b7c709cbcf1e5cf10301f87310f73e7b971/"
        "argo-cd/apps/prometheus-stack/grafana-dashboards/vault.json"
    ),
    "licence": "none stated (grafana.com lists no licence for 12904; the copy's repository has no LICENSE file)",
    "kept": "dashboard title and description, template variables, panel titles and types, query expressions",
}

# Stand-ins for the dashboard's own variables when its queries run against
# Strongroom: $mountpoint is part of metric names (vault_route_<op>_<mount>_),
# so "All" (.*) would not even parse; "secret" is the KV mount of a dev server.
STAND_INS = {"mountpoint": "secret"}

_VARIABLE_KEYS = ("name", "type", "label", "query", "includeAll", "allValue", "multi", "hide", "regex")
_TARGET_KEYS = ("refId", "expr", "legendFormat", "hide")


def _panel(panel: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {"title": panel.get("title", ""), "type": panel.get("type", "")}
    if panel.get("type") == "row":
        kept["panels"] = [_panel(inner) for inner in panel.get("panels", [])]
    else:
        kept["targets"] = [{k: t[k] for k in _TARGET_KEYS if k in t} for t in panel.get("targets", [])]
    return kept


def extract(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The part of ``dashboard`` the repository keeps (titles, variables, queries)."""
    return {
        "__source": SOURCE,
        "title": dashboard.get("title", ""),
        "description": dashboard.get("description", ""),
        "gnetId": dashboard.get("gnetId"),
        "templating": {
            "list": [
                {k: v[k] for k in _VARIABLE_KEYS if k in v} for v in dashboard.get("templating", {}).get("list", [])
            ]
        },
        "panels": [_panel(panel) for panel in dashboard.get("panels", [])],
    }


def load() -> dict[str, Any]:
    """The committed extract."""
    loaded: dict[str, Any] = json.loads(EXTRACT.read_text())
    return loaded


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m monitoring.grafana.vault_community FULL_DASHBOARD.json", file=sys.stderr)
        return 2
    dashboard = json.loads(Path(argv[0]).read_text())
    EXTRACT.parent.mkdir(parents=True, exist_ok=True)
    EXTRACT.write_text(json.dumps(extract(dashboard), indent=2, sort_keys=True) + "\n")
    print(EXTRACT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
