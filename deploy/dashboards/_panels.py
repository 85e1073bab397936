"""Panel and variable helpers shared by the dashboards: every panel reads the Prometheus data
source chosen in the `datasource` variable, and every query is a `Query` so that tests can
find them all (`queries`)."""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    VariableHide,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

__all__ = [
    "DATASOURCE",
    "Query",
    "datasource_variable",
    "label_variable",
    "stat_panel",
    "timeseries_panel",
]

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class Query:
    """One PromQL target: the expression and its legend (Grafana's `{{label}}` syntax)."""

    expr: str
    legend: str = ""

    def target(self, ref_id: str) -> prometheus.Dataquery:
        query = prometheus.Dataquery().expr(self.expr).ref_id(ref_id).datasource(DATASOURCE)
        if self.legend:
            query = query.legend_format(self.legend)
        return query


def _ref(index: int) -> str:
    return chr(ord("A") + index)


def timeseries_panel(
    title: str,
    description: str,
    queries: list[Query],
    *,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    min_val: float | None = 0,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
    )
    if min_val is not None:
        panel = panel.min(min_val)
    for index, query in enumerate(queries):
        panel = panel.with_target(query.target(_ref(index)))
    return panel


def stat_panel(
    title: str, description: str, query: Query, *, unit: str = "short", width: int = 6
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .with_target(query.target("A"))
    )


def datasource_variable() -> dashboard.DatasourceVariable:
    return dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(name: str, label: str, metric: str, title: str) -> dashboard.QueryVariable:
    """A multi-value variable over the values of `label` on `metric`, "All" meaning `.*`
    (queries use it as `label=~"$name"`)."""
    return (
        dashboard.QueryVariable(name)
        .label(title)
        .datasource(DATASOURCE)
        .query(f"label_values({metric}, {label})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(text="All", value="$__all", selected=True))
        .hide(VariableHide.DONT_HIDE)
    )
