"""Chain-side factories for GPU node tests: customer leases, signed submissions, event counts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from substrateinterface import Keypair

from services.common import SS58_FORMAT, hex0x, spec_hash, workload_submission_payload
from services.common._chain import ChainClient
from services.common.grpc_gen.gridlease.v1 import node_pb2

PRICE = 1_000_000


def dev_key(name: str) -> Keypair:
    return Keypair.create_from_uri(f"//{name}", ss58_format=SS58_FORMAT)


def create_lease(
    chain: ChainClient,
    customer: Keypair,
    machine_id: bytes,
    spec: Mapping[str, Any],
    *,
    gpus: int = 2,
    duration: int = 500,
) -> tuple[int, int]:
    """A lease on machine_id for spec (its hash on chain); returns (lease id, block)."""
    receipt = chain.gpu_rental(
        customer,
        "create_lease",
        machine_id=hex0x(machine_id),
        gpus=gpus,
        duration=duration,
        max_price_per_gpu_block=10 * PRICE,
        spec_hash=hex0x(spec_hash(dict(spec))),
    )
    return int(receipt.one("GpuRental", "LeaseCreated")["lease_id"]), receipt.block_number


def submission(
    lease_id: int,
    spec: Mapping[str, Any],
    signer: Keypair,
    *,
    customer: str | None = None,
    signed_spec: Mapping[str, Any] | None = None,
) -> node_pb2.SubmitWorkloadRequest:
    """A SubmitWorkloadRequest; `customer` and `signed_spec` let a test break one part."""
    digest = spec_hash(dict(signed_spec if signed_spec is not None else spec))
    signature = signer.sign(workload_submission_payload(lease_id, digest))
    return node_pb2.SubmitWorkloadRequest(
        lease_id=lease_id,
        spec=json.dumps(dict(spec)).encode(),
        customer=customer or signer.ss58_address,
        signature=bytes(signature),
    )


def count_events(chain: ChainClient, name: str, lease_id: int, first_block: int) -> int:
    """GpuRental.<name> events of lease_id from first_block to the best block."""
    total = 0
    for number in range(first_block, chain.block_number() + 1):
        block_hash = chain.block_hash(number)
        if block_hash is None:
            continue
        for event in chain.events(block_hash):
            if (
                event.module == "GpuRental"
                and event.name == name
                and event.attributes.get("lease_id") == lease_id
            ):
                total += 1
    return total
