"""The workload spec a customer hands the node, and the LeaseWorkload the node derives from it.

The spec is a JSON object whose canonical hash (services.common.spec_hash) the chain records at
lease creation. Version 1:

    {"version": 1, "image": "localhost/gridlease-sshd:1", "ssh_public_key": "ssh-ed25519 AAAA...",
     "command": ["sleep", "infinity"], "env": {"MODEL": "llama"}, "ports": [8080],
     "cpu_millicores": 2000, "memory_mib": 8192}

Only `version`, `image` and `ssh_public_key` are required. Unknown keys are refused, so a field
this node does not understand is never silently ignored. GPUs are not in the spec: the chain
decides which GPU indexes the lease holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from services.common import MalformedMessage, spec_hash
from services.gpu_node.hardware.model import Inventory
from services.gpu_node.runtime.base import LeaseWorkload, WorkloadInvalid

__all__ = ["MAX_SPEC_BYTES", "ParsedSpec", "WorkloadSpec", "parse_spec", "to_workload"]

MAX_SPEC_BYTES = 64 * 1024


class WorkloadSpec(BaseModel):
    # Strict scalars: "1000" is not 1000 and 1.5 is not 1, so a spec means one thing only.
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    image: StrictStr = Field(max_length=512)
    ssh_public_key: StrictStr = Field(max_length=16 * 1024)
    command: tuple[StrictStr, ...] = Field(default=(), max_length=256)
    env: dict[StrictStr, StrictStr] = Field(default_factory=dict, max_length=256)
    ports: tuple[StrictInt, ...] = Field(default=(), max_length=32)
    cpu_millicores: StrictInt = 1000
    memory_mib: StrictInt = 1024


class ParsedSpec(BaseModel):
    """A spec that decoded and validated, with the hash the chain must show for it."""

    model_config = ConfigDict(frozen=True)

    spec: WorkloadSpec
    document: dict[str, Any]
    digest: bytes


def parse_spec(raw: bytes) -> ParsedSpec:
    """Decode and validate spec bytes; MalformedMessage names what is wrong."""
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
    digest = spec_hash(document)  # EncodingError (floats) is a MalformedMessage's sibling
    # The runtime's own rules (image reference, key line, env names, ports, minimums), checked
    # now so a spec that could never run is refused at the door.
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
    """The desired workload of a lease: the spec on the GPUs the chain assigned to it."""
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
        cpu_millicores=spec.cpu_millicores,
        memory_mib=spec.memory_mib,
    )
