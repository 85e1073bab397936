"""The workload spec a customer hands the node, and the LeaseWorkload the node derives from it.

The spec model and its rules are services.common's WorkloadSpec, the same the customer API
applies before it lets the chain hold escrow, so a spec the API accepted is one this node runs.
Here: decoding the bytes of a SubmitWorkload (size, UTF-8 JSON object), validating them into a
WorkloadSpec with the hash the chain must show, and turning a spec into a LeaseWorkload.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from services.common import (
    MAX_SPEC_BYTES,
    EncodingError,
    MalformedMessage,
    WorkloadSpec,
    spec_hash,
)
from services.gpu_node.hardware.model import Inventory
from services.gpu_node.runtime.base import LeaseWorkload, WorkloadInvalid

__all__ = ["MAX_SPEC_BYTES", "ParsedSpec", "WorkloadSpec", "parse_spec", "to_workload"]


class ParsedSpec(BaseModel):
    """A spec that decoded and validated, with the hash the chain must show for it."""

    model_config = ConfigDict(frozen=True)

    spec: WorkloadSpec
    document: dict[str, Any]
    digest: bytes


def parse_spec(raw: bytes) -> ParsedSpec:
    """Decode and validate spec bytes; MalformedMessage names what is wrong (reason
    spec_too_large, spec_not_json, spec_not_object or spec_invalid)."""
    if len(raw) > MAX_SPEC_BYTES:
        raise MalformedMessage(f"spec is over {MAX_SPEC_BYTES} bytes", reason="spec_too_large")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"spec is not UTF-8 JSON: {exc}", reason="spec_not_json") from exc
    if not isinstance(document, dict):
        raise MalformedMessage("spec must be a JSON object", reason="spec_not_object")
    try:
        spec = WorkloadSpec.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise MalformedMessage(f"{where}: {first['msg']}", reason="spec_invalid") from exc
    try:
        digest = spec_hash(document)
    except EncodingError as exc:  # 1000.0: valid JSON, but no canonical form to hash
        raise MalformedMessage(f"spec has no canonical form: {exc}", reason="spec_invalid") from exc
    # The runtime's own checks of what it builds, so nothing accepted here fails there.
    try:
        to_workload(spec, 0, ()).validate()
    except WorkloadInvalid as exc:
        raise MalformedMessage(str(exc), reason="spec_invalid") from exc
    return ParsedSpec(spec=spec, document=document, digest=digest)


def to_workload(
    spec: WorkloadSpec,
    lease_id: int,
    gpu_indexes: Sequence[int],
    inventory: Inventory | None = None,
) -> LeaseWorkload:
    """The desired workload of a lease: the spec on the GPUs the chain assigned to it, with the
    spec's CPU and memory (the defaults where it leaves them out). WorkloadInvalid when a GPU
    index is not in `inventory`."""
    by_index = {gpu.index: gpu.uuid for gpu in inventory.gpus} if inventory else {}
    missing = [i for i in gpu_indexes if i not in by_index]
    if missing:
        raise WorkloadInvalid(f"GPU indexes {missing} are not on this machine")
    uuids = tuple(by_index[i] for i in gpu_indexes)
    return LeaseWorkload(
        lease_id=lease_id,
        gpu_indices=tuple(gpu_indexes),
        gpu_uuids=uuids,
        image=spec.image,
        ssh_public_key=spec.ssh_public_key,
        command=spec.command,
        env=dict(spec.env),
        ports=spec.ports,
        cpu_millicores=spec.cpu,
        memory_mib=spec.memory,
    )
