"""The node agent: assembles startup (key, inventory, registration, funding), the NodeService
gRPC server, and the three loops (reconcile, heartbeat, announce), and stops them gracefully.

GPUs: each reconcile run reads NVML again into a GpuSet (gpus.py): which chain slot is which
board, and which boards are not offered and why. The plan moves the machine's GPU set on chain
to the usable slots (update_gpus); admission, the desired workloads, the offer and the metrics
all read the same GpuSet.

Every loop is level-triggered and reads its state again each round, so a node killed at any point
and started again converges: the store keeps accepted specs, the runtime keeps workloads (found by
label), and the chain keeps everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from substrateinterface import Keypair

from services.common import (
    ConfigError,
    MetricsServer,
    add_health,
    configure_logging,
    get_logger,
    keypair_from_secret,
    load_or_create_keypair,
    new_registry,
    new_server,
    set_serving,
    start_metrics_server,
)
from services.common._chain import ChainClient
from services.common.grpc_gen.gridlease.v1 import node_pb2_grpc
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.announcer import Announcer, OfferTerms
from services.gpu_node.chain_ops import (
    OperatorChain,
    ensure_funded,
    ensure_registered,
    gpus_present,
)
from services.gpu_node.desired import DesiredWorkloads, host_resources, tcp_port_free
from services.gpu_node.gpus import (
    GpuSet,
    UnusableReason,
    build_gpu_set,
    choose_model,
    log_changes,
)
from services.gpu_node.hardware.errors import NvmlError
from services.gpu_node.hardware.model import Inventory
from services.gpu_node.hardware.source import open_inventory
from services.gpu_node.hardware.xid import XidWatcher
from services.gpu_node.health import GpuHealth, classify, unreadable
from services.gpu_node.heartbeat import Heartbeater
from services.gpu_node.metrics import GpuCollector, leases_by_gpu
from services.gpu_node.reconcile import Executor, Reconciler
from services.gpu_node.reconcile.observe import Observation, observe
from services.gpu_node.reconcile.plan import ApplyWorkload
from services.gpu_node.runtime.base import WorkloadPhase, WorkloadRuntime
from services.gpu_node.runtime.factory import make_runtime
from services.gpu_node.runtime.podman import PodmanRuntime
from services.gpu_node.service import SERVICE_NAME, NodeServicer
from services.gpu_node.settings import NodeSettings
from services.gpu_node.store import NodeStore
from services.gpu_node.telemetry import TelemetrySampler
from services.seed.client import SeedClient

__all__ = ["NodeAgent", "serve"]

log = get_logger(__name__)
# After a run that brought a workload up, run again soon: start_lease is the next step.
_FOLLOW_UP_S = 0.2


@dataclass
class _Started:
    server: grpc.aio.Server
    port: int
    metrics_server: MetricsServer | None
    tasks: list[asyncio.Task[None]]
    seeds: SeedClient | None


class NodeAgent:
    def __init__(self, settings: NodeSettings, runtime: WorkloadRuntime | None = None) -> None:
        self.settings = settings
        self._runtime = runtime
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._started: _Started | None = None
        self.registry = new_registry()
        self.metrics = AgentMetrics(self.registry)
        self._gpu_set: GpuSet | None = None

    # -- startup -------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Blocking startup: keys, NVML, chain connections, registration, runtime."""
        s = self.settings
        self.store = NodeStore(s.db_path)
        self.keypair = load_or_create_keypair(s.key_path)
        secret = s.provider_keypair_secret()
        self.provider: Keypair | None = keypair_from_secret(secret) if secret else None
        self.read_inventory: Callable[[], Inventory] = open_inventory(s.sim_spec())
        # Reads for RPC handlers on one connection, operator transactions on another, so a
        # transaction waiting for its block never delays an admission check.
        on_error = self.metrics.chain_rpc_error
        self.reader = ChainClient(s.chain_url, on_error=on_error)
        # Operator extrinsics are decided on the best block and valid only on its chain: one
        # about lease N never lands on another fork, where N may be someone else's lease.
        self.ops = OperatorChain(
            ChainClient(s.chain_url, on_error=on_error, era_anchor="best"), self.keypair
        )
        self.machine_id = self.ops.machine_id
        existing = self.ops.machine()
        self.max_slots = int(self.reader.constant("MaxGpusPerMachine"))
        inventory = self.read_inventory()
        self.gpu_model = choose_model(
            inventory, s.gpu_model, existing.gpu_model if existing else None
        )
        gpus = self.refresh_gpus(inventory)
        if not gpus.count:
            found = ", ".join(f"{u.reason.value} {u.uuid or u.index}" for u in gpus.unusable)
            raise ConfigError(f"no usable {self.gpu_model} GPU on this machine ({found})")
        ensure_funded(self.ops, self.provider, s.min_operator_balance, s.operator_top_up)
        self.registration = ensure_registered(self.ops, self.provider, gpus, s.price_per_gpu_block)
        self.start_window = int(self.reader.constant("StartWindow"))
        self.metrics.heartbeat_grace.set(int(self.reader.constant("HeartbeatGrace")))
        if self._runtime is None:
            self._runtime = make_runtime(
                s.runtime,
                simulated=gpus.simulated,
                publish_host=s.publish_host,
                node=self.machine_id.hex(),
                kube_context=s.kube_context,
                kube_node_name=s.kube_node_name,
                kube_runtime_class=s.kube_runtime_class,
            )
        self.runtime: WorkloadRuntime = self._runtime
        self.host = s.machine_resources(host_resources())
        workloads = DesiredWorkloads(
            store=self.store,
            gpus=lambda: self.gpu_set,
            machine=self.host,
            # Kubernetes: the API server allocates node ports (and the executor records them).
            port_range=s.port_range if s.runtime == "podman" else None,
            # Podman publishes on this host: skip ports another process holds.
            port_free=tcp_port_free(s.publish_host) if s.runtime == "podman" else lambda _: True,
            ports_published=(
                self._runtime.published_ports
                if isinstance(self._runtime, PodmanRuntime)
                else frozenset
            ),
        )
        self.executor = Executor(
            self.runtime,
            self.ops,
            self.store,
            workloads,
            self.metrics,
            current_block=self.reader.block_number,
        )
        self.reconciler = Reconciler(self._observe, self.executor, self.metrics)
        self.heartbeater = Heartbeater(
            self.ops,
            s.heartbeat_every_blocks,
            self.metrics,
            health=self.gpu_health,
            provider_for_funding=self.provider,
            min_balance=s.min_operator_balance,
            top_up=s.operator_top_up,
        )
        self.xids = XidWatcher()
        self.xids.start()
        self.registry.register(
            GpuCollector(
                self.read_inventory,
                lambda: leases_by_gpu(self.reconciler.last_workloads),
                gpu_set=lambda: self._gpu_set,
                xids=lambda: self.xids.snapshot() if self.xids.watching() else None,
                health=lambda: self.heartbeater.last_health,
            )
        )
        # Lease telemetry (GetLeaseGpus): its own sampling loop, so renters see a history at
        # a steady pace whatever the reconcile loop does; health as the last heartbeat check
        # found it (what the chain was told).
        self.telemetry = TelemetrySampler(
            self.read_inventory,
            history_limit=s.telemetry_history,
            interval_s=s.telemetry_interval_s,
            xids=lambda: self.xids.snapshot() if self.xids.watching() else None,
            reported=lambda: self.heartbeater.last_health,
        )
        self.telemetry.sample_once(inventory)

    @property
    def gpu_set(self) -> GpuSet:
        """The GPU set of the last NVML read (startup's, then each reconcile run's)."""
        assert self._gpu_set is not None, "read in _prepare"
        return self._gpu_set

    def refresh_gpus(self, inventory: Inventory | None = None) -> GpuSet:
        """Read NVML again (or take `inventory`) into a GpuSet, log what changed and count
        GPUs by state."""
        gpus = build_gpu_set(
            inventory or self.read_inventory(), self.store, self.gpu_model, self.max_slots
        )
        log_changes(self._gpu_set, gpus)
        counts = {"offered": gpus.count}
        for item in gpus.unusable:
            counts[item.reason.value] = counts.get(item.reason.value, 0) + 1
        known = ("offered", *(reason.value for reason in UnusableReason))
        self.metrics.set_counts(self.metrics.gpus, counts, known)
        self._gpu_set = gpus
        return gpus

    def gpu_health(self, registered: int) -> tuple[GpuHealth, ...]:
        """Health of every slot (health.py), from NVML read now and the XIDs seen so far;
        `registered` is the chain's gpus_present. Reading NVML here rather than taking the
        reconcile's GpuSet lets a lost board or an ECC error reach the chain within one
        heartbeat check; the GpuSet built is not kept (the reconcile keeps its own)."""
        xids = self.xids.snapshot() if self.xids.watching() else None
        try:
            inventory = self.read_inventory()
        except NvmlError as exc:
            # The machine is up but none of its GPUs can be vouched for.
            return unreadable(registered | self.gpu_set.mask, str(exc))
        gpus = build_gpu_set(inventory, self.store, self.gpu_model, self.max_slots)
        return classify(gpus, xids, registered)

    def _observe(self) -> Observation:
        before = self.gpu_set.mask
        gpus = self.refresh_gpus()
        return observe(
            self.reader,
            self.machine_id,
            self.store,
            self.runtime,
            start_window=self.start_window,
            claim_every=self.settings.claim_every_blocks,
            gpus_usable=gpus.mask,
            gpus_usable_before=before,
        )

    def _offer_terms(self) -> OfferTerms:
        # Read at every announcement: the provider changes the price with set_price while the
        # node runs, and leases pay the chain's price, so the offer follows the chain.
        machine = self.reader.machine(self.machine_id) or self.registration.machine
        return OfferTerms(
            provider=machine.owner,
            endpoint=self.settings.endpoint,
            price_per_gpu_block=machine.price_per_gpu_block,
            region=self.settings.region,
            labels=dict(self.settings.labels),
            # The chain gives new leases no slot reported unhealthy: neither does the offer.
            gpus_on_chain=gpus_present(machine) & ~machine.unhealthy_gpus,
            host=self.host,
        )

    async def start(self) -> int:
        """Start serving; returns the bound gRPC port."""
        await asyncio.to_thread(self._prepare)
        s = self.settings
        server = new_server(4 * 1024 * 1024)
        servicer = NodeServicer(
            chain=self.reader,
            machine_id=self.machine_id,
            start_window=self.start_window,
            store=self.store,
            runtime=self.runtime,
            public_host=s.public_host,
            metrics=self.metrics,
            on_accepted=lambda lease_id: self._wake.set(),
            gpus_usable=lambda: self.gpu_set.mask,
            telemetry=self.telemetry,
        )
        node_pb2_grpc.add_NodeServiceServicer_to_server(servicer, server)
        health = add_health(server)
        port = server.add_insecure_port(s.listen)
        await server.start()
        metrics_server = (
            start_metrics_server(self.registry, s.metrics_port, s.metrics_host)
            if s.metrics_port is not None
            else None
        )
        seeds = SeedClient(s.seeds) if s.seeds else None
        tasks = [
            asyncio.create_task(self._reconcile_loop(), name="reconcile"),
            asyncio.create_task(
                self._every(s.heartbeat_check_s, self._heartbeat), name="heartbeat"
            ),
            asyncio.create_task(
                self._every(
                    s.telemetry_interval_s, lambda: asyncio.to_thread(self.telemetry.sample_once)
                ),
                name="telemetry",
            ),
        ]
        if seeds is not None:
            announcer = Announcer(
                seeds,
                self.keypair,
                lambda: self.gpu_set,
                self._offer_terms,
                self.store,
                self.metrics,
            )
            tasks.append(
                asyncio.create_task(
                    self._every(s.announce_interval_s, announcer.announce_once), name="announce"
                )
            )
        else:
            log.warning("node.no_seeds", extra={"detail": "offer not announced"})
        self._started = _Started(server, port, metrics_server, tasks, seeds)
        await set_serving(health, SERVICE_NAME, up=True)
        log.info(
            "node.started",
            extra={
                "port": port,
                "machine_id": "0x" + self.machine_id.hex(),
                "operator": self.keypair.ss58_address,
            },
        )
        return port

    # -- loops ---------------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        await asyncio.to_thread(self.heartbeater.tick)

    async def _every(self, period_s: float, step: Callable[[], Awaitable[object]]) -> None:
        while not self._stopping.is_set():
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("node.loop_error", extra={"error": f"{type(exc).__name__}: {exc}"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), period_s)

    async def _reconcile_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            delay = self.settings.reconcile_interval_s
            try:
                outcomes = await asyncio.to_thread(self.reconciler.run_once)
                # Soon again after a workload came up (to start its lease on chain) or while one
                # is still starting (waiting for sshd), instead of a whole interval later.
                applied = any(
                    isinstance(o.action, ApplyWorkload)
                    and o.detail in (WorkloadPhase.RUNNING.value, WorkloadPhase.PENDING.value)
                    for o in outcomes
                )
                starting = any(
                    w.phase is WorkloadPhase.PENDING and not w.blocked
                    for w in self.reconciler.last_workloads
                )
                if applied or starting:
                    delay = _FOLLOW_UP_S
            except Exception as exc:  # noqa: BLE001 - counted in run_once; next round retries
                log.warning("node.reconcile_error", extra={"error": f"{type(exc).__name__}: {exc}"})
            wake = asyncio.ensure_future(self._wake.wait())
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({wake, stop}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()
            stop.cancel()

    # -- shutdown ------------------------------------------------------------------------------
    async def stop(self) -> None:
        self._stopping.set()
        started, self._started = self._started, None
        if started is None:
            return
        await started.server.stop(self.settings.grace_s)
        for task in started.tasks:
            task.cancel()
        await asyncio.gather(*started.tasks, return_exceptions=True)
        if started.seeds is not None:
            await started.seeds.close()
        if started.metrics_server is not None:
            started.metrics_server.stop()
        self.xids.stop()
        self.reader.close()
        self.ops.chain.close()
        self.store.close()


async def serve(settings: NodeSettings) -> None:
    """Run a node until SIGINT/SIGTERM, then stop gracefully. Workloads keep running: they
    belong to leases, not to this process, and a restarted node picks them up by label."""
    configure_logging("gpu-node", settings.log_level)
    agent = NodeAgent(settings)
    await agent.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await agent.stop()
