"""Provider view: machines, each GPU under dcgm-exporter's names (utilisation, memory,
temperature, power, XID errors), the same per lease, heartbeats and earnings. GPU series carry
`Hostname`; the agent's own series come from the same /metrics endpoint (`instance`)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from deploy.dashboards._panels import (
    Query,
    datasource_variable,
    label_variable,
    stat_panel,
    timeseries_panel,
)

__all__ = ["UID", "build"]

UID = "gridlease-provider"
TOKEN = "1e12"
HOST = 'Hostname=~"$Hostname"'
# One series per GPU a lease holds, with the lease id; joined onto dcgm series by GPU.
HELD = 'group_left (lease_id) (gridlease_gpu_lease{lease_id=~"$lease"} == 1)'


def _per_lease(agg: str, metric: str) -> str:
    return f"{agg} by (lease_id) ({metric}{{{HOST}}} * on (Hostname, UUID) {HELD})"


def build() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard("Gridlease / Provider")
        .uid(UID)
        .tags(["gridlease"])
        .description("Machines, GPUs, leases, heartbeats and earnings of GPU nodes.")
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(datasource_variable())
        .with_variable(label_variable("Hostname", "Hostname", "DCGM_FI_DEV_GPU_TEMP", "Machine"))
        .with_variable(
            label_variable("lease", "lease_id", 'gridlease_gpu_lease{lease_id!=""}', "Lease")
        )
        .with_row(dashboard.Row("Machines"))
        .with_panel(
            stat_panel(
                "Machines",
                "GPU node agents reporting.",
                Query("count(gridlease_node_heartbeat_age_blocks)"),
            )
        )
        .with_panel(
            stat_panel(
                "GPUs offered",
                "GPUs the machines offer (usable boards with a chain slot).",
                Query('sum(gridlease_node_gpus{state="offered"})'),
            )
        )
        .with_panel(
            stat_panel(
                "GPUs leased",
                "GPUs a lease holds now.",
                Query(f"sum(gridlease_gpu_lease{{{HOST}}})"),
            )
        )
        .with_panel(
            stat_panel(
                "Earnings in range",
                "Pay claimed for the provider in the dashboard's time range, in tokens.",
                Query(
                    "sum(increase(gridlease_node_earnings_claimed_units_total[$__range])) "
                    f"/ {TOKEN}"
                ),
                unit="none",
            )
        )
        .with_panel(
            timeseries_panel(
                "GPUs by state",
                "Per machine: offered, or why a board is not (lost, absent, mig, other_model, "
                "no_slot).",
                [Query("sum by (instance, state) (gridlease_node_gpus)", "{{instance}} {{state}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Heartbeat age",
                "Blocks since each machine's last heartbeat on chain, against the chain's grace "
                "(pay stops accruing past it).",
                [
                    Query(
                        "max by (instance) (gridlease_node_heartbeat_age_blocks)",
                        "{{instance}} age",
                    ),
                    Query("max(gridlease_node_heartbeat_grace_blocks)", "grace"),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Heartbeats",
                "Heartbeats submitted per machine, by outcome, per minute.",
                [
                    Query(
                        "sum by (instance, outcome) "
                        "(rate(gridlease_node_heartbeats_total[$__rate_interval])) * 60",
                        "{{instance}} {{outcome}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Earnings",
                "Pay claimed for the provider per hour, in tokens.",
                [
                    Query(
                        "sum by (instance) "
                        "(rate(gridlease_node_earnings_claimed_units_total[$__rate_interval])) "
                        f"* 3600 / {TOKEN}",
                        "{{instance}}",
                    )
                ],
            )
        )
        .with_row(dashboard.Row("GPUs"))
        .with_panel(
            timeseries_panel(
                "GPU utilisation",
                "DCGM_FI_DEV_GPU_UTIL per GPU.",
                [Query(f"DCGM_FI_DEV_GPU_UTIL{{{HOST}}}", "{{Hostname}} gpu {{gpu}}")],
                unit="percent",
            )
        )
        .with_panel(
            timeseries_panel(
                "GPU memory used",
                "DCGM_FI_DEV_FB_USED per GPU, and its share of the framebuffer.",
                [Query(f"DCGM_FI_DEV_FB_USED{{{HOST}}}", "{{Hostname}} gpu {{gpu}}")],
                unit="decmbytes",
            )
        )
        .with_panel(
            timeseries_panel(
                "GPU temperature",
                "DCGM_FI_DEV_GPU_TEMP per GPU.",
                [Query(f"DCGM_FI_DEV_GPU_TEMP{{{HOST}}}", "{{Hostname}} gpu {{gpu}}")],
                unit="celsius",
            )
        )
        .with_panel(
            timeseries_panel(
                "GPU power",
                "DCGM_FI_DEV_POWER_USAGE per GPU.",
                [Query(f"DCGM_FI_DEV_POWER_USAGE{{{HOST}}}", "{{Hostname}} gpu {{gpu}}")],
                unit="watt",
            )
        )
        .with_panel(
            timeseries_panel(
                "XID errors",
                "XID errors per GPU and XID in each interval; 13, 31, 43, 45 and 68 are "
                "application faults, the others hardware or driver faults.",
                [
                    Query(
                        "sum by (Hostname, gpu, xid) (increase(gridlease_gpu_xid_errors_total"
                        f"{{{HOST}}}[$__rate_interval]))",
                        "{{Hostname}} gpu {{gpu}} XID {{xid}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Last XID",
                "DCGM_FI_DEV_XID_ERRORS: the last XID each GPU reported (0: none).",
                [
                    Query(
                        f"max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS{{{HOST}}})",
                        "{{Hostname}} gpu {{gpu}}",
                    )
                ],
            )
        )
        .with_row(dashboard.Row("Per lease"))
        .with_panel(
            timeseries_panel(
                "GPUs per lease",
                "GPUs each lease holds.",
                [
                    Query(
                        f'count by (lease_id) (gridlease_gpu_lease{{{HOST}, lease_id=~"$lease"}}'
                        " == 1)",
                        "lease {{lease_id}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "GPU utilisation per lease",
                "Mean utilisation of the GPUs each lease holds.",
                [Query(_per_lease("avg", "DCGM_FI_DEV_GPU_UTIL"), "lease {{lease_id}}")],
                unit="percent",
            )
        )
        .with_panel(
            timeseries_panel(
                "GPU memory per lease",
                "Framebuffer memory used on the GPUs each lease holds.",
                [Query(_per_lease("sum", "DCGM_FI_DEV_FB_USED"), "lease {{lease_id}}")],
                unit="decmbytes",
            )
        )
        .with_panel(
            timeseries_panel(
                "GPU power per lease",
                "Power drawn by the GPUs each lease holds.",
                [Query(_per_lease("sum", "DCGM_FI_DEV_POWER_USAGE"), "lease {{lease_id}}")],
                unit="watt",
            )
        )
        .with_row(dashboard.Row("Agent"))
        .with_panel(
            timeseries_panel(
                "Leases and workloads",
                "Per machine: its leases on chain by state, and the workloads the runtime "
                "reports by phase.",
                [
                    Query(
                        "sum by (instance, state) (gridlease_node_leases)",
                        "{{instance}} lease {{state}}",
                    ),
                    Query(
                        "sum by (instance, phase) (gridlease_node_workloads)",
                        "{{instance}} workload {{phase}}",
                    ),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Reconcile duration p99 and workload submissions",
                "Time one reconcile run takes, and SubmitWorkload calls per minute by outcome.",
                [
                    Query(
                        "histogram_quantile(0.99, sum by (le, instance) "
                        "(rate(gridlease_node_reconcile_seconds_bucket[$__rate_interval])))",
                        "{{instance}} reconcile p99 (s)",
                    ),
                    Query(
                        "sum by (outcome) "
                        "(rate(gridlease_node_submissions_total[$__rate_interval])) * 60",
                        "submit {{outcome}}/min",
                    ),
                ],
            )
        )
    )
