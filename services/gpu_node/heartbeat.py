"""Heartbeats on chain, by block count: pay accrues only while the machine is fresh
(last heartbeat + HeartbeatGrace >= block), so the node heartbeats well inside that grace.

Each heartbeat also carries the machine's GPU health: `unhealthy_gpus`, bit i set when slot i
is unhealthy (health.py). A running lease holding an unhealthy slot stops accruing at that
heartbeat's block and resumes at the heartbeat that reports it healthy, so a change of health
is sent at the next check, not when the next heartbeat falls due.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from substrateinterface import Keypair

from services.common import get_logger
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.chain_ops import OperatorChain, ensure_funded, gpus_present
from services.gpu_node.health import GpuHealth, unhealthy_mask

__all__ = ["Heartbeater", "heartbeat_due"]

log = get_logger(__name__)


def heartbeat_due(block: int, last_heartbeat: int, every_blocks: int) -> bool:
    """Due once `every_blocks` passed since the last one (start_lease counts as one too).

    Counting blocks rather than seconds means an idle dev chain, which makes blocks only for
    transactions, is not fed a transaction per tick by the node itself."""
    return block - last_heartbeat >= every_blocks


class Heartbeater:
    """`health(registered)` gives the health of every slot, `registered` being the chain's
    gpus_present mask (None: every GPU is reported healthy). `last_health` is what the last
    check computed (None before it), for the metrics."""

    def __init__(
        self,
        ops: OperatorChain,
        every_blocks: int,
        metrics: AgentMetrics | None = None,
        *,
        health: Callable[[int], Sequence[GpuHealth]] | None = None,
        provider_for_funding: Keypair | None = None,
        min_balance: int = 0,
        top_up: int = 0,
    ) -> None:
        self._ops = ops
        self._every = every_blocks
        self._metrics = metrics
        self._health = health
        self._provider = provider_for_funding
        self._min_balance = min_balance
        self._top_up = top_up
        self.last_health: tuple[GpuHealth, ...] | None = None

    def tick(self) -> bool:
        """Heartbeat if due or if GPU health differs from the chain's; True when one was sent.
        Failures are counted and raised."""
        machine = self._ops.machine()
        if machine is None:
            log.warning("node.machine_missing")
            return False
        block = self._ops.chain.block_number()
        if self._metrics is not None:
            self._metrics.heartbeat_age.set(max(block - machine.last_heartbeat, 0))
        present = gpus_present(machine)
        health = () if self._health is None else tuple(self._health(present))
        self._log_changes(health)
        self.last_health = health
        # The chain knows only its own slots; a board the node found but has not yet added
        # with update_gpus has nothing on chain to be unhealthy.
        unhealthy = unhealthy_mask(health) & present
        changed = unhealthy != machine.unhealthy_gpus
        if not changed and not heartbeat_due(block, machine.last_heartbeat, self._every):
            return False
        try:
            # Fees come from the machine key: keep it funded before it runs dry.
            ensure_funded(self._ops, self._provider, self._min_balance, self._top_up)
            self._ops.heartbeat(unhealthy_gpus=unhealthy)
        except Exception:
            if self._metrics is not None:
                self._metrics.heartbeats.labels("failed").inc()
            raise
        if changed:
            log.info(
                "node.gpu_health_sent",
                extra={"unhealthy_gpus": hex(unhealthy), "was": hex(machine.unhealthy_gpus)},
            )
        if self._metrics is not None:
            self._metrics.heartbeats.labels("sent").inc()
            self._metrics.heartbeat_age.set(0)
        return True

    def _log_changes(self, health: Sequence[GpuHealth]) -> None:
        """Log each slot whose health changed since the last check (every unhealthy one at
        the first)."""
        before = {item.slot: item for item in self.last_health or ()}
        for item in health:
            old = before.get(item.slot)
            if old is not None and (old.reason, old.detail) == (item.reason, item.detail):
                continue
            if not item.healthy:
                log.warning(
                    "node.gpu_unhealthy",
                    extra={
                        "slot": item.slot,
                        "reason": item.reason.value if item.reason else "",
                        "index": item.index,
                        "uuid": item.uuid,
                        "detail": item.detail,
                    },
                )
            elif old is not None:
                log.info("node.gpu_healthy", extra={"slot": item.slot, "uuid": item.uuid})
