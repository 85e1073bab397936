"""Chain and seeds: block heights and finality lag as the customer API sees them, the API's
indexer, chain RPC errors of every service, a chain node's own peers (Substrate's metrics, from
a real node only), and the seeds' offers, sync rounds and announcements."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from deploy.dashboards._panels import (
    Query,
    datasource_variable,
    stat_panel,
    timeseries_panel,
)

__all__ = ["UID", "build"]

UID = "gridlease-chain-seeds"
FINALITY_LAG = (
    'max(gridlease_api_chain_head_block{head="best"}) '
    '- max(gridlease_api_chain_head_block{head="finalized"})'
)


def build() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard("Gridlease / Chain and seeds")
        .uid(UID)
        .tags(["gridlease"])
        .description("Block height, finality, the indexer, chain RPC errors and the seeds.")
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(datasource_variable())
        .with_row(dashboard.Row("Chain"))
        .with_panel(
            stat_panel(
                "Best block",
                "The newest block the API saw.",
                Query('max(gridlease_api_chain_head_block{head="best"})'),
            )
        )
        .with_panel(stat_panel("Finality lag", "Best minus finalized block.", Query(FINALITY_LAG)))
        .with_panel(
            stat_panel(
                "Indexer lag",
                "Finalized blocks the API's indexer has not indexed yet (worst replica).",
                Query("max(gridlease_api_indexer_lag_blocks)"),
            )
        )
        .with_panel(
            stat_panel(
                "Offers held",
                "Offers held by the seed that holds the most.",
                Query("max(gridlease_seed_offers_held)"),
            )
        )
        .with_panel(
            timeseries_panel(
                "Block height",
                "Best and finalized block, as the API sees the chain.",
                [Query("max by (head) (gridlease_api_chain_head_block)", "{{head}}")],
                min_val=None,
            )
        )
        .with_panel(
            timeseries_panel(
                "Finality and indexer lag",
                "Blocks between best and finalized head, and finalized blocks not indexed yet.",
                [
                    Query(FINALITY_LAG, "finality lag"),
                    Query(
                        "max by (instance) (gridlease_api_indexer_lag_blocks)",
                        "indexer lag {{instance}}",
                    ),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Chain RPC errors",
                "Failed chain RPCs per minute, by service and kind (unavailable, error, "
                "unreadable).",
                [
                    Query(
                        "sum by (job, kind) "
                        "(rate(gridlease_chain_rpc_errors_total[$__rate_interval])) * 60",
                        "{{job}} {{kind}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Chain node peers",
                "Peers of each chain node (Substrate's own metrics; a chain node's metrics "
                "port must be scraped).",
                [Query("max by (instance) (substrate_sub_libp2p_peers_count)", "{{instance}}")],
            )
        )
        .with_row(dashboard.Row("Seeds"))
        .with_panel(
            timeseries_panel(
                "Offers held",
                "Offers each seed holds.",
                [Query("max by (instance) (gridlease_seed_offers_held)", "{{instance}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Sync rounds",
                "Anti-entropy rounds per minute, by seed, peer and result (in_sync, pulled, "
                "unreachable, failed).",
                [
                    Query(
                        "sum by (instance, peer, result) "
                        "(rate(gridlease_seed_sync_rounds_total[$__rate_interval])) * 60",
                        "{{instance}} → {{peer}} {{result}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Announcements",
                "Offer announcements per minute, by result.",
                [
                    Query(
                        "sum by (result) "
                        "(rate(gridlease_seed_announcements_total[$__rate_interval])) * 60",
                        "{{result}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Rejected announcements",
                "Announcements refused per minute, by reason; and replicated offers a seed "
                "did not store, by reason.",
                [
                    Query(
                        "sum by (reason) (rate(gridlease_seed_announcements_total{result="
                        '"rejected"}[$__rate_interval])) * 60',
                        "announce {{reason}}",
                    ),
                    Query(
                        "sum by (reason) "
                        "(rate(gridlease_seed_sync_offers_skipped_total[$__rate_interval])) "
                        "* 60 or vector(0)",
                        "sync {{reason}}",
                    ),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Seed RPC latency p99",
                "Time a seed takes to answer, by method.",
                [
                    Query(
                        "histogram_quantile(0.99, sum by (le, method) "
                        "(rate(gridlease_seed_rpc_seconds_bucket[$__rate_interval])))",
                        "{{method}}",
                    )
                ],
                unit="s",
            )
        )
    )
