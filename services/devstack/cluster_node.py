"""The test cluster's one real node (`DevCluster(with_kubelet=True)`): a kubelet and kube-proxy of
the pinned Kubernetes version on Debian's containerd, runc and CNI plugins, so pods really run
and NodePort Services reach them.

No registry is reachable, so images reach containerd with `ctr images import` of Docker
archives: the sandbox ("pause") image is built here from deploy/testcluster/pause/pause.c
(gcc -static), a busybox image from Debian's busybox-static, and any other archive (e.g. what
`podman save` writes for the Podman backend's SSH image) through `RealNode.import_image`.

Made for this machine (a container, cgroup v1, no systemd): cgroupfs driver, no QoS cgroups,
`failCgroupV1: false`, `failSwapOn: false`. Everything it writes lives under its folder and a
temporary containerd root; `cleanup` removes the pods' containers, the CNI bridge and both."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shlex
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.devstack.oci import ImageFile, write_image_archive
from services.devstack.pki import CertPair

__all__ = [
    "BUSYBOX_IMAGE",
    "PAUSE_IMAGE",
    "SYSTEM_PACKAGES",
    "RealNode",
    "RealNodeSpec",
    "node_ip",
    "remove_kube_iptables",
]

PAUSE_IMAGE = "localhost/gridlease/pause:1"
BUSYBOX_IMAGE = "localhost/gridlease/busybox:1"
# Debian packages the real node needs (scripts/system-deps.sh installs them).
SYSTEM_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "busybox-static", "gcc")
PAUSE_SOURCE = Path(__file__).resolve().parents[2] / "deploy" / "testcluster" / "pause" / "pause.c"
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
BUSYBOX = Path("/bin/busybox")
BUSYBOX_APPLETS = (
    "sh", "sleep", "cat", "echo", "ls", "ps", "id", "hostname", "nc", "wget", "env", "mkdir",
    "httpd", "nslookup",
)  # fmt: skip
CNI_BRIDGE = "glcni0"


@dataclass(frozen=True)
class RealNodeSpec:
    """The kubelet node: its name, the pod subnet its CNI bridge hands out, and `gpus` ×
    `nvidia.com/gpu` advertised as an extended resource (patched into the node's status, as
    Kubernetes documents for resources without a device plugin; no GPU is really there), with
    GPU feature discovery's labels when `gpus` > 0."""

    name: str = "real-0"
    pod_cidr: str = "10.85.0.0/24"
    gpus: int = 0
    product: str = "NVIDIA-H100-80GB-HBM3"
    memory_mib: int = 81559

    def labels(self) -> dict[str, str]:
        labels = {"gridlease.dev/node-kind": "kubelet"}
        if self.gpus:
            labels.update(
                {
                    "nvidia.com/gpu.present": "true",
                    "nvidia.com/gpu.product": self.product,
                    "nvidia.com/gpu.count": str(self.gpus),
                    "nvidia.com/gpu.memory": str(self.memory_mib),
                }
            )
        return labels


