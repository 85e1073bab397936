"""Everything a running API shares between requests, built once at startup (lifespan) and
handed to routes through api.deps."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from services.customer_api.chain import ChainGateway
from services.customer_api.core.config import Settings
from services.customer_api.core.db import make_engine
from services.customer_api.core.security import Custody
from services.customer_api.indexer import Indexer
from services.customer_api.metrics import ApiMetrics, LeaseStateCollector
from services.customer_api.node_client import NodeClient
from services.customer_api.offers.index import OfferIndex
from services.customer_api.offers.search import OfferSearch
from services.customer_api.offers.watcher import OfferWatcher
from services.seed.client import SeedClient

__all__ = ["Runtime"]


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    chain: ChainGateway
    custody: Custody
    index: OfferIndex
    search: OfferSearch
    nodes: NodeClient
    indexer: Indexer
    metrics: ApiMetrics
    seeds: SeedClient
    watcher: OfferWatcher
    indexer_chain: ChainGateway

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        nodes: NodeClient | None = None,
        engine: Engine | None = None,
    ) -> Runtime:
        """Must run inside the event loop that serves requests (the seed client binds to it)."""
        engine = engine or make_engine(settings.database_url)
        metrics = ApiMetrics.create()
        metrics.registry.register(LeaseStateCollector(engine))
        timeout_s, submit_timeout_s = settings.chain_timeout_s, settings.chain_submit_timeout_s
        # Signer locks in the database: replicas on it never sign with one nonce.
        chain = ChainGateway(
            settings.chain_url,
            writers=settings.chain_writers,
            readers=settings.chain_writers,
            engine=engine,
            timeout_s=timeout_s,
            submit_timeout_s=submit_timeout_s,
            on_error=metrics.chain_rpc_error,
        )
        # The indexer has its own connection so it never waits behind calls or searches.
        indexer_chain = ChainGateway(
            settings.chain_url,
            writers=1,
            readers=1,
            engine=engine,
            timeout_s=timeout_s,
            submit_timeout_s=submit_timeout_s,
            on_error=metrics.chain_rpc_error,
        )
        index = OfferIndex()
        seeds = SeedClient(settings.seed_endpoints, timeout_s=settings.seed_timeout_s)
        search = OfferSearch(index, chain.machines, ttl_s=settings.chain_state_ttl_s)
        return cls(
            settings=settings,
            engine=engine,
            chain=chain,
            custody=Custody(settings.server_secret.get_secret_value()),
            index=index,
            search=search,
            nodes=nodes or NodeClient(timeout_s=settings.node_timeout_s),
            indexer=Indexer(
                engine,
                indexer_chain.reader,
                start_block=settings.indexer_start_block,
                on_block=metrics.indexed,
                on_head=metrics.saw_finalized,
                on_best=metrics.saw_best,
                on_payment=metrics.paid,
            ),
            metrics=metrics,
            seeds=seeds,
            # The watcher also runs the search's background chain checks of new offers.
            watcher=OfferWatcher(
                seeds,
                index,
                retry_s=settings.offers_retry_s,
                verify=search.verify_loop,
                registry=metrics.registry,
            ),
            indexer_chain=indexer_chain,
        )

    async def close(self) -> None:
        await self.seeds.close()
        self.nodes.close()
        self.chain.close()
        self.indexer_chain.close()
        self.engine.dispose()
