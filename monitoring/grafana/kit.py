"""Panel builders shared by Strongroom's dashboards, on Grafana's own SDK
(``grafana-foundation-sdk``, the build for Grafana 11.6).

Every panel here takes a title, a description and a unit: a panel without
them does not get built.  Every query reads the dashboard's ``$datasource``
variable, and the ``$node`` variable selects Strongroom nodes by their
Prometheus ``instance`` label (``NODE``), so the dashboards do not depend on
labels a scrape configuration may or may not add.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")

# The matcher every Strongroom series gets: the nodes picked in the node variable.
NODE = 'instance=~"$node"'

# Dashboards link to each other through this tag.
TAG = "strongroom"


class Query:
    """One PromQL query of a panel: expression, legend, instant or range."""

    def __init__(self, expr: str, legend: str = "", *, instant: bool = False, table_format: bool = False):
        self.expr = expr
        self.legend = legend
        self.instant = instant
        self.table_format = table_format

    def build(self, ref_id: str) -> prometheus.Dataquery:
        query = prometheus.Dataquery().expr(self.expr).ref_id(ref_id).datasource(DATASOURCE)
        if self.legend:
            query.legend_format(self.legend)
        if self.instant:
            query.instant()
        else:
            query.range()
        if self.table_format:
            query.format(prometheus_models.PromQueryFormat.TABLE)
        return query


# The panel builders this module makes; each has the same field-config methods.
AnyPanel = TypeVar("AnyPanel", stat.Panel, timeseries.Panel, table.Panel, statetimeline.Panel)


def _panel(
    panel: AnyPanel, title: str, description: str, unit: str, queries: Sequence[Query], width: int, height: int
) -> AnyPanel:
    if not (title and description and unit):
        raise ValueError(f"panel {title!r}: title, description and unit are all required")
    if not queries:
        raise ValueError(f"panel {title!r}: at least one query is required")
    panel.title(title).description(description).unit(unit).datasource(DATASOURCE).span(width).height(height)
    for ref_id, query in zip(string.ascii_uppercase, queries, strict=False):
        panel.with_target(query.build(ref_id))
    return panel


def value_mappings(texts: Mapping[str, tuple[str, str]]) -> list[models.ValueMapping]:
    """``{"1": ("Active", "green"), ...}``: what a value reads as, and its colour."""
    return [
        models.ValueMap(
            options={
                value: models.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, (text, color)) in enumerate(texts.items())
            }
        )
    ]


def thresholds(base: str, *steps: tuple[float, str]) -> dashboard.ThresholdsConfig:
    """Colour ``base`` below the first step, then each step's colour from its value on."""
    return (
        dashboard.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=None, color=base)] + [models.Threshold(value=v, color=c) for v, c in steps])
    )


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    width: int = 12,
    height: int = 8,
    bars: bool = False,
    stacked: bool = False,
    steps: bool = False,
    minimum: float | None = 0,
) -> timeseries.Panel:
    """A time series; ``bars`` for counts per interval, ``steps`` for states."""
    panel = _panel(timeseries.Panel(), title, description, unit, queries, width, height)
    panel.legend(
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["mean", "max", "lastNotNull"])
    )
    panel.tooltip(
        common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)
    )
    if minimum is not None:
        panel.min(minimum)
    if bars:
        panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    else:
        panel.fill_opacity(10)
    if stacked:
        panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if steps:
        panel.line_interpolation(common.LineInterpolation.STEP_AFTER)
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    width: int = 6,
    height: int = 4,
    mappings: Mapping[str, tuple[str, str]] | None = None,
    colours: dashboard.ThresholdsConfig | None = None,
) -> stat.Panel:
    """One big number (or one per series, named by the legend), the last value."""
    panel = _panel(stat.Panel(), title, description, unit, queries, width, height)
    panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    panel.graph_mode(common.BigValueGraphMode.NONE).text_mode(common.BigValueTextMode.VALUE_AND_NAME)
    if mappings:
        panel.mappings(value_mappings(mappings)).color_mode(common.BigValueColorMode.BACKGROUND)
    if colours is not None:
        panel.thresholds(colours).color_mode(common.BigValueColorMode.BACKGROUND)
    return panel


def state_panel(
    title: str,
    description: str,
    *queries: Query,
    mappings: Mapping[str, tuple[str, str]],
    width: int = 12,
    height: int = 6,
) -> statetimeline.Panel:
    """One band per series, coloured by the mapped state over time."""
    panel = _panel(statetimeline.Panel(), title, description, "none", queries, width, height)
    panel.mappings(value_mappings(mappings)).merge_values(True).show_value(common.VisibilityMode.AUTO)
    return panel


def table_panel(
    title: str, description: str, unit: str, *queries: Query, width: int = 12, height: int = 8
) -> table.Panel:
    """An instant table, one row per series."""
    panel = _panel(table.Panel(), title, description, unit, queries, width, height)
    return panel


def build_dashboard(
    uid: str, title: str, description: str, rows: Sequence[tuple[str, Sequence[Any]]]
) -> dashboard.Dashboard:
    """A dashboard with a ``datasource`` and a ``node`` variable, links to the
    other Strongroom dashboards and ``rows`` of panels, numbered in order."""
    built = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .link(
            dashboard.DashboardLink("Strongroom")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("node")
            .label("Node")
            .description("Strongroom nodes, by the instance label Prometheus scrapes them under")
            .datasource(DATASOURCE)
            .query("label_values(strongroom_core_unsealed, instance)")
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(models.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    panel_id = 0
    for row_title, panels in rows:
        panel_id += 1
        built.with_row(dashboard.Row(row_title).id(panel_id))
        for panel in panels:
            panel_id += 1
            built.with_panel(panel.id(panel_id))
    return built


# -- PromQL and panels more than one dashboard uses ---------------------------

RATE = "[$__rate_interval]"

# HAProxy's backends for the cluster (strongroom_write, strongroom_read); the
# stats frontend and anything else HAProxy serves stay out.
HAPROXY_BACKENDS = 'proxy=~"strongroom_.*"'


def quantile(q: float, metric: str, by: str, matchers: str = "", window: str = RATE) -> str:
    """The ``q`` quantile of histogram ``metric`` per ``by``, on the selected nodes."""
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{matchers}{NODE}}}{window})))"


def server_state_panel(width: int) -> stat.Panel:
    """HAProxy's health-check verdict on each node in each backend."""
    return stat_panel(
        "HAProxy: server state",
        "How HAProxy's health checks see each node in each backend. strongroom_write keeps only the node "
        "answering 200 on /v1/sys/health (the active node); strongroom_read also keeps performance standbys "
        "(200 with perfstandbyok=true). A node DOWN in both is sealed, a plain standby or unreachable.",
        "none",
        Query(
            f'max by (proxy, server) (haproxy_server_status{{{HAPROXY_BACKENDS}, state="UP"}})',
            "{{proxy}} / {{server}}",
        ),
        mappings={"0": ("DOWN", "red"), "1": ("UP", "green")},
        width=width,
        height=6,
    )
