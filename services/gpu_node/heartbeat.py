"""Heartbeats on chain, by block count: pay accrues only while the machine is fresh
(last heartbeat + HeartbeatGrace >= block), so the node heartbeats well inside that grace."""

from __future__ import annotations

from substrateinterface import Keypair

from services.common import get_logger
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.chain_ops import OperatorChain, ensure_funded

__all__ = ["Heartbeater", "heartbeat_due"]

log = get_logger(__name__)


def heartbeat_due(block: int, last_heartbeat: int, every_blocks: int) -> bool:
    """Due once `every_blocks` passed since the last one (start_lease counts as one too).

    Counting blocks rather than seconds means an idle dev chain, which makes blocks only for
    transactions, is not fed a transaction per tick by the node itself."""
    return block - last_heartbeat >= every_blocks


class Heartbeater:
    def __init__(
        self,
        ops: OperatorChain,
        every_blocks: int,
        metrics: AgentMetrics | None = None,
        *,
        provider_for_funding: Keypair | None = None,
        min_balance: int = 0,
        top_up: int = 0,
    ) -> None:
        self._ops = ops
        self._every = every_blocks
        self._metrics = metrics
        self._provider = provider_for_funding
        self._min_balance = min_balance
        self._top_up = top_up

    def tick(self) -> bool:
        """Heartbeat if due; True when one was sent. Failures are counted and raised."""
        machine = self._ops.machine()
        if machine is None:
            log.warning("node.machine_missing")
            return False
        block = self._ops.chain.block_number()
        if self._metrics is not None:
            self._metrics.heartbeat_age.set(max(block - machine.last_heartbeat, 0))
        if not heartbeat_due(block, machine.last_heartbeat, self._every):
            return False
        try:
            # Fees come from the machine key: keep it funded before it runs dry.
            ensure_funded(self._ops, self._provider, self._min_balance, self._top_up)
            self._ops.heartbeat()
        except Exception:
            if self._metrics is not None:
                self._metrics.heartbeats.labels("failed").inc()
            raise
        if self._metrics is not None:
            self._metrics.heartbeats.labels("sent").inc()
            self._metrics.heartbeat_age.set(0)
        return True
