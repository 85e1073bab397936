"""The machine key's calls on chain: registration, funding, heartbeats and lease calls.

All operator transactions go through one ChainClient, whose lock serialises them, so two threads
of the node never race for the same account nonce.
"""

from __future__ import annotations

from dataclasses import dataclass

from substrateinterface import Keypair

from services.common import ConfigError, get_logger, hex0x, machine_id_for
from services.common._chain import ChainClient, ChainLease, ChainMachine
from services.gpu_node.gpus import GpuSet

__all__ = [
    "OperatorChain",
    "Registration",
    "ensure_funded",
    "ensure_registered",
    "gpus_present",
]

log = get_logger(__name__)
PALLET = "GpuRental"


def gpus_present(machine: ChainMachine) -> int:
    """The machine's GPU slots on chain as a bit mask (a runtime from before the field had the
    first gpu_count slots)."""
    return machine.gpus_present or (1 << machine.gpu_count) - 1


class OperatorChain:
    """Lease calls signed by the machine key (executor.LeaseOps), plus reads they need."""

    def __init__(self, chain: ChainClient, operator: Keypair) -> None:
        self.chain = chain
        self.operator = operator
        self.machine_id = machine_id_for(bytes(operator.public_key))

    def lease(self, lease_id: int) -> ChainLease | None:
        # The best block, not the finalized one: our own last transaction must be visible.
        return self.chain.lease(lease_id)

    def start_lease(self, lease_id: int) -> None:
        self.chain.gpu_rental(self.operator, "start_lease", lease_id=lease_id)

    def claim_payment(self, lease_id: int) -> int:
        receipt = self.chain.gpu_rental(self.operator, "claim_payment", lease_id=lease_id)
        return sum(int(e["paid"]) for e in receipt.find(PALLET, "PaymentClaimed"))

    def cancel_lease(self, lease_id: int) -> None:
        self.chain.gpu_rental(self.operator, "cancel_lease", lease_id=lease_id)

    def heartbeat(self, unhealthy_gpus: int = 0) -> int:
        """Submits a heartbeat reporting `unhealthy_gpus` (bit i = GPU slot i unhealthy; the
        chain stops pay for leases holding one); returns its block number."""
        receipt = self.chain.gpu_rental(
            self.operator,
            "heartbeat",
            machine_id=hex0x(self.machine_id),
            unhealthy_gpus=unhealthy_gpus,
        )
        return receipt.block_number

    def machine(self) -> ChainMachine | None:
        return self.chain.machine(self.machine_id)

    def update_gpus(self, gpus_present: int) -> int:
        """Sets the machine's GPU slots on chain (bit i = slot i); returns the new bond.

        The chain ends leases holding a removed slot (GpusRemoved) and moves bond to or from
        the owner; ExtrinsicFailed names its refusal (InvalidGpuSet, InsufficientBalance, ...).
        """
        receipt = self.chain.gpu_rental(
            self.operator,
            "update_gpus",
            machine_id=hex0x(self.machine_id),
            gpus_present=gpus_present,
        )
        changed = receipt.find(PALLET, "MachineGpusChanged")
        log.info(
            "node.gpus_updated",
            extra={"gpus_present": hex(gpus_present), "events": len(changed)},
        )
        return int(changed[0]["bond"]) if changed else 0


@dataclass(frozen=True)
class Registration:
    machine: ChainMachine
    registered_now: bool


def ensure_registered(
    ops: OperatorChain, provider: Keypair | None, gpus: GpuSet, price: int
) -> Registration:
    """Register the machine unless the chain already has it (idempotent across restarts).

    A new machine is registered with the usable GPUs of `gpus` (the chain numbers them slots
    0..count-1; the node's GPU reconcile then moves the set to `gpus.mask` if that differs).
    A machine already on chain must name this key as operator; its price is kept (the provider
    changes it with set_price), a difference is only logged.
    """
    existing = ops.machine()
    if existing is not None:
        if existing.operator != ops.operator.ss58_address:
            raise ConfigError(
                f"machine {hex0x(ops.machine_id)} is registered with operator {existing.operator},"
                f" not this machine key {ops.operator.ss58_address}"
            )
        if existing.price_per_gpu_block != price:
            log.warning(
                "node.price_differs",
                extra={"chain_price": existing.price_per_gpu_block, "configured": price},
            )
        return Registration(existing, registered_now=False)
    if provider is None:
        raise ConfigError(
            "the machine is not registered and no provider key is configured to register it"
        )
    if not gpus.count:
        raise ConfigError("no usable GPUs; nothing to register")
    ops.chain.gpu_rental(
        provider,
        "register_machine",
        machine_id=hex0x(ops.machine_id),
        operator=ops.operator.ss58_address,
        gpu_model=gpus.model.encode().hex(),
        gpu_count=gpus.count,
        memory_mib=gpus.memory_mib,
        price_per_gpu_block=price,
    )
    machine = ops.machine()
    if machine is None:  # included but not visible: the node would act on a false belief
        raise ConfigError("registration was included but the machine is not on chain")
    log.info("node.registered", extra={"machine_id": hex0x(ops.machine_id)})
    return Registration(machine, registered_now=True)


def ensure_funded(ops: OperatorChain, provider: Keypair | None, minimum: int, top_up: int) -> bool:
    """Top up the machine key from the provider when it runs low on fees; True if it did."""
    balance = ops.chain.free_balance(ops.operator.ss58_address)
    if balance >= minimum or top_up == 0:
        return False
    if provider is None:
        log.warning("node.operator_low_funds", extra={"balance": balance})
        return False
    ops.chain.transfer(provider, ops.operator.ss58_address, top_up)
    log.info("node.operator_funded", extra={"amount": top_up})
    return True
