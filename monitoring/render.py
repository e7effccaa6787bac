"""Draw the panels of Strongroom's Grafana dashboards from a live Prometheus into PNG files.

Grafana cannot be installed everywhere (DESIGN.md, "Real components"); this lets
a person see what a dashboard shows without it::

    python -m monitoring.render --prometheus http://127.0.0.1:9090 \\
        --dashboard overview --dashboard api --out DIR [--since 15m] [--node REGEX]

For each panel of each named dashboard (the committed JSON in
``monitoring/grafana/dashboards/``, its Grafana variables substituted by
``monitoring.grafana.queries``) every query is asked of Prometheus's
``/api/v1/query_range`` over the last ``--since``, and drawn with matplotlib as
a time series: the panel's title, its unit on the y-axis, a legend of the
series.  One PNG per dashboard (``<name>.png``), the panels in a grid in the
dashboard's order.  Stat, gauge and table panels are drawn as time series too:
the history is what a picture can show that a single number cannot.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display here

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import requests
from matplotlib.ticker import FuncFormatter

from monitoring.grafana import queries

#: Grafana unit ids (fieldConfig.defaults.unit) and how the y-axis names them.
UNIT_LABELS = {
    "s": "seconds",
    "ms": "milliseconds",
    "reqps": "requests/s",
    "ops": "operations/s",
    "rps": "reads/s",
    "wps": "writes/s",
    "percentunit": "ratio (0-1)",
    "percent": "percent",
    "bytes": "bytes",
    "decbytes": "bytes",
    "short": "count",
    "none": "value",
    "bool": "0/1",
    "bool_yes_no": "0 no / 1 yes",
    "bool_on_off": "0 off / 1 on",
    "dateTimeAsIso": "unix time (s)",
    "dateTimeAsSystem": "unix time (s)",
    "dateTimeFromNow": "unix time (s)",
    "dtdurations": "seconds",
    "percentage": "percent",
}
#: At most this many series get a legend entry per panel (the largest last values).
LEGEND_MAX = 8
LEGEND_CHARS = 60
COLUMNS = 3
DPI = 80
#: Inches per panel (width, height).
PANEL_SIZE = (5.2, 2.9)
#: Points per series Prometheus is asked for (its limit is 11,000).
POINTS = 240


@dataclass(frozen=True)
class Series:
    """One line: its legend text and its ``(unix time, value)`` points."""

    label: str
    times: list[float]
    values: list[float]


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration (``90s``, ``15m``, ``1h30m``, ``2d``).

    Raises ValueError naming the text when it is not one."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 15m, 1h)")
    return sum(float(n) * units[u] for n, u in parts)


def legend_text(legend_format: str, labels: dict[str, str]) -> str:
    """Grafana's legend: ``{{label}}`` replaced by the series' label values; without a
    format, the labels as ``{a="1", b="2"}`` (``__name__`` only when it is alone)."""
    if legend_format and legend_format != "__auto":
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), legend_format)
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if not shown:
        return labels.get("__name__", "value")
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    """``/api/v1/query_range``'s result; RuntimeError with Prometheus's message on an error."""
    response = requests.get(
        f"{prometheus.rstrip('/')}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": step},
        timeout=30,
    )
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(f"query {expr!r}: {body.get('errorType')}: {body.get('error')}")
    result: list[dict] = body["data"]["result"]
    return result


@dataclass(frozen=True)
class Panel:
    """What the renderer needs of one Grafana panel: title, unit id, and its
    queries as ``(expression with variables substituted, legend format)``."""

    title: str
    unit: str
    targets: list[tuple[str, str]]
    #: Grafana's value mappings of the panel (``{2.0: "Active", ...}``): y-axis tick labels.
    mappings: dict[float, str] = field(default_factory=dict)


DASHBOARDS = Path(__file__).resolve().parent / "grafana" / "dashboards"


def load_dashboard(name: str, directory: Path = DASHBOARDS) -> dict[str, Any]:
    """The committed dashboard JSON called ``name`` (``overview`` is
    ``overview.json``, or the dashboard whose uid is ``name`` or ``strongroom-<name>``).

    Raises FileNotFoundError listing the dashboards there are."""
    candidates = sorted(directory.glob("*.json"))
    for path in candidates:
        if path.stem == name:
            return dict(json.loads(path.read_text()))
    for path in candidates:
        dashboard = json.loads(path.read_text())
        if dashboard.get("uid") in (name, f"strongroom-{name}"):
            return dict(dashboard)
    raise FileNotFoundError(f"no dashboard {name!r} in {directory} (there are: {[p.stem for p in candidates]})")


def panels(dashboard: Mapping[str, Any], variables: Mapping[str, str] | None = None) -> list[Panel]:
    """Every panel of ``dashboard`` with at least one visible Prometheus query, in
    dashboard order, variables substituted as ``monitoring.grafana.queries`` does."""
    values = queries.variable_values(dashboard, variables)
    found = []
    for panel in queries.leaf_panels(dashboard):
        targets = [
            (queries.substitute(t["expr"], values), t.get("legendFormat", ""))
            for t in panel.get("targets", [])
            if t.get("expr", "").strip() and not t.get("hide")
        ]
        if targets:
            defaults = panel.get("fieldConfig", {}).get("defaults", {})
            found.append(Panel(panel.get("title", ""), defaults.get("unit", ""), targets, value_mappings(defaults)))
    return found


def value_mappings(defaults: Mapping[str, Any]) -> dict[float, str]:
    """``{value: text}`` of a panel's "value" mappings (Grafana's ``fieldConfig.defaults.mappings``)."""
    found = {}
    for mapping in defaults.get("mappings") or []:
        if mapping.get("type") == "value":
            for value, option in mapping.get("options", {}).items():
                try:
                    found[float(value)] = str(option.get("text", value))
                except ValueError:
                    continue
    return found


def panel_series(
    prometheus: str, panel: Panel, start: float, end: float, step: float
) -> tuple[list[Series], list[str]]:
    """Every series of ``panel``'s queries, and the errors of the queries that failed."""
    series: list[Series] = []
    errors: list[str] = []
    for expr, legend in panel.targets:
        try:
            result = query_range(prometheus, expr, start, end, step)
        except (RuntimeError, requests.RequestException, ValueError) as exc:
            errors.append(str(exc))
            continue
        for item in result:
            times, values = with_gaps([(float(t), float(v)) for t, v in item["values"]], step)
            series.append(Series(legend_text(legend, item["metric"]), times, values))
    return series, errors


