"""Machines for API tests: registered on the real dev chain with a real machine key, and their
signed offers announced to a real seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from substrateinterface import Keypair

from services.common import SS58_FORMAT, TOKEN_UNIT, machine_id_for, new_keypair
from services.common._chain import ChainClient
from services.common.grpc_gen.gridlease.v1 import seed_pb2, seed_pb2_grpc
from tests.seed.harness import make_offer

UNIT = TOKEN_UNIT  # re-exported for tests that import it from here
GPU_MODEL = "NVIDIA H100 80GB HBM3"


@dataclass
class OfferedMachine:
    key: Keypair
    provider: Keypair
    endpoint: str
    gpus: int
    price: int
    sequence: int = 0

    @property
    def machine_id(self) -> bytes:
        return machine_id_for(bytes(self.key.public_key))

    @property
    def hex_id(self) -> str:
        return "0x" + self.machine_id.hex()

    def announce(self, seed_endpoint: str, **fields: Any) -> None:
        """Announce (or re-announce with a newer sequence) this machine's offer."""
        self.sequence += 1
        defaults: dict[str, Any] = {
            "provider": self.provider.ss58_address,
            "endpoint": self.endpoint,
            "gpu_count": self.gpus,
            "price_per_gpu_per_block": self.price,
            "gpu_model": GPU_MODEL,
        }
        defaults.update(fields)
        signed, _ = make_offer(self.key, sequence=self.sequence, **defaults)
        with grpc.insecure_channel(seed_endpoint) as channel:
            seed_pb2_grpc.SeedServiceStub(channel).Announce(
                seed_pb2.AnnounceRequest(signed_offer=signed), timeout=10
            )


def register_machine(
    chain: ChainClient,
    *,
    endpoint: str,
    gpus: int = 4,
    price: int = 1_000_000,
    provider: str = "//Ferdie",
) -> OfferedMachine:
    """A machine with a fresh key, registered by provider (the operator is the machine key,
    funded for its own fees)."""
    owner = Keypair.create_from_uri(provider, ss58_format=SS58_FORMAT)
    key, _ = new_keypair()
    machine = OfferedMachine(key=key, provider=owner, endpoint=endpoint, gpus=gpus, price=price)
    chain.gpu_rental(
        owner,
        "register_machine",
        machine_id=machine.hex_id,
        operator=key.ss58_address,
        gpu_model=GPU_MODEL.encode().hex(),
        gpu_count=gpus,
        memory_mib=81559,
        price_per_gpu_block=price,
    )
    chain.transfer(owner, key.ss58_address, 10 * UNIT)
    return machine
