"""SubmitWorkload's checks as a plain function: each refusal's code and reason, with real
sr25519 keys and the lease handed in as the chain client would return it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import grpc
import pytest
from substrateinterface import Keypair

from services.common import GridleaseError, spec_hash, workload_submission_payload
from services.common._chain import ChainLease
from services.gpu_node.admission import SubmissionRequest, admit
from tests.utils.gpu_node_chain import dev_key

from .utils import SAMPLE_SSH_KEY

SPEC = {"version": 1, "image": "localhost/gridlease-sshd:1", "ssh_public_key": SAMPLE_SSH_KEY}
MACHINE = b"\x07" * 32
WINDOW = 120
BOB, CHARLIE = dev_key("Bob"), dev_key("Charlie")
LEASE = ChainLease(
    lease_id=4, machine_id=MACHINE, customer=BOB.ss58_address, gpus=1, gpu_mask=1,
    price_per_gpu_block=1, duration=100, spec_hash=spec_hash(SPEC), state="Pending",
    created_at=50, started_at=0, ends_at=0, accrue_from=0, escrow=100,
)  # fmt: skip


def request(
    signer: Keypair = BOB,
    spec: dict[str, Any] = SPEC,
    customer: str | None = None,
    lease_id: int = 4,
) -> SubmissionRequest:
    signature = signer.sign(workload_submission_payload(lease_id, spec_hash(spec)))
    return SubmissionRequest(
        lease_id, json.dumps(spec).encode(), customer or signer.ss58_address, bytes(signature)
    )


def run(req: SubmissionRequest, lease: ChainLease | None = LEASE, block: int = 60) -> None:
    admit(req, lambda lease_id: (lease, block), MACHINE, WINDOW)


def refusal(
    req: SubmissionRequest, lease: ChainLease | None = LEASE, block: int = 60
) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(GridleaseError) as err:
        run(req, lease, block)
    return err.value.code, err.value.reason


def test_admit_accepts_customer_signed_matching_spec() -> None:
    parsed, lease, block = admit(request(), lambda i: (LEASE, 60), MACHINE, WINDOW)
    assert (parsed.digest, lease.lease_id, block) == (LEASE.spec_hash, 4, 60)


def test_admit_refuses_unknown_lease() -> None:
    assert refusal(request(), lease=None) == (grpc.StatusCode.NOT_FOUND, "lease_not_found")


def test_admit_refuses_lease_of_other_machine() -> None:
    other = dataclasses.replace(LEASE, machine_id=b"\x08" * 32)
    assert refusal(request(), lease=other) == (grpc.StatusCode.NOT_FOUND, "lease_not_found")


def test_admit_refuses_other_customer() -> None:
    assert refusal(request(CHARLIE)) == (grpc.StatusCode.PERMISSION_DENIED, "not_lease_customer")


def test_admit_refuses_signature_by_someone_else() -> None:
    req = request(CHARLIE, customer=BOB.ss58_address)
    assert refusal(req) == (grpc.StatusCode.PERMISSION_DENIED, "bad_signature")


def test_admit_refuses_signature_for_other_lease_id() -> None:
    req = dataclasses.replace(request(lease_id=5), lease_id=4)
    assert refusal(req) == (grpc.StatusCode.PERMISSION_DENIED, "bad_signature")


def test_admit_refuses_spec_not_matching_chain_hash() -> None:
    req = request(spec={**SPEC, "memory_mib": 512})
    assert refusal(req) == (grpc.StatusCode.INVALID_ARGUMENT, "spec_hash_mismatch")


def test_admit_refuses_malformed_customer_and_signature() -> None:
    bad_customer = dataclasses.replace(request(), customer="not-an-address")
    assert refusal(bad_customer) == (grpc.StatusCode.INVALID_ARGUMENT, "bad_customer")
    short = dataclasses.replace(request(), signature=b"\x01" * 10)
    assert refusal(short) == (grpc.StatusCode.INVALID_ARGUMENT, "bad_signature_length")


def test_admit_refuses_pending_lease_past_start_window() -> None:
    run(request(), block=50 + WINDOW)  # the last block of the window still takes it
    assert refusal(request(), block=50 + WINDOW + 1) == (
        grpc.StatusCode.FAILED_PRECONDITION, "lease_not_accepting",
    )  # fmt: skip


def test_admit_refuses_running_lease_at_its_end() -> None:
    running = dataclasses.replace(LEASE, state="Running", started_at=60, ends_at=160)
    run(request(), lease=running, block=159)
    assert refusal(request(), lease=running, block=160) == (
        grpc.StatusCode.FAILED_PRECONDITION, "lease_not_accepting",
    )  # fmt: skip


def test_admit_refuses_lease_holding_a_gpu_slot_this_machine_lacks() -> None:
    # Registered with 8 GPUs, restarted seeing 7: an 8-GPU lease the chain still accepted
    # (slots 0..7) can never run here; so is a 1-GPU lease on the missing slot 7.
    eight = dataclasses.replace(LEASE, gpus=8, gpu_mask=0xFF)
    on_seven = dataclasses.replace(LEASE, gpu_mask=1 << 7)
    seven_present = 0x7F
    for lease in (eight, on_seven):
        with pytest.raises(GridleaseError) as err:
            admit(request(), lambda i, lease=lease: (lease, 60), MACHINE, WINDOW, seven_present)
        assert (err.value.code, err.value.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION, "gpus_missing",
        )  # fmt: skip
        assert "GPU slots [7]" in str(err.value)
    # A lease on slots the machine has is admitted.
    admit(request(), lambda i: (LEASE, 60), MACHINE, WINDOW, seven_present)