def with_gaps(points: Sequence[tuple[float, float]], step: float) -> tuple[list[float], list[float]]:
    """Times and values with a NaN wherever a step has no point, so the line
    breaks there (as Grafana draws it) instead of bridging the gap: a node that
    could not be scraped shows as missing, not as a ramp."""
    times: list[float] = []
    values: list[float] = []
    for t, v in points:
        if times and t - times[-1] > 1.5 * step:
            times.append(times[-1] + step)
            values.append(math.nan)
        times.append(t)
        values.append(v)
    return times, values


def _last_finite(values: Sequence[float]) -> float:
    for value in reversed(values):
        if math.isfinite(value):
            return value
    return -math.inf


def draw_panel(ax: plt.Axes, panel: Panel, series: list[Series], errors: list[str]) -> None:
    """One panel on ``ax``: lines, title, unit, legend (or why there is nothing to see)."""
    ax.set_title(panel.title, fontsize=9, loc="left")
    ax.set_ylabel(UNIT_LABELS.get(panel.unit, panel.unit or "value"), fontsize=7)
    ax.tick_params(labelsize=6)
    ax.grid(True, linewidth=0.3, alpha=0.6)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=7))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))
    if not series:
        message = "query failed: " + errors[0][:80] if errors else "no data"
        ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=7, transform=ax.transAxes, wrap=True)
        return
    timestamps = panel.unit.startswith("dateTime")
    ranked = sorted(series, key=lambda s: _last_finite(s.values), reverse=True)
    for index, line in enumerate(ranked):
        times = [datetime.fromtimestamp(t, UTC) for t in line.times]
        values = line.values
        if timestamps:  # Grafana's dateTime units take milliseconds since the epoch
            values = [v / 1000 for v in values]
        label = line.label[:LEGEND_CHARS] if index < LEGEND_MAX else None
        style = {"marker": "o", "markersize": 3} if len(values) == 1 else {}
        ax.plot(times, values, linewidth=1.0, label=label, **style)
    if timestamps:
        ax.set_ylabel("time (UTC)", fontsize=7)
        low = min((v for line in ranked for v in line.values if math.isfinite(v)), default=0.0) / 1000
        high = max((v for line in ranked for v in line.values if math.isfinite(v)), default=0.0) / 1000
        margin = max(10.0, (high - low) * 0.1)  # autoscale would pad a constant by days
        ax.set_ylim(low - margin, high + margin)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{datetime.fromtimestamp(v, UTC):%H:%M:%S}"))
    if panel.mappings:
        ax.set_ylabel("")  # the tick labels say what the values mean
        ax.set_yticks(sorted(panel.mappings), [panel.mappings[v] for v in sorted(panel.mappings)])
        ax.set_ylim(min(panel.mappings) - 0.3, max(panel.mappings) + 0.3)
    if len(ranked) > LEGEND_MAX:
        ax.plot([], [], " ", label=f"... {len(ranked) - LEGEND_MAX} more")
    ax.legend(fontsize=5.5, loc="best", framealpha=0.6)


