"""The node's container image (chain/node/Containerfile), built here with Podman from a locally
made Debian base, runs a dev chain as a non-root user with its chain in the /data volume."""

from __future__ import annotations

import json
import subprocess

from services.common._chain import ChainClient
from services.devstack.processes import wait_until
from services.devstack.stack import REPO, chain_answers
from tests.utils.ports import free_port

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]


def test_node_image_runs_a_dev_chain_as_non_root() -> None:
    built = subprocess.run(["bash", str(REPO / "chain" / "scripts" / "node-image.sh")],
                           capture_output=True, text=True, timeout=3600, check=False)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    image = built.stdout.strip().splitlines()[-1]
    assert image.startswith("localhost/gridlease-chain-node:")
    config = json.loads(subprocess.run([*PODMAN, "image", "inspect", image], capture_output=True,
                                       text=True, check=True).stdout)[0]["Config"]  # fmt: skip
    assert config["User"] == "10001:10001"
    assert "/data" in config["Volumes"]

    port = free_port()
    name = f"gridlease-node-image-test-{port}"
    subprocess.run([
        *PODMAN, "run", "-d", "--rm", "--name", name,
        "--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096",
        "-p", f"127.0.0.1:{port}:9944", image,
        "--dev", "--rpc-external", "--rpc-cors", "all",
        "--no-telemetry", "--no-prometheus",
    ], check=True, capture_output=True, timeout=120)  # fmt: skip
    try:
        url = f"ws://127.0.0.1:{port}"
        wait_until("node in its container", lambda: chain_answers(url), 120)
        with ChainClient(url) as chain:
            first = chain.block_number()
            assert chain.wait_for_blocks(2) >= first + 2
            assert chain.rpc("system_chain", []) == "Gridlease Development"
    finally:
        subprocess.run([*PODMAN, "rm", "-f", "-t", "2", name], capture_output=True, check=False)
