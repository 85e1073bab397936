"""Podman backend: the arguments it runs with, and a real container answering a real SSH login.

Needs podman, runc and openssh-client (Debian packages); the image is built once with
debootstrap and cached (services/gpu_node/runtime/images.py).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common import spec_hash
from services.gpu_node import labels
from services.gpu_node.desired import DesiredWorkloads, tcp_port_free
from services.gpu_node.runtime.base import WorkloadNotFound, WorkloadPhase, WorkloadStatus
from services.gpu_node.runtime.images import SSHD_IMAGE, ensure_sshd_image
from services.gpu_node.runtime.podman import GpuAttach, PodmanConfig, PodmanRuntime, run_args
from services.gpu_node.runtime.podman_cli import PodmanCli
from services.gpu_node.store import NodeStore
from tests.utils.ssh import ssh, ssh_when_ready

from .utils import HOST, make_gpu_set, make_workload

SIMULATED = PodmanConfig(gpu_attach=GpuAttach.SIMULATED)
# Lease ids far above what tests elsewhere use, so parallel work on this host does not collide.
LEASE_A, LEASE_B = 990_001, 990_002


def test_run_args_drop_capabilities_and_privileges() -> None:
    args = run_args(SIMULATED, make_workload())
    assert "--cap-drop=ALL" in args
    assert [a for a in args if a.startswith("--cap-add")] == [
        "--cap-add=SETUID",
        "--cap-add=SETGID",
        "--cap-add=SYS_CHROOT",
    ]
    assert args[args.index("--security-opt") + 1] == "no-new-privileges"
    flags = {a.split("=", 1)[0] for a in args if a.startswith("-")}
    forbidden = {"--privileged", "--network", "--net", "--pid", "--ipc", "--userns", "--uts"}
    assert not flags & forbidden
    assert not flags & {"--volume", "-v", "--mount"}
    assert {"--memory=2048m", "--memory-swap=2048m", "--cpus=1.5", "--pids-limit=4096"} <= set(args)


def test_run_args_publish_only_on_configured_host() -> None:
    args = run_args(
        PodmanConfig(gpu_attach=GpuAttach.SIMULATED, publish_host="10.1.2.3"), make_workload()
    )
    published = [args[i + 1] for i, a in enumerate(args) if a == "--publish"]
    assert published == ["10.1.2.3::2222", "10.1.2.3::8080", "10.1.2.3::8888"]


def test_run_args_simulated_gpus_pass_uuids_not_devices() -> None:
    w = make_workload()
    args = run_args(SIMULATED, w)
    assert not [a for a in args if a.startswith("--device")]
    assert f"NVIDIA_VISIBLE_DEVICES={','.join(w.gpu_uuids)}" in args
    assert f"{labels.SIMULATED_GPUS}=true" in args
    assert f"{labels.LEASE_ID}=42" in args


def test_run_args_cdi_gpus_attach_devices_by_uuid() -> None:
    # Slots 3 and 5 are boards by UUID: NVML index 3 may be another board once one vanished.
    w = make_workload(gpu_indices=(3, 5), gpu_uuids=("GPU-3333", "GPU-5555"))
    args = run_args(PodmanConfig(gpu_attach=GpuAttach.CDI), w)
    assert [a for a in args if a.startswith("--device")] == [
        "--device=nvidia.com/gpu=GPU-3333",
        "--device=nvidia.com/gpu=GPU-5555",
    ]
    assert not [a for a in args if a.startswith("NVIDIA_VISIBLE_DEVICES")]
    assert f"{labels.SIMULATED_GPUS}=true" not in args


def test_run_args_image_then_command_last() -> None:
    args = run_args(SIMULATED, make_workload())
    assert args[-3:] == ["localhost/gridlease-sshd:1", "sleep", "infinity"]


@pytest.fixture(scope="module")
def runtime() -> Iterator[PodmanRuntime]:
    podman = PodmanCli()
    # Builds the image on first use (debootstrap, a minute or two), then reuses the cache.
    ensure_sshd_image(podman)
    rt = PodmanRuntime(SIMULATED, podman)
    for lease in (LEASE_A, LEASE_B):
        rt.delete(lease)
    yield rt
    for lease in (LEASE_A, LEASE_B):
        rt.delete(lease)


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def wait_running(runtime: PodmanRuntime, lease_id: int) -> WorkloadStatus:
    """Polls until the runtime reports the workload up (sshd answering), a bounded time."""
    for _ in range(120):
        status = runtime.status(lease_id)
        if status.phase is not WorkloadPhase.PENDING:
            return status
        subprocess.run(["sleep", "0.5"], check=True)
    return status


def test_apply_lease_answers_ssh_login(runtime: PodmanRuntime, ssh_key: Path) -> None:
    w = make_workload(
        lease_id=LEASE_A,
        image=SSHD_IMAGE,
        ssh_public_key=ssh_key.with_suffix(".pub").read_text(),
        cpu_millicores=500,
        memory_mib=256,
    )
    assert runtime.apply(w).phase in {WorkloadPhase.PENDING, WorkloadPhase.RUNNING}
    status = wait_running(runtime, LEASE_A)
    assert status.phase is WorkloadPhase.RUNNING
    assert status.endpoints[2222].startswith("127.0.0.1:")
    assert set(status.endpoints) == {2222, 8080, 8888}

    # Reported running means sshd answers: the first login works, no retry needed.
    proc = ssh(ssh_key, status.endpoints[2222], "echo ok")
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr

    # The session is as locked down as the container: three capabilities, no new privileges,
    # and it sees the lease's environment and its (simulated) GPUs.
    proc = ssh(
        ssh_key,
        status.endpoints[2222],
        "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status; echo $MODEL;"
        " echo $NVIDIA_VISIBLE_DEVICES; grep -qx sleep /proc/[0-9]*/comm && echo command-running",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    # SETGID (6), SETUID (7), SYS_CHROOT (18).
    assert lines[0].split() == ["CapBnd:", f"{(1 << 6) | (1 << 7) | (1 << 18):016x}"]
    assert lines[1].split() == ["NoNewPrivs:", "1"]
    assert lines[2] == "llama"
    assert lines[3] == ",".join(w.gpu_uuids)
    assert lines[4] == "command-running"


def test_ssh_login_refused_for_other_key(
    runtime: PodmanRuntime, ssh_key: Path, tmp_path: Path
) -> None:
    status = runtime.apply(
        make_workload(
            lease_id=LEASE_A,
            image=SSHD_IMAGE,
            ssh_public_key=ssh_key.with_suffix(".pub").read_text(),
            cpu_millicores=500,
            memory_mib=256,
        )
    )
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    assert ssh_when_ready(ssh_key, status.endpoints[2222], "true").returncode == 0
    proc = ssh(other, status.endpoints[2222], "echo ok")
    assert proc.returncode == 255
    assert "Permission denied" in proc.stderr


def test_apply_twice_keeps_container(runtime: PodmanRuntime, ssh_key: Path) -> None:
    w = make_workload(
        lease_id=LEASE_B,
        image=SSHD_IMAGE,
        ssh_public_key=ssh_key.with_suffix(".pub").read_text(),
        cpu_millicores=500,
        memory_mib=256,
        ports=(),
    )
    first = runtime.apply(w)
    ids_before = runtime.podman.run_checked(
        ["ps", "-q", "--filter", f"label={labels.LEASE_ID}={LEASE_B}"]
    )
    second = runtime.apply(w)
    ids_after = runtime.podman.run_checked(
        ["ps", "-q", "--filter", f"label={labels.LEASE_ID}={LEASE_B}"]
    )
    assert ids_before == ids_after
    assert first.endpoints == second.endpoints

    # A changed workload replaces the container.
    third = runtime.apply(dataclasses.replace(w, env={"MODEL": "mistral"}))
    ids_changed = runtime.podman.run_checked(
        ["ps", "-q", "--filter", f"label={labels.LEASE_ID}={LEASE_B}"]
    )
    assert ids_changed != ids_after
    assert third.phase in {WorkloadPhase.PENDING, WorkloadPhase.RUNNING}
    assert wait_running(runtime, LEASE_B).phase is WorkloadPhase.RUNNING


def test_list_finds_leases_by_label_and_delete_removes(
    runtime: PodmanRuntime, ssh_key: Path
) -> None:
    for lease in (LEASE_A, LEASE_B):
        runtime.apply(
            make_workload(
                lease_id=lease,
                image=SSHD_IMAGE,
                ssh_public_key=ssh_key.with_suffix(".pub").read_text(),
                cpu_millicores=500,
                memory_mib=256,
                ports=(),
            )
        )
    listed = {s.lease_id: s for s in runtime.list()}
    assert {LEASE_A, LEASE_B} <= set(listed)
    assert listed[LEASE_A].gpu_uuids == make_workload().gpu_uuids

    runtime.delete(LEASE_A)
    assert LEASE_A not in {s.lease_id for s in runtime.list()}
    assert LEASE_B in {s.lease_id for s in runtime.list()}
    with pytest.raises(WorkloadNotFound):
        runtime.status(LEASE_A)
    runtime.delete(LEASE_A)  # deleting an absent lease is not an error


def test_run_args_publish_lease_host_ports() -> None:
    w = make_workload(host_ports={2222: 41022, 8080: 41080})
    args = run_args(SIMULATED, w)
    published = [args[i + 1] for i, a in enumerate(args) if a == "--publish"]
    # Allocated ports are pinned; a port without an allocation is left to podman.
    assert published == ["127.0.0.1:41022:2222", "127.0.0.1:41080:8080", "127.0.0.1::8888"]


def test_run_args_node_env_wins_over_spec_env() -> None:
    w = make_workload(
        lease_id=42,
        env={"GRIDLEASE_LEASE_ID": "7", "Gridlease_SSH_Authorized_Key": "ssh-rsa AAAA evil",
             "NVIDIA_VISIBLE_DEVICES": "all", "MODEL": "llama"},
    )  # fmt: skip
    args = run_args(SIMULATED, w)
    env = [args[i + 1] for i, a in enumerate(args) if a == "--env"]
    # The spec's reserved names (any case) are gone; the node's own are there once.
    assert env == [
        "MODEL=llama",
        f"GRIDLEASE_LEASE_ID={w.lease_id}",
        f"GRIDLEASE_SSH_AUTHORIZED_KEY={w.ssh_public_key}",
        f"NVIDIA_VISIBLE_DEVICES={','.join(w.gpu_uuids)}",
    ]


LEASE_C = 990_003


def test_killed_workload_comes_back_on_the_same_ssh_port_within_its_share(
    runtime: PodmanRuntime, ssh_key: Path, tmp_path: Path
) -> None:
    # The node's own path: the store allocates the lease's ports once, the desired workload is
    # bounded to the lease's share (1 GPU of 4 on an 8-CPU, 32 GiB host: 2 CPUs, 8 GiB, whatever
    # the spec asks), podman runs it. Killed, it is re-created as the plan asks (restart=True):
    # same SSH port, and the customer's key still logs in.
    store = NodeStore(tmp_path / "node.db")
    spec = {
        "version": 1,
        "image": SSHD_IMAGE,
        "ssh_public_key": ssh_key.with_suffix(".pub").read_text().strip(),
        "memory_mib": 1024 * 1024,
        "cpu_millicores": 64_000,
    }
    store.accept(LEASE_C, spec, spec_hash(spec), "5C", 1)
    desired = DesiredWorkloads(
        store, lambda: gpus, HOST, (41000, 41999), tcp_port_free("127.0.0.1")
    )
    gpus = make_gpu_set(store)
    runtime.delete(LEASE_C)
    try:
        workload = desired.build(LEASE_C, spec, (1,))
        runtime.apply(workload)
        first = wait_running(runtime, LEASE_C)
        assert first.endpoints[2222] == f"127.0.0.1:{workload.host_ports[2222]}"
        info = runtime.podman.run_json(["inspect", f"gridlease-lease-{LEASE_C}"])[0]
        assert info["HostConfig"]["Memory"] == 8192 * 1024 * 1024
        assert info["HostConfig"]["NanoCpus"] == 2 * 10**9

        runtime.podman.run_checked(["kill", f"gridlease-lease-{LEASE_C}"])
        assert runtime.status(LEASE_C).phase in {WorkloadPhase.FAILED, WorkloadPhase.STOPPED}
        runtime.apply(desired.build(LEASE_C, spec, (1,)))
        again = wait_running(runtime, LEASE_C)
        assert again.endpoints[2222] == first.endpoints[2222]
        proc = ssh(ssh_key, again.endpoints[2222], "echo $GRIDLEASE_LEASE_ID")
        assert (proc.returncode, proc.stdout) == (0, f"{LEASE_C}\n"), proc.stderr
    finally:
        runtime.delete(LEASE_C)
        store.close()


def test_port_published_by_another_nodes_container_is_not_allocated_again(
    runtime: PodmanRuntime, ssh_key: Path, tmp_path: Path
) -> None:
    # Rootful Podman publishes through firewall rules and holds no socket, so a bind probe says
    # a published port is free. Two agents on one host (or a container left behind) once got
    # the same host port, and the customer's SSH reached the other container or nowhere.
    config = dataclasses.replace(SIMULATED, node="b" * 64, name_prefix="gridlease-test-b-lease-")
    other = PodmanRuntime(config, runtime.podman)
    spec = {
        "version": 1,
        "image": SSHD_IMAGE,
        "ssh_public_key": ssh_key.with_suffix(".pub").read_text().strip(),
    }
    stores = [NodeStore(tmp_path / "a.db"), NodeStore(tmp_path / "b.db")]
    for store in stores:
        store.accept(LEASE_C, spec, spec_hash(spec), "5C", 1)
    first = DesiredWorkloads(
        stores[0], lambda: make_gpu_set(stores[0]), HOST, (41500, 41510),
        tcp_port_free("127.0.0.1"), runtime.published_ports,
    )  # fmt: skip
    second = DesiredWorkloads(
        stores[1], lambda: make_gpu_set(stores[1]), HOST, (41500, 41510),
        tcp_port_free("127.0.0.1"), other.published_ports,
    )  # fmt: skip
    runtime.delete(LEASE_C)
    other.delete(LEASE_C)
    try:
        runtime.apply(first.build(LEASE_C, spec, (1,)))
        taken = int(wait_running(runtime, LEASE_C).endpoints[2222].rsplit(":", 1)[1])
        assert taken in other.published_ports()
        workload = second.build(LEASE_C, spec, (1,))
        assert workload.host_ports[2222] != taken
        other.apply(workload)
        theirs = wait_running(other, LEASE_C)
        proc = ssh(ssh_key, theirs.endpoints[2222], "echo $GRIDLEASE_LEASE_ID")
        assert (proc.returncode, proc.stdout) == (0, f"{LEASE_C}\n"), proc.stderr
    finally:
        runtime.delete(LEASE_C)
        other.delete(LEASE_C)
        for store in stores:
            store.close()
