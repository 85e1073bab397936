"""The Python services' images (deploy/images/build-images.sh), built here with Podman from a
locally made Debian + Python base: each runs its service with the command the tests and the
Helm chart use, as uid 10001, on a read-only root filesystem with /data the only writable place.
A seed in its container answers gRPC health; the API in its container answers /healthz and
keeps its SQLite database in /data."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.devstack.processes import REPO, wait_until
from tests.utils.ports import free_port

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
# This machine's hard open-files limit is below Podman's default for containers.
LIMITS = ["--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096"]
BUILD = REPO / "deploy" / "images" / "build-images.sh"


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """`api`, `seed`, `node` -> image name (tagged with the chart's appVersion)."""
    built = subprocess.run(["bash", str(BUILD), "--python-only"], capture_output=True, text=True,
                           timeout=3600, check=False)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    names = built.stdout.split()
    version = next(line.split('"')[1] for line in (REPO / "deploy/helm/gridlease/Chart.yaml")
                   .read_text().splitlines() if line.startswith("appVersion:"))  # fmt: skip
    found = {n.split("/")[1].split(":")[0].removeprefix("gridlease-"): n for n in names}
    assert all(n.endswith(f":{version}") for n in names)
    return found


@pytest.fixture
def volume() -> Iterator[str]:
    """A fresh named volume for /data (it takes the image's /data owner: uid 10001)."""
    name = f"gridlease-image-test-{uuid.uuid4().hex[:8]}"
    subprocess.run([*PODMAN, "volume", "create", name], check=True, capture_output=True)
    yield name
    subprocess.run([*PODMAN, "volume", "rm", "-f", name], check=False, capture_output=True)


def _inspect(image: str) -> dict[str, object]:
    out = subprocess.run([*PODMAN, "image", "inspect", image], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    config: dict[str, object] = json.loads(out)[0]["Config"]
    return config


def _run(name: str, image: str, volume: str, port: int, inner: int, *args: str,
         env: dict[str, str] | None = None) -> None:  # fmt: skip
    argv = [*PODMAN, "run", *LIMITS, "-d", "--rm", "--name", name, "--read-only",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-v", f"{volume}:/data", "-p", f"127.0.0.1:{port}:{inner}"]  # fmt: skip
    for key, value in (env or {}).items():
        argv += ["-e", f"{key}={value}"]
    subprocess.run([*argv, image, *args], check=True, capture_output=True, timeout=120)


def _stop(name: str) -> str:
    logs = subprocess.run([*PODMAN, "logs", name], capture_output=True, text=True, check=False)
    subprocess.run([*PODMAN, "rm", "-f", "-t", "2", name], capture_output=True, check=False)
    return (logs.stdout + logs.stderr)[-3000:]


@pytest.mark.parametrize(("component", "module"), [
    ("api", "services.customer_api"), ("seed", "services.seed"), ("node", "services.gpu_node"),
])  # fmt: skip
def test_each_image_runs_its_service_as_non_root(
    images: dict[str, str], component: str, module: str
) -> None:
    config = _inspect(images[component])
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python", "-m", module]
    help_text = subprocess.run([*PODMAN, "run", *LIMITS, "--rm", "--read-only", images[component],
                                "--help"], capture_output=True, text=True, timeout=120,
                               check=False)  # fmt: skip
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    assert "usage" in help_text.stdout.lower()


def test_seed_image_serves_grpc_health_from_a_read_only_root(
    images: dict[str, str], volume: str
) -> None:
    port, name = free_port(), f"gridlease-image-test-seed-{uuid.uuid4().hex[:6]}"
    _run(name, images["seed"], volume, port, 7600, "--listen", "0.0.0.0:7600",
         "--data-dir", "/data/seed")  # fmt: skip
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")

        def serving() -> bool:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=1)  # fmt: skip
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        wait_until("seed in its container", serving, 120)
        channel.close()
    except BaseException:
        print(_stop(name))
        raise
    _stop(name)


def test_api_image_answers_and_keeps_its_database_in_data(
    images: dict[str, str], volume: str
) -> None:
    port, name = free_port(), f"gridlease-image-test-api-{uuid.uuid4().hex[:6]}"
    # No chain here: the API still starts (liveness) and says what it waits for (readiness).
    _run(name, images["api"], volume, port, 8080, env={
        "GRIDLEASE_API_CHAIN_URL": "ws://127.0.0.1:9", "GRIDLEASE_API_SERVER_SECRET": "s" * 32,
    })  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"

        def live() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("API in its container", live, 120)
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 503 and "chain" in ready.text
        # Swagger UI and ReDoc ship in the image (no download at run time).
        for page in ("/docs", "/redoc"):
            shown = httpx.get(f"{base}{page}", timeout=10)
            assert shown.status_code == 200, (page, shown.text[:300])
        listing = subprocess.run([*PODMAN, "exec", name, "ls", "/data"], capture_output=True,
                                 text=True, check=True).stdout  # fmt: skip
        assert "api.db" in listing
    except BaseException:
        print(_stop(name))
        raise
    _stop(name)


def test_node_image_reads_simulated_gpus_from_a_read_only_root(images: dict[str, str]) -> None:
    """The GPU node image has no compiler and a read-only root: the SIMULATED NVML it uses on
    clusters without NVIDIA hardware (the chart's gpuNode.simulateGpus) is shipped prebuilt, and
    Debian's Python (3.11.2) runs the simulation code (an Enum quirk of that version broke it)."""
    shown = subprocess.run(
        [*PODMAN, "run", *LIMITS, "--rm", "--read-only", "--cap-drop", "ALL", images["node"],
         "inventory", "--simulate-gpus", "l40s:2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    inventory = json.loads(shown.stdout)
    assert inventory["simulated"] is True
    assert [g["name"] for g in inventory["gpus"]] == ["NVIDIA L40S", "NVIDIA L40S"], inventory
