"""Platform overview: leases, GPUs leased against offered, money the chain moved, and the
customer API's traffic, latency and errors. Every figure comes from the customer API's
/metrics (replicas report database-backed gauges alike, hence `max`; counters are summed)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from deploy.dashboards._panels import (
    Query,
    datasource_variable,
    stat_panel,
    timeseries_panel,
)

__all__ = ["UID", "build"]

UID = "gridlease-platform"
# The chain's smallest unit per token (services.common.TOKEN_UNIT).
TOKEN = "1e12"
ACTIVE = 'state=~"pending|starting|running"'


def build() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard("Gridlease / Platform overview")
        .uid(UID)
        .tags(["gridlease"])
        .description("Leases, GPUs, revenue and the customer API.")
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(datasource_variable())
        .with_row(dashboard.Row("Leases and GPUs"))
        .with_panel(
            stat_panel(
                "Running leases",
                "Leases the chain started (state running), as recorded by the API.",
                Query('max(gridlease_api_leases{state="running"})'),
            )
        )
        .with_panel(
            stat_panel(
                "GPUs leased",
                "GPUs of offered machines the chain shows taken by leases.",
                Query('max(gridlease_api_gpus{state="leased"})'),
            )
        )
        .with_panel(
            stat_panel(
                "GPUs offered",
                "GPUs of every offer the seeds hold.",
                Query('max(gridlease_api_gpus{state="offered"})'),
            )
        )
        .with_panel(
            stat_panel(
                "Protocol fees in range",
                "Fees the chain took from lease payments in the dashboard's time range, in tokens.",
                Query(f"sum(increase(gridlease_api_protocol_fee_units_total[$__range])) / {TOKEN}"),
                unit="none",
            )
        )
        .with_panel(
            timeseries_panel(
                "Leases by state",
                "Leases not yet ended, by state (pending: spec not taken yet; starting: "
                "workload starting).",
                [Query(f"max by (state) (gridlease_api_leases{{{ACTIVE}}})", "{{state}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "GPUs leased vs offered",
                "All GPUs of the offers held, and those the chain shows leased.",
                [Query("max by (state) (gridlease_api_gpus)", "{{state}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Leases created",
                "Leases the chain accepted for requests to the API, per minute.",
                [
                    Query(
                        "sum(rate(gridlease_api_leases_created_total[$__rate_interval])) * 60",
                        "created/min",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Revenue",
                "Money the chain moved from escrow per hour, in tokens: pay to providers and "
                "the protocol's fee (every lease on chain).",
                [
                    Query(
                        f"sum(rate(gridlease_api_provider_pay_units_total[$__rate_interval])) "
                        f"* 3600 / {TOKEN}",
                        "to providers",
                    ),
                    Query(
                        f"sum(rate(gridlease_api_protocol_fee_units_total[$__rate_interval])) "
                        f"* 3600 / {TOKEN}",
                        "protocol fee",
                    ),
                ],
            )
        )
        .with_row(dashboard.Row("Customer API"))
        .with_panel(
            timeseries_panel(
                "Requests by route and status",
                "HTTP requests per second, by route template and status code.",
                [
                    Query(
                        "sum by (route, status) "
                        "(rate(gridlease_api_request_seconds_count[$__rate_interval]))",
                        "{{route}} {{status}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            timeseries_panel(
                "Error ratio",
                "Share of requests answered 5xx (server faults) and 4xx (refused).",
                [
                    Query(
                        '(sum(rate(gridlease_api_request_seconds_count{status=~"5.."}'
                        "[$__rate_interval])) or vector(0)) / "
                        "sum(rate(gridlease_api_request_seconds_count[$__rate_interval]))",
                        "5xx",
                    ),
                    Query(
                        '(sum(rate(gridlease_api_request_seconds_count{status=~"4.."}'
                        "[$__rate_interval])) or vector(0)) / "
                        "sum(rate(gridlease_api_request_seconds_count[$__rate_interval]))",
                        "4xx",
                    ),
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            timeseries_panel(
                "Latency p50 / p99 by route",
                "Time to answer, by route template (requests matching no route left out).",
                [
                    Query(
                        "histogram_quantile(0.5, sum by (le, route) (rate("
                        'gridlease_api_request_seconds_bucket{route!="unmatched"}'
                        "[$__rate_interval])))",
                        "p50 {{route}}",
                    ),
                    Query(
                        "histogram_quantile(0.99, sum by (le, route) (rate("
                        'gridlease_api_request_seconds_bucket{route!="unmatched"}'
                        "[$__rate_interval])))",
                        "p99 {{route}}",
                    ),
                ],
                unit="s",
            )
        )
        .with_panel(
            timeseries_panel(
                "Spec deliveries and rate limits",
                "Specs handed to nodes by outcome, and requests refused by a rate limit, per "
                "minute.",
                [
                    Query(
                        "sum by (outcome) "
                        "(rate(gridlease_api_spec_deliveries_total[$__rate_interval])) * 60",
                        "delivery {{outcome}}",
                    ),
                    Query(
                        "sum by (limit) "
                        "(rate(gridlease_api_rate_limited_total[$__rate_interval])) * 60 "
                        "or vector(0)",
                        "429 {{limit}}",
                    ),
                ],
            )
        )
    )