def render_dashboard(
    prometheus: str,
    name: str,
    out: Path,
    since: float,
    *,
    end: float | None = None,
    variables: Mapping[str, str] | None = None,
) -> Path:
    """Draw dashboard ``name`` (``overview``, ``api``, ... or a uid) over the ``since``
    seconds before ``end`` (default now) to ``out/<name>.png``; returns the path.
    ``variables`` override the stand-ins for Grafana's variables
    (``{"__rate_interval": "10s", "node": "10.0.0.5:8200"}``)."""
    dashboard = load_dashboard(name)
    drawn = panels(dashboard, variables)
    end = time.time() if end is None else end
    start = end - since
    step = max(1.0, math.ceil(since / POINTS))
    rows = max(1, math.ceil(len(drawn) / COLUMNS))
    width, height = COLUMNS * PANEL_SIZE[0], rows * PANEL_SIZE[1] + 0.5
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(width, height), squeeze=False)
    # Fixed margins in inches (tight_layout measures every label: most of the time on a busy machine).
    figure.subplots_adjust(
        left=1.1 / width, right=1 - 0.2 / width, top=1 - 0.8 / height, bottom=0.35 / height, hspace=0.45, wspace=0.4
    )
    for ax, panel in zip(axes.flat, drawn, strict=False):
        draw_panel(ax, panel, *panel_series(prometheus, panel, start, end, step))
    for ax in list(axes.flat)[len(drawn) :]:
        ax.set_visible(False)
    span = f"{datetime.fromtimestamp(start, UTC):%Y-%m-%d %H:%M:%S} to {datetime.fromtimestamp(end, UTC):%H:%M:%S} UTC"
    figure.suptitle(f"{dashboard.get('title', name)}  ({span}, {prometheus})", fontsize=11)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    figure.savefig(path, dpi=DPI, pil_kwargs={"optimize": True})
    plt.close(figure)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument(
        "--dashboard", action="append", required=True, help="dashboard name (overview, api, storage, frontdoor)"
    )
    parser.add_argument("--out", required=True, type=Path, help="directory for the PNG files")
    parser.add_argument("--since", default="15m", help="time range ending now (default 15m)")
    parser.add_argument(
        "--rate-interval",
        default="1m",
        help="what $__rate_interval stands for (Grafana: at least 4 scrape intervals; default 1m)",
    )
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a dashboard variable's value")
    args = parser.parse_args(argv)
    try:
        since = parse_duration(args.since)
        parse_duration(args.rate_interval)
    except ValueError as exc:
        parser.error(str(exc))
    malformed = [item for item in args.var if "=" not in item]
    if malformed:
        parser.error(f"--var takes NAME=VALUE, not {malformed[0]!r}")
    variables = dict(item.split("=", 1) for item in args.var)
    variables.setdefault("__rate_interval", args.rate_interval)
    for name in args.dashboard:
        try:
            print(render_dashboard(args.prometheus, name, args.out, since, variables=variables))
        except FileNotFoundError as exc:
            parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
