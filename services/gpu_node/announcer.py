"""Announces the machine's signed offer to the seeds, and again before the seeds' TTL drops it.

Sequences come from the node's store (clock milliseconds, never below the last one handed out),
so a restarted node never replays a sequence the seeds already hold.

What the offer says is read again for every announcement: the price from the chain (the
provider changes it with set_price while the node runs; leases pay the chain's price), and the
GPUs from the node's current GPU set, counting only slots the chain also has (a GPU the chain
does not know cannot be leased; one the node lost must not be sold).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from substrateinterface import Keypair

from services.common import MachineResources, build_offer, get_logger, now_ms, sign_offer
from services.common.grpc_gen.gridlease.v1 import offer_pb2
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.gpus import GpuSet
from services.gpu_node.store import NodeStore
from services.seed.client import SeedClient

__all__ = ["Announcer", "OfferTerms", "offer_for"]

log = get_logger(__name__)


@dataclass(frozen=True)
class OfferTerms:
    """What the offer says besides the hardware. `gpus_on_chain` is the machine's slots the chain
    can lease: its gpus_present less the slots reported unhealthy (None: offer every usable GPU)."""

    provider: str
    endpoint: str
    price_per_gpu_block: int
    region: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    gpus_on_chain: int | None = None
    # The host's CPU and memory that leases share (the API refuses specs beyond a lease's share).
    host: MachineResources | None = None


def offer_for(
    keypair: Keypair, gpus: GpuSet, terms: OfferTerms, sequence: int
) -> offer_pb2.SignedOffer:
    offered = gpus.mask if terms.gpus_on_chain is None else gpus.mask & terms.gpus_on_chain
    offer = build_offer(
        keypair,
        provider=terms.provider,
        endpoint=terms.endpoint,
        gpu_model=gpus.model,
        gpu_count=offered.bit_count(),
        memory_mib=gpus.memory_mib,
        compute_capability=gpus.compute_capability or "",
        price_per_gpu_per_block=terms.price_per_gpu_block,
        region=terms.region,
        labels=terms.labels,
        sequence=sequence,
        host=terms.host,
    )
    return sign_offer(offer, keypair)


class Announcer:
    def __init__(
        self,
        seeds: SeedClient,
        keypair: Keypair,
        gpus: Callable[[], GpuSet],
        terms: Callable[[], OfferTerms],
        store: NodeStore,
        metrics: AgentMetrics | None = None,
    ) -> None:
        """`terms` may block (it reads the chain): it runs in a worker thread."""
        self._seeds = seeds
        self._keypair = keypair
        self._gpus = gpus
        self._terms = terms
        self._store = store
        self._metrics = metrics

    async def announce_once(self) -> int:
        """Sign and announce a fresh offer; returns its sequence."""
        terms = await asyncio.to_thread(self._terms)
        sequence = self._store.next_sequence(now_ms())
        signed = offer_for(self._keypair, self._gpus(), terms, sequence)
        try:
            await self._seeds.announce(signed)
        except Exception:
            if self._metrics is not None:
                self._metrics.announcements.labels("failed").inc()
            raise
        if self._metrics is not None:
            self._metrics.announcements.labels("sent").inc()
        log.info("node.announced", extra={"sequence": sequence})
        return sequence