class RealNode:
    """Files and commands of the real node under `root` (`<cluster root>/node`); the processes
    themselves are started and recorded by DevCluster."""

    def __init__(self, root: Path, bin_dir: Path, spec: RealNodeSpec) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.spec = spec
        self.socket = root / "containerd.sock"
        self.images_dir = bin_dir.parent / "images"

    # -- preparation ---------------------------------------------------------------------------
    @staticmethod
    def missing_tools() -> list[str]:
        """What this machine lacks for a real node (empty when it can run one)."""
        missing = [t for t in ("containerd", "ctr", "runc", "gcc") if shutil.which(t) is None]
        if not any((d / "bridge").exists() for d in CNI_BIN_DIRS):
            missing.append("CNI plugins (containernetworking-plugins)")
        if not BUSYBOX.exists():
            missing.append(f"{BUSYBOX} (busybox-static)")
        return missing

    def image_archives(self) -> list[Path]:
        """The pause and busybox image archives, built once per source version into
        `<bin_dir>/../images/`. `subprocess.CalledProcessError` if gcc fails."""
        self.images_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(PAUSE_SOURCE.read_bytes()).hexdigest()[:12]
        pause_archive = self.images_dir / f"pause-{digest}.tar"
        if not pause_archive.exists():
            with tempfile.TemporaryDirectory() as tmp:
                binary = Path(tmp) / "pause"
                subprocess.run(
                    ["gcc", "-static", "-O2", "-o", str(binary), str(PAUSE_SOURCE)],
                    check=True,
                    capture_output=True,
                )
                write_image_archive(
                    pause_archive, PAUSE_IMAGE, {"/pause": ImageFile(binary)}, ["/pause"]
                )
        busybox_digest = hashlib.sha256(
            BUSYBOX.read_bytes() + ",".join(BUSYBOX_APPLETS).encode()
        ).hexdigest()[:12]
        busybox_archive = self.images_dir / f"busybox-{busybox_digest}.tar"
        if not busybox_archive.exists():
            files = {"/bin/busybox": ImageFile(BUSYBOX)}
            files.update({f"/bin/{a}": ImageFile(link="busybox") for a in BUSYBOX_APPLETS})
            write_image_archive(busybox_archive, BUSYBOX_IMAGE, files, ["/bin/sh"])
        return [pause_archive, busybox_archive]

    def write_configs(
        self,
        containerd_root: Path,
        kubelet_cert: CertPair,
        ca: Path,
        node_ip: str,
        port: int,
        healthz_port: int,
        cluster_dns: str | None = None,
    ) -> tuple[Path, Path]:
        """Writes containerd's config.toml, the CNI network and the kubelet's configuration
        (pods' nameserver `cluster_dns`, else this machine's resolvers); returns (containerd
        config, kubelet config)."""
        self.root.mkdir(parents=True, exist_ok=True)
        cni_conf = self.root / "net.d"
        cni_conf.mkdir(exist_ok=True)
        cni_bin = next((d for d in CNI_BIN_DIRS if (d / "bridge").exists()), CNI_BIN_DIRS[0])
        gateway = str(next(ipaddress.ip_network(self.spec.pod_cidr).hosts()))
        network = {
            "cniVersion": "1.0.0",
            "name": "gridlease",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": CNI_BRIDGE,
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.spec.pod_cidr, "gateway": gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.root / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (cni_conf / "10-gridlease.conflist").write_text(json.dumps(network, indent=2))
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        runc_options = "\n".join(
            [
                f'[{cri}.containerd.runtimes.{name}]\n  runtime_type = "io.containerd.runc.v2"\n'
                f"[{cri}.containerd.runtimes.{name}.options]\n  SystemdCgroup = false\n"
                f'  Root = "{containerd_root / "runc"}"'
                # `nvidia` is the RuntimeClass handler lease pods name; plain runc here.
                for name in ("runc", "nvidia")
            ]
        )
        containerd_config = self.root / "containerd.toml"
        containerd_config.write_text(
            f"""version = 2
root = "{containerd_root / "root"}"
state = "{containerd_root / "state"}"
[grpc]
  address = "{self.socket}"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # Root in a container lacks CAP_SYS_RESOURCE: without this, runc fails to set the sandbox's
  # oom_score_adj (-998) and every pod fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
{runc_options}
[{cri}.cni]
  bin_dir = "{cni_bin}"
  conf_dir = "{cni_conf}"
"""
        )
        kubelet_config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": node_ip,
            "port": port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz_port,
            "tlsCertFile": str(kubelet_cert.cert),
            "tlsPrivateKeyFile": str(kubelet_cert.key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(ca)},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            # This machine: a container on cgroup v1, no systemd, no swap accounting.
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "failSwapOn": False,
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "clusterDomain": "cluster.local",
            "clusterDNS": [cluster_dns] if cluster_dns else [],
            "resolvConf": "/etc/resolv.conf",
            # Imported images cannot be pulled again: never garbage-collect them, and do not
            # evict pods because a shared disk is fuller than a dedicated node's would be.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        }  # fmt: skip
        kubelet_path = self.root / "kubelet.json"
        kubelet_path.write_text(json.dumps(kubelet_config, indent=2))
        return containerd_config, kubelet_path

    def write_kube_proxy_config(
        self, kubeconfig: Path, healthz_port: int, metrics_port: int
    ) -> Path:
        """kube-proxy's configuration: iptables mode, NodePorts on the node's primary address
        only, and no changes to this machine's conntrack sysctls or OOM score (not permitted
        in a container)."""
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "iptables",
            "hostnameOverride": self.spec.name,
            "healthzBindAddress": f"127.0.0.1:{healthz_port}",
            "metricsBindAddress": f"127.0.0.1:{metrics_port}",
            "clusterCIDR": self.spec.pod_cidr,
            "oomScoreAdj": 0,
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                          "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False},
            "nodePortAddresses": ["primary"],
        }  # fmt: skip
        path = self.root / "kube-proxy.json"
        path.write_text(json.dumps(config, indent=2))
        return path

    # -- commands --------------------------------------------------------------------------------
    def containerd_argv(self, config: Path) -> list[str]:
        return ["containerd", "--config", str(config)]

    def kubelet_argv(self, kubeconfig: Path, config: Path, node_ip: str) -> list[str]:
        labels = ",".join(f"{k}={v}" for k, v in self.spec.labels().items())
        return [
            str(self.bin_dir / "kubelet"),
            f"--config={config}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={self.root / 'kubelet'}",
            f"--cert-dir={self.root / 'kubelet-pki'}",
            f"--hostname-override={self.spec.name}",
            f"--node-ip={node_ip}",
            f"--node-labels={labels}",
        ]

    def ctr(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Runs `ctr` against this node's containerd in the CRI namespace `k8s.io`."""
        return subprocess.run(
            ["ctr", "-a", str(self.socket), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def import_image(self, archive: Path) -> None:
        """`ctr images import` of a Docker or OCI archive (e.g. `podman save` output).
        `RuntimeError` with ctr's output if it fails."""
        done = self.ctr("images", "import", str(archive), timeout=600.0)
        if done.returncode != 0:
            raise RuntimeError(f"ctr images import {archive}: {done.stdout}{done.stderr}")

    def remove_containers(self) -> None:
        """Kills and deletes every task and container containerd still runs (pods the kubelet
        did not tear down before it stopped)."""
        tasks = self.ctr("tasks", "ls", "-q", timeout=20.0)
        ids = tasks.stdout.split() if tasks.returncode == 0 else []
        for task in ids:
            self.ctr("tasks", "kill", "-s", "SIGKILL", task, timeout=20.0)
        for task in ids:
            self.ctr("tasks", "delete", "-f", task, timeout=20.0)
        containers = self.ctr("containers", "ls", "-q", timeout=20.0)
        for container in containers.stdout.split() if containers.returncode == 0 else []:
            self.ctr("containers", "delete", container, timeout=20.0)

    def cleanup(self, containerd_root: Path | None) -> None:
        """After containerd stopped: unmounts what it left mounted, removes the CNI bridge, the
        kubelet's and containerd's folders. Errors are ignored (best effort, repeatable)."""
        dirs = [self.root / "kubelet", *([containerd_root] if containerd_root else [])]
        for d in dirs:
            mounts = _mounts_under(d)
            for mount in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        subprocess.run(["ip", "link", "delete", CNI_BRIDGE], capture_output=True, check=False)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.root / "ipam", ignore_errors=True)
        remove_kube_iptables()
        # containerd 1.6 puts shim sockets in /run/containerd/s whatever its state dir is.
        for d in (Path("/run/containerd/s"), Path("/run/containerd")):
            try:
                d.rmdir()
            except OSError:
                pass  # not empty (another containerd) or already gone


def node_ip() -> str:
    """This machine's primary IPv4 address: the source address of its default route (no packet
    is sent), else its first global address. The kubelet refuses a loopback node IP. `OSError`
    if there is none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("203.0.113.1", 9))  # TEST-NET-3: any address the default route takes
            ip = str(s.getsockname()[0])
    except OSError:
        # No default route: the first global address of any interface.
        out = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "scope", "global"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        ip = next((w.split("/")[0] for i, w in enumerate(out) if out[i - 1] == "inet"), "")
    if not ip or ipaddress.ip_address(ip).is_loopback or ip == "0.0.0.0":
        raise OSError("no non-loopback IPv4 address for the kubelet's node IP")
    return ip


def remove_kube_iptables() -> None:
    """Removes the iptables rules and chains the kubelet and kube-proxy leave behind (KUBE-*
    chains in filter, nat and mangle, IPv4 and IPv6, and the jumps to them), so the machine's
    firewall is as before. Best effort: a missing iptables command or table is ignored."""
    for command in ("iptables", "ip6tables"):
        if shutil.which(command) is None:
            continue
        for table in ("filter", "nat", "mangle"):
            listed = subprocess.run(
                [command, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
            )
            if listed.returncode != 0:
                continue
            rules = [shlex.split(line) for line in listed.stdout.splitlines()]
            chains = [r[1] for r in rules if r[:1] == ["-N"] and r[1].startswith("KUBE-")]
            for rule in rules:
                # Jumps from the built-in chains into ours; KUBE-* chains go whole below.
                if (
                    rule[:1] == ["-A"]
                    and not rule[1].startswith("KUBE-")
                    and any(word.startswith("KUBE-") for word in rule[2:])
                ):
                    subprocess.run(
                        [command, "-w", "-t", table, "-D", *rule[1:]],
                        capture_output=True,
                        check=False,
                    )
            for flag in ("-F", "-X"):
                for chain in chains:
                    subprocess.run(
                        [command, "-w", "-t", table, flag, chain], capture_output=True, check=False
                    )


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) if path.exists() else str(path)
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[1] for line in lines if len(line.split()) > 1]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]
