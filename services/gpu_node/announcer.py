"""Announces the machine's signed offer to the seeds, and again before the seeds' TTL drops it.

Sequences come from the node's store (clock milliseconds, never below the last one handed out),
so a restarted node never replays a sequence the seeds already hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from substrateinterface import Keypair

from services.common import build_offer, get_logger, now_ms, sign_offer
from services.common.grpc_gen.gridlease.v1 import offer_pb2
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.hardware.model import Inventory
from services.gpu_node.store import NodeStore
from services.seed.client import SeedClient

__all__ = ["Announcer", "OfferTerms", "offer_for"]

log = get_logger(__name__)


@dataclass(frozen=True)
class OfferTerms:
    """What the offer says besides the hardware."""

    provider: str
    endpoint: str
    price_per_gpu_block: int
    region: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def offer_for(
    keypair: Keypair, inventory: Inventory, terms: OfferTerms, sequence: int
) -> offer_pb2.SignedOffer:
    first = inventory.gpus[0]
    offer = build_offer(
        keypair,
        provider=terms.provider,
        endpoint=terms.endpoint,
        gpu_model=first.name,
        gpu_count=len(inventory.gpus),
        memory_mib=first.memory_total_bytes // (1024 * 1024),
        compute_capability=first.compute_capability or "",
        price_per_gpu_per_block=terms.price_per_gpu_block,
        region=terms.region,
        labels=terms.labels,
        sequence=sequence,
    )
    return sign_offer(offer, keypair)


class Announcer:
    def __init__(
        self,
        seeds: SeedClient,
        keypair: Keypair,
        inventory: Callable[[], Inventory],
        terms: Callable[[], OfferTerms],
        store: NodeStore,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self._seeds = seeds
        self._keypair = keypair
        self._inventory = inventory
        self._terms = terms
        self._store = store
        self._metrics = metrics

    async def announce_once(self) -> int:
        """Sign and announce a fresh offer; returns its sequence."""
        sequence = self._store.next_sequence(now_ms())
        signed = offer_for(self._keypair, self._inventory(), self._terms(), sequence)
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
