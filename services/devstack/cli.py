"""`gridlease dev up|down|status|demo|logs`: the whole stack on this machine;
`gridlease dev cluster up|down|status`: the Kubernetes test cluster (services.devstack.cluster)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def _stack(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from services.devstack.stack import Stack

    return Stack(chain=getattr(args, "chain", None) or "chopsticks")


def cmd_up(args: argparse.Namespace) -> int:
    from services.devstack.demo import run_demo

    stack = _stack(args)
    try:
        stack.up()
    except (RuntimeError, TimeoutError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.no_demo:
        return 0
    run_demo(stack.api_url, stack.chain_url, stack.root)
    print("\nthe stack keeps running: gridlease dev demo | gridlease offers | gridlease dev down")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from services.devstack.demo import run_demo

    stack = _stack(args)
    if not stack.running():
        print("error: the dev stack is not up (gridlease dev up)", file=sys.stderr)
        return 1
    run_demo(stack.api_url, stack.chain_url, stack.root)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = _stack(args).down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    stack = _stack(args)
    status = stack.status()
    if not status:
        print("the dev stack is not up")
        return 1
    for name, alive in status.items():
        print(f"  {name:<8} {'running' if alive else 'STOPPED'}")
    for name, where in stack.state.info().items():
        print(f"  {name:<8} {where}")
    return 0 if all(status.values()) else 1


def cmd_logs(args: argparse.Namespace) -> int:
    print(_stack(args).state.logs)
    return 0


def cmd_cluster_up(args: argparse.Namespace) -> int:
    from services.devstack.cluster import ClusterError, DevCluster, ensure_binaries

    try:
        bin_dir = ensure_binaries(build=True)
        if args.kubelet:
            _real_node_packages()
        cluster = DevCluster(bin_dir=bin_dir, with_kubelet=args.kubelet)
        what = "KWOK GPU nodes" + (" and a real kubelet node" if args.kubelet else "")
        print(f"==> starting the test cluster (Kubernetes {cluster.versions.k8s}, {what})")
        info = cluster.up(timeout=args.timeout)
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, where in info.items():
        print(f"  {name:<16} {where}")
    for node in cluster.gpu_nodes:
        print(f"  {'node':<16} {node.name}: {node.gpus} x {node.product} (KWOK)")
    if args.kubelet:
        print(f"  {'node':<16} {cluster.real_node_spec.name}: kubelet + containerd")
    print(f"\nexport KUBECONFIG={cluster.kubeconfig}")
    return 0


def _real_node_packages() -> None:
    import subprocess

    from services.devstack.cluster import ClusterError
    from services.devstack.cluster_node import SYSTEM_PACKAGES
    from services.devstack.processes import REPO

    script = REPO / "scripts" / "system-deps.sh"
    if subprocess.run(["bash", str(script), *SYSTEM_PACKAGES], check=False).returncode != 0:
        raise ClusterError(f"installing {' '.join(SYSTEM_PACKAGES)} failed")


def cmd_cluster_down(args: argparse.Namespace) -> int:
    from services.devstack.cluster import DevCluster

    stopped = DevCluster().down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_cluster_status(args: argparse.Namespace) -> int:
    from services.devstack.cluster import DevCluster

    cluster = DevCluster()
    status = cluster.status()
    if not status:
        print("the test cluster is not up (gridlease dev cluster up)")
        return 1
    for name, alive in status.items():
        print(f"  {name:<24} {'running' if alive else 'STOPPED'}")
    for name, where in cluster.info().items():
        print(f"  {name:<24} {where}")
    return 0 if all(status.values()) else 1


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dev = commands.add_parser("dev", help="the whole stack on this machine")
    sub = dev.add_subparsers(dest="dev_command", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="set up what is missing, start everything, run the demo")
    up.add_argument("--no-demo", action="store_true", help="start the stack only")
    up.add_argument(
        "--chain", choices=["chopsticks", "node"], default="chopsticks",
        help="the dev chain: Chopsticks (default: instant blocks, every block final, builds in "
        "minutes) or our node (gridlease-node --dev: 1 s blocks, GRANDPA finality; its first "
        "build takes over an hour here)",
    )  # fmt: skip
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything").set_defaults(func=cmd_down)
    sub.add_parser("status", help="what runs and where").set_defaults(func=cmd_status)
    sub.add_parser("demo", help="lease 2 GPUs end to end").set_defaults(func=cmd_demo)
    sub.add_parser("logs", help="print the log folder").set_defaults(func=cmd_logs)
    cluster = sub.add_parser("cluster", help="a Kubernetes test cluster with fake GPU nodes")
    csub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    cup = csub.add_parser("up", help="build (first time) and start it; prints the kubeconfig")
    cup.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for health")
    cup.add_argument(
        "--kubelet",
        action="store_true",
        help="also a real node (kubelet on containerd; root, installs Debian packages)",
    )
    cup.set_defaults(func=cmd_cluster_up)
    csub.add_parser("down", help="stop it").set_defaults(func=cmd_cluster_down)
    csub.add_parser("status", help="what runs, server, kubeconfig").set_defaults(
        func=cmd_cluster_status
    )
