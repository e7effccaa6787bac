"""The PromQL a Grafana dashboard sends, read from the dashboard's JSON.

Grafana replaces template variables before a query reaches Prometheus; this
module does the same with fixed stand-ins, so the expressions can be checked
(and evaluated) against a real Prometheus without Grafana:

- built-ins: ``$__rate_interval`` and ``$__interval`` become ``1m``,
  ``$__range`` ``1h`` (``$__range_s`` 3600, ``$__range_ms`` 3600000);
- a dashboard variable with "All" becomes its ``allValue``, else ``.*`` (all
  values, as a regex matcher reads it); one with a concrete current value
  becomes that value; any other one ``.*``;
- ``variables`` passed by the caller win over all of these (the community
  Vault dashboard puts ``$mountpoint`` inside metric names: pass a mount);
- a ``$name`` the dashboard does not define is left alone, as Grafana does.

Used by the dashboard tests here and by the live-data test and the renderer,
which read the generated JSON, never the generator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

BUILTINS: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

# ${name}, ${name:format}, $name, [[name]], [[name:format]]: Grafana's variable forms.
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")


def leaf_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row, in dashboard order (a collapsed row keeps
    its panels inside it, an open row before them)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def variable_values(dashboard: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The stand-in value of every variable a query of ``dashboard`` may use."""
    values = dict(BUILTINS)
    for variable in dashboard.get("templating", {}).get("list", []):
        values[variable["name"]] = _stand_in(variable)
    values.update(overrides or {})
    return values


def _stand_in(variable: Mapping[str, Any]) -> str:
    if variable.get("includeAll"):
        return variable.get("allValue") or ".*"
    current = variable.get("current", {}).get("value")
    if isinstance(current, list):
        current = current[0] if len(current) == 1 else None
    if isinstance(current, str) and current and current != "$__all":
        return current
    return ".*"


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every known variable replaced by its value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, match.group(0))

    return _VARIABLE.sub(replace, expr)


def panel_queries(
    dashboard: Mapping[str, Any], variables: Mapping[str, str] | None = None, *, include_hidden: bool = False
) -> list[tuple[str, str]]:
    """``(panel title, expression)`` for every Prometheus query of ``dashboard``,
    variables substituted; queries Grafana hides (``"hide": true``) only with
    ``include_hidden``.  A panel with several queries appears once per query."""
    values = variable_values(dashboard, variables)
    found = []
    for panel in leaf_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            if expr.strip() and (include_hidden or not target.get("hide")):
                found.append((panel.get("title", ""), substitute(expr, values)))
    return found
