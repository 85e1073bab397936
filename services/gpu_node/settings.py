"""GPU node settings: GRIDLEASE_NODE_* environment variables, or [node] in the config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common import (
    TOKEN_UNIT,
    ConfigError,
    GridleaseSettings,
    MachineResources,
    keypair_from_secret,
)
from services.gpu_node.hardware.errors import SimulationError
from services.gpu_node.hardware.simulation import SimSpec

__all__ = ["NodeSettings"]

UNIT = TOKEN_UNIT


class NodeSettings(GridleaseSettings):
    """Everything one GPU node needs; `gridlease-node init` writes a file with these keys."""

    model_config = SettingsConfigDict(env_prefix="GRIDLEASE_NODE_")
    toml_table = "node"

    chain_url: str = Field(default="ws://127.0.0.1:9944", description="Chain RPC (websocket).")
    seeds: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Seed endpoints host:port, comma-separated in the env."
    )
    provider_secret: str | None = Field(
        default=None,
        description="Provider (owner) secret URI or 0x seed; registers the machine and funds the "
        "machine key. Leave unset to keep the provider key cold (the machine must be registered).",
    )
    provider_secret_file: Path | None = Field(
        default=None, description="File holding the provider secret (preferred over the value)."
    )
    data_dir: Path = Field(default=Path(".gridlease/node"), description="Holds node.db and keys.")
    machine_key_file: Path | None = Field(
        default=None, description="Machine key (created 0600 if missing); default data_dir/."
    )
    price_per_gpu_block: int = Field(default=1_000_000, gt=0, description="Price, smallest unit.")
    region: str = Field(default="", max_length=64, description="Free-form region name.")
    labels: dict[str, str] = Field(default_factory=dict, description="Offer labels.")
    listen: str = Field(default="0.0.0.0:7700", description="host:port NodeService binds.")
    public_host: str = Field(
        default="127.0.0.1", description="Host customers reach (offer endpoint and SSH host)."
    )
    public_port: int | None = Field(
        default=None, description="Port in the offer endpoint; defaults to listen's port."
    )
    publish_host: str = Field(
        default="0.0.0.0", description="Host address lease ports are published on (Podman)."
    )
    runtime: Literal["podman", "kubernetes"] = Field(default="podman")
    kube_context: str | None = Field(default=None, description="kubeconfig context (kubernetes).")
    kube_node_name: str | None = Field(
        default=None,
        max_length=253,
        description="Kubernetes: the name of the node that is this machine; lease pods are pinned "
        "to it. The DaemonSet sets it from spec.nodeName (downward API). Required there.",
    )
    kube_runtime_class: str = Field(
        default="nvidia",
        max_length=253,
        description="Kubernetes: RuntimeClass of lease pods (the NVIDIA container runtime). Empty: "
        "lease pods name no RuntimeClass and run on the node's default runtime, for nodes where "
        "the NVIDIA runtime is the default, and for nodes with SIMULATED GPUs, which have no "
        "NVIDIA runtime (a pod naming a handler the node lacks never starts).",
    )
    simulate_gpus: str | None = Field(
        default=None, description="SIMULATED GPUs, e.g. h100:8; unset reads the NVIDIA driver."
    )
    simulate_gpu_faults: str | None = Field(
        default=None,
        description="Hardware faults of the SIMULATED GPUs by board position, e.g. 'lost=3' or "
        "'absent=7;mig=0,1' (kinds: absent, lost, mig, ecc, remap), and XID errors as "
        "'xid=POSITION:XID,...' (e.g. 'xid=2:79'). Faults can also arrive while the node runs "
        "through the file named by GRIDLEASE_SIM_FAULT_FILE (services/gpu_node/README.md).",
    )
    gpu_model: str | None = Field(
        default=None,
        description="NVML name of the GPU model to offer when the machine has several (e.g. "
        "'NVIDIA A100-SXM4-80GB'); unset: the registered model, else the largest group.",
    )
    lease_port_range: str = Field(
        default="30000-32767",
        pattern=r"^[0-9]{1,5}-[0-9]{1,5}$",
        description="Podman: host ports for lease SSH and exposed ports, FIRST-LAST; each lease "
        "keeps its ports for its life. Kubernetes ignores it: the API server allocates each "
        "lease's NodePorts once (agents sharing a cluster never ask for the same port) and the "
        "node keeps them.",
    )
    host_cpu_millicores: int | None = Field(
        default=None,
        gt=0,
        description="CPU that leases share, in millicores; unset: this host's CPUs. A lease of "
        "g of n GPUs gets at most g/n of it.",
    )
    host_memory_mib: int | None = Field(
        default=None,
        gt=0,
        description="Memory that leases share, in MiB; unset: this host's memory.",
    )
    heartbeat_every_blocks: int = Field(
        default=10, ge=2, description="Heartbeat when this many blocks passed since the last one."
    )
    heartbeat_check_s: float = Field(default=6.0, gt=0, description="How often to check.")
    reconcile_interval_s: float = Field(default=10.0, gt=0, description="Reconcile period.")
    claim_every_blocks: int = Field(
        default=600, ge=0, description="Claim accrued pay of running leases this often; 0: at end."
    )
    announce_interval_s: float = Field(
        default=60.0, gt=0, description="Re-announce period; keep well below the seeds' TTL."
    )
    min_operator_balance: int = Field(default=1 * UNIT, ge=0, description="Top up below this.")
    operator_top_up: int = Field(default=10 * UNIT, ge=0, description="Amount of one top-up.")
    grace_s: float = Field(default=5.0, ge=0, description="Graceful stop: time for RPCs to end.")
    telemetry_interval_s: float = Field(
        default=5.0, gt=0, description="How often to sample GPU readings for lease telemetry."
    )
    telemetry_history: int = Field(
        default=120,
        ge=1,
        le=10_000,
        description="Samples kept per GPU for lease telemetry (the history renters see).",
    )

    @field_validator("seeds", mode="before")
    @classmethod
    def _split_seeds(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("simulate_gpus")
    @classmethod
    def _check_simulation(cls, value: str | None) -> str | None:
        if value:
            try:
                SimSpec.parse(value)  # refuse a typo at startup, not at the first NVML read
            except SimulationError as exc:
                raise ValueError(str(exc)) from exc
        return value or None

    @model_validator(mode="after")
    def _check_faults_and_ports(self) -> NodeSettings:
        if self.simulate_gpu_faults:
            if not self.simulate_gpus:
                raise ValueError("simulate_gpu_faults needs simulate_gpus")
            try:
                SimSpec.parse(self.simulate_gpus, faults=self.simulate_gpu_faults)
            except SimulationError as exc:
                raise ValueError(str(exc)) from exc
        first, last = self.port_range
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"lease_port_range {self.lease_port_range}: need 1 <= FIRST <= LAST")
        return self

    @property
    def port_range(self) -> tuple[int, int]:
        first, last = self.lease_port_range.split("-")
        return int(first), int(last)

    def machine_resources(self, detected: MachineResources) -> MachineResources:
        """What leases share: the configured CPU and memory, else `detected` (this host)."""
        return MachineResources(
            cpu_millicores=self.host_cpu_millicores or detected.cpu_millicores,
            memory_mib=self.host_memory_mib or detected.memory_mib,
        )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "node.db"

    @property
    def key_path(self) -> Path:
        return self.machine_key_file or self.data_dir / "machine.key"

    @property
    def endpoint(self) -> str:
        """host:port announced in the offer."""
        port = self.public_port or int(self.listen.rsplit(":", 1)[1])
        return f"{self.public_host}:{port}"

    def provider_keypair_secret(self) -> str | None:
        if self.provider_secret_file is not None:
            try:
                return self.provider_secret_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read {self.provider_secret_file}: {exc}") from exc
        return self.provider_secret

    def sim_spec(self) -> SimSpec | None:
        if not self.simulate_gpus:
            return None
        return SimSpec.parse(self.simulate_gpus, faults=self.simulate_gpu_faults or "")

    def check_provider(self) -> None:
        """Fail early on an unusable provider secret."""
        secret = self.provider_keypair_secret()
        if secret is not None:
            keypair_from_secret(secret)
