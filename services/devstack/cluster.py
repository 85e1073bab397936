"""A real Kubernetes control plane on loopback for development and tests (`gridlease dev cluster`,
the `k8s_cluster` pytest fixture): etcd, kube-apiserver (own CA, RBAC, service-account keys),
kube-controller-manager, kube-scheduler and KWOK with fake GPU nodes, plus a RuntimeClass
`nvidia`; optionally one real node (`with_kubelet`: kubelet, kube-proxy and containerd, see
services.devstack.cluster_node). The binaries come from deploy/testcluster/build.sh (built from
Go modules, cached in ~/.cache/gridlease/k8s/<version>/bin).

Everything listens on free loopback ports; the admin kubeconfig is written to `<root>/kubeconfig`.
The processes run detached in their own process groups and are recorded in `<root>/state.json`,
so `down` (possibly from another process) stops them all."""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.devstack.cluster_dns import COREDNS_USER, corefile, dns_objects
from services.devstack.cluster_node import SYSTEM_PACKAGES, RealNode, RealNodeSpec, node_ip
from services.devstack.pki import CertPair, ClusterPki
from services.devstack.processes import REPO, Process, StackState, free_ports

__all__ = [
    "DEFAULT_GPU_NODES",
    "GPU_RESOURCE",
    "ClusterError",
    "DevCluster",
    "FakeGpuNode",
    "RealNodeSpec",
    "Versions",
    "binaries_dir",
    "ensure_binaries",
]

TESTCLUSTER = REPO / "deploy" / "testcluster"
BUILD_SCRIPT = TESTCLUSTER / "build.sh"
GPU_RESOURCE = "nvidia.com/gpu"
# Fake nodes carry this annotation; KWOK manages only those (a real kubelet node is left alone).
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
SERVICE_CIDR = "10.0.0.0/24"
# Pods' nameserver (the kube-dns Service): the range's tenth address, as kubeadm chooses it.
DNS_SERVICE_IP = str(ipaddress.ip_network(SERVICE_CIDR)[10])
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
# KWOK's stage configs (from its module's kustomize/stage/), as build.sh copies them.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)
# Order of start; `down` stops in reverse.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "coredns",
    "containerd",
    "kubelet",
    "kube-proxy",
)


class ClusterError(RuntimeError):
    """The cluster could not be built, started or reached; the message names the part and, for a
    process, ends with the tail of its log."""


@dataclass(frozen=True)
class Versions:
    """The pinned versions of deploy/testcluster/versions.env (e.g. k8s="v1.37.2")."""

    k8s: str
    etcd: str
    kwok: str

    @classmethod
    def pinned(cls, path: Path = TESTCLUSTER / "versions.env") -> Versions:
        """Reads `path` (KEY=VALUE lines). `ClusterError` if a version is missing."""
        values: dict[str, str] = {}
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
        try:
            return cls(values["K8S_VERSION"], values["ETCD_VERSION"], values["KWOK_VERSION"])
        except KeyError as e:
            raise ClusterError(f"{path} names no {e.args[0]}") from e


def binaries_dir(versions: Versions | None = None) -> Path:
    """Where build.sh puts the binaries: `<cache>/k8s/<k8s version>/bin`, with <cache> from
    GRIDLEASE_CACHE or ~/.cache/gridlease."""
    versions = versions or Versions.pinned()
    cache = Path(os.environ.get("GRIDLEASE_CACHE", Path.home() / ".cache" / "gridlease"))
    return cache / "k8s" / versions.k8s / "bin"


def ensure_binaries(build: bool = True, say: Callable[[str], None] = print) -> Path:
    """The binaries folder, built first if the cache is cold (tens of minutes on 2 cores; build.sh
    prints its progress to this process's stdout). With `build=False` a cold cache raises
    `ClusterError` instead."""
    check = subprocess.run(["bash", str(BUILD_SCRIPT), "--check"], check=False)
    if check.returncode != 0:
        if not build:
            raise ClusterError(
                f"the test cluster's binaries are not built: run {BUILD_SCRIPT.relative_to(REPO)}"
            )
        say("==> building the Kubernetes test cluster (first time: tens of minutes)")
        done = subprocess.run(["bash", str(BUILD_SCRIPT)], check=False)
        if done.returncode != 0:
            raise ClusterError(f"{BUILD_SCRIPT} failed (exit {done.returncode})")
    return binaries_dir()


@dataclass(frozen=True)
class FakeGpuNode:
    """A KWOK node advertising `gpus` × `nvidia.com/gpu` with the labels NVIDIA's GPU feature
    discovery writes (`nvidia.com/gpu.product`, `.count`, `.memory` in MiB, `.present`)."""

    name: str
    gpus: int
    product: str
    memory_mib: int
    cpu: str = "64"
    memory: str = "512Gi"
    pods: str = "110"

    def labels(self) -> dict[str, str]:
        return {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": self.product,
            "nvidia.com/gpu.count": str(self.gpus),
            "nvidia.com/gpu.memory": str(self.memory_mib),
        }

    def manifest(self, internal_ip: str) -> dict[str, Any]:
        resources = {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": self.pods,
            GPU_RESOURCE: str(self.gpus),
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": self.labels(),
                "annotations": {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1]},
            },
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "addresses": [
                    {"type": "InternalIP", "address": internal_ip},
                    {"type": "Hostname", "address": self.name},
                ],
            },
        }


DEFAULT_GPU_NODES = (
    FakeGpuNode("gpu-h100-0", 8, "NVIDIA-H100-80GB-HBM3", 81559),
    FakeGpuNode("gpu-a100-0", 4, "NVIDIA-A100-SXM4-40GB", 40960),
)


@dataclass
class _Ports:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    kubelet: int
    kubelet_healthz: int
    kube_proxy_healthz: int
    kube_proxy_metrics: int
    coredns: int
    coredns_health: int
    coredns_ready: int

    @classmethod
    def pick(cls) -> _Ports:
        return cls(*free_ports(13))


@dataclass
class _Started:
    processes: dict[str, Process] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)


class DevCluster:
    """The cluster rooted at `root` (logs/, pki/, kubeconfigs, state.json).

    `up()` starts it and waits until it serves; `down()` stops it; both may be called from
    different processes (the state file names the processes). With `with_kubelet`, one real
    node too (services.devstack.cluster_node: kubelet + containerd; needs root and the Debian
    packages of `cluster_node.SYSTEM_PACKAGES`), described by `real_node`."""

    def __init__(
        self,
        root: Path = REPO / ".gridlease" / "cluster",
        gpu_nodes: Sequence[FakeGpuNode] = DEFAULT_GPU_NODES,
        bin_dir: Path | None = None,
        say: Callable[[str], None] = print,
        with_kubelet: bool = False,
        real_node: RealNodeSpec | None = None,
    ) -> None:
        self.root = root
        self.with_kubelet = with_kubelet
        self.real_node_spec = real_node or RealNodeSpec()
        self.gpu_nodes = tuple(gpu_nodes)
        self.bin_dir = bin_dir or binaries_dir()
        self.versions = Versions.pinned()
        self.state = StackState(root)
        self.say = say
        self.kubeconfig = root / "kubeconfig"
        self.pki_dir = root / "pki"
        self.node = RealNode(root / "node", self.bin_dir, self.real_node_spec)

    # -- what runs ---------------------------------------------------------------------------------
    def status(self) -> dict[str, bool]:
        """Each recorded process: whether it is alive. Empty when the cluster is not up."""
        return {n: p.alive() for n, p in self.state.load().items()}

    def running(self) -> bool:
        status = self.status()
        return bool(status) and all(status.values())

    def info(self) -> dict[str, str]:
        """server, kubeconfig, version, logs of the running cluster (empty when down)."""
        return self.state.info()

    @property
    def server(self) -> str:
        """The API server's URL (https://127.0.0.1:PORT). `ClusterError` when not up."""
        server = self.info().get("server")
        if not server:
            raise ClusterError(f"the cluster in {self.root} is not up")
        return server

    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` authenticated as the cluster admin."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]

    def token_client(self, token: str) -> Any:
        """A `kubernetes.client.ApiClient` that authenticates with a bearer `token` (e.g. a
        service account's, from the TokenRequest API) instead of the admin certificate."""
        from kubernetes import client

        conf = client.Configuration()
        conf.host = self.server
        conf.ssl_ca_cert = str(self.pki_dir / "ca.crt")
        conf.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(conf)

    # -- up ----------------------------------------------------------------------------------------
    def up(self, timeout: float = 240.0) -> dict[str, str]:
        """Starts every part and waits (at most `timeout` seconds in all) until the API server is
        ready, the controller manager and scheduler are healthy and every fake GPU node is Ready
        (and, with the kubelet, the real node is Ready with its images imported and kube-proxy
        healthy). Returns `info()`. `ClusterError` (everything started is stopped again) naming
        the part that failed, with its log tail; also if the cluster is already up."""
        if self.status():
            if self.running():
                raise ClusterError(f"the cluster in {self.root} is already up (down stops it)")
            self.down()
        real_node = ("coredns", "kubelet", "kube-proxy") if self.with_kubelet else ()
        for name in COMPONENTS[:5] + real_node:
            if not (self.bin_dir / name).exists():
                raise ClusterError(f"{self.bin_dir / name} is missing: run {BUILD_SCRIPT}")
        self._fresh()
        deadline = time.monotonic() + timeout
        started = _Started()
        try:
            self._start(started, deadline)
        except BaseException:
            self.state.save(started.processes, started.info)
            self.down()
            raise
        self.state.save(started.processes, started.info)
        return dict(started.info)

    def _fresh(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for name in ("pki", "kubeconfigs", "kwok", "certs", "node"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        self.kubeconfig.unlink(missing_ok=True)
        self.state.logs.mkdir(parents=True, exist_ok=True)
        for log in self.state.logs.glob("*.log"):
            log.unlink()

    def _start(self, started: _Started, deadline: float) -> None:
        ports = _Ports.pick()
        pki = ClusterPki(self.pki_dir)
        sa = pki.service_account_key()
        server = f"https://127.0.0.1:{ports.apiserver}"
        # Pods on the real node reach the API server (the `kubernetes` Service) and CoreDNS on
        # the node's address; without a real node everything stays on loopback.
        ip = self._node_ip(started) if self.with_kubelet else None
        serving = pki.issue(
            "apiserver",
            "kube-apiserver",
            server=True,
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ips=("127.0.0.1", str(next(ipaddress.ip_network(SERVICE_CIDR).hosts())))
            + ((ip,) if ip else ()),
        )
        admin = pki.issue("admin", "admin", ("system:masters",), client=True)
        # The aggregation layer's front proxy: its CA in the extension-apiserver-authentication
        # ConfigMap, which the controller manager and scheduler read (and complain without).
        front_proxy = ClusterPki(self.pki_dir / "front-proxy")
        proxy_client = front_proxy.issue("front-proxy-client", "front-proxy-client", client=True)
        kubelet_client = pki.issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",),
            client=True,
        )  # fmt: skip
        kubeconfigs = {
            "admin": self._write_kubeconfig(self.kubeconfig, server, pki.ca.cert, admin),
            "kube-controller-manager": self._component_kubeconfig(
                pki, server, "kube-controller-manager", "system:kube-controller-manager"
            ),
            "kube-scheduler": self._component_kubeconfig(
                pki, server, "kube-scheduler", "system:kube-scheduler"
            ),
            "kwok": self._component_kubeconfig(pki, server, "kwok", "kwok", ("system:masters",)),
        }
        etcd_data = Path(tempfile.mkdtemp(prefix="gridlease-etcd-"))
        started.info.update(
            {
                "server": server,
                "kubeconfig": str(self.kubeconfig),
                "version": self.versions.k8s,
                "etcd-data": str(etcd_data),
                "logs": str(self.state.logs),
            }
        )
        bin_ = self.bin_dir

        etcd_url = f"http://127.0.0.1:{ports.etcd}"
        peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
        self._run(
            started,
            "etcd",
            [
                str(bin_ / "etcd"),
                "--name=default",
                f"--data-dir={etcd_data}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait(started, "etcd", deadline, lambda: _http_ok(f"{etcd_url}/health"))

        self._run(
            started,
            "kube-apiserver",
            [
                str(bin_ / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                # Clients on this machine use loopback, pods the advertised node address.
                *(
                    ["--bind-address=0.0.0.0", f"--advertise-address={ip}"]
                    if ip
                    else ["--bind-address=127.0.0.1"]
                ),
                f"--secure-port={ports.apiserver}",
                f"--cert-dir={self.root / 'certs'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={pki.ca.cert}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--requestheader-client-ca-file={front_proxy.ca.cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={proxy_client.cert}",
                f"--proxy-client-key-file={proxy_client.key}",
                f"--kubelet-client-certificate={kubelet_client.cert}",
                f"--kubelet-client-key={kubelet_client.key}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                "--allow-privileged=true",
                "--profiling=false",
            ],
        )
        tls = _tls(pki.ca.cert, admin)
        self._wait(started, "kube-apiserver", deadline, lambda: _http_ok(f"{server}/readyz", tls))
        api = httpx.Client(base_url=server, verify=tls, timeout=10.0)
        try:
            self._bootstrap_objects(api)
            self._start_controllers(started, ports, pki, sa, kubeconfigs)
            self._start_kwok(started, ports, kubeconfigs["kwok"])
            for i, node in enumerate(self.gpu_nodes):
                _create(api, "/api/v1/nodes", node.manifest(f"10.240.0.{i + 1}"))
            for name, port in (
                ("kube-controller-manager", ports.controller_manager),
                ("kube-scheduler", ports.scheduler),
            ):
                healthz = functools.partial(_http_ok, f"https://127.0.0.1:{port}/healthz", False)
                self._wait(started, name, deadline, healthz)
            for node in self.gpu_nodes:
                ready = functools.partial(_node_ready, api, node.name)
                self._wait(started, "kwok", deadline, ready, what=f"fake node {node.name} Ready")
            if ip:
                self._start_dns(started, ports, pki, server, api, ip, deadline)
                self._start_real_node(started, ports, pki, server, api, ip, deadline)
        finally:
            api.close()

    def _bootstrap_objects(self, api: httpx.Client) -> None:
        _create(
            api,
            "/apis/node.k8s.io/v1/runtimeclasses",
            {
                "apiVersion": "node.k8s.io/v1",
                "kind": "RuntimeClass",
                "metadata": {"name": "nvidia"},
                "handler": "nvidia",
            },
        )

    def _start_controllers(
        self,
        started: _Started,
        ports: _Ports,
        pki: ClusterPki,
        sa: CertPair,
        kubeconfigs: Mapping[str, Path],
    ) -> None:
        kcm = kubeconfigs["kube-controller-manager"]
        self._run(
            started,
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kcm}",
                f"--authentication-kubeconfig={kcm}",
                f"--authorization-kubeconfig={kcm}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.controller_manager}",
                f"--cert-dir={self.root / 'certs' / 'kube-controller-manager'}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={pki.ca.cert}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--profiling=false",
            ],
        )
        sched = kubeconfigs["kube-scheduler"]
        self._run(
            started,
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={sched}",
                f"--authentication-kubeconfig={sched}",
                f"--authorization-kubeconfig={sched}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.scheduler}",
                f"--cert-dir={self.root / 'certs' / 'kube-scheduler'}",
                "--leader-elect=false",
                "--profiling=false",
            ],
        )

    def _start_kwok(self, started: _Started, ports: _Ports, kubeconfig: Path) -> None:
        stages = self.bin_dir.parent / "kwok-stage"
        argv = [
            str(self.bin_dir / "kwok"),
            f"--kubeconfig={kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={'='.join(KWOK_ANNOTATION)}",
            f"--cidr={POD_CIDR}",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{ports.kwok}",
        ]
        argv += [f"--config={stages / s}" for s in KWOK_STAGES]
        # KWOK reads ~/.kwok by default; keep it inside the cluster's folder.
        self._run(started, "kwok", argv, env={"KWOK_WORKDIR": str(self.root / "kwok")})

    def _start_real_node(
        self,
        started: _Started,
        ports: _Ports,
        pki: ClusterPki,
        server: str,
        api: httpx.Client,
        ip: str,
        deadline: float,
    ) -> None:
        node, spec = self.node, self.real_node_spec
        missing = node.missing_tools()
        if missing:
            raise ClusterError(
                "a real node needs: " + ", ".join(missing) + " (bash scripts/system-deps.sh "
                + " ".join(SYSTEM_PACKAGES) + ")"
            )  # fmt: skip
        archives = node.image_archives()
        containerd_root = Path(tempfile.mkdtemp(prefix="gridlease-containerd-"))
        started.info["containerd-root"] = str(containerd_root)
        cert = pki.issue(
            "kubelet", f"system:node:{spec.name}", ("system:nodes",), server=True, client=True,
            dns_names=(spec.name, "localhost"), ips=(ip, "127.0.0.1"),
        )  # fmt: skip
        kubeconfig = self._write_kubeconfig(
            self.root / "kubeconfigs" / "kubelet.kubeconfig", server, pki.ca.cert, cert
        )
        containerd_conf, kubelet_conf = node.write_configs(
            containerd_root, cert, pki.ca.cert, ip, ports.kubelet, ports.kubelet_healthz,
            cluster_dns=DNS_SERVICE_IP,
        )  # fmt: skip
        self._run(started, "containerd", node.containerd_argv(containerd_conf))
        self._wait(
            started, "containerd", deadline, lambda: node.ctr("version", timeout=5).returncode == 0
        )
        for archive in archives:
            node.import_image(archive)
        self._run(started, "kubelet", node.kubelet_argv(kubeconfig, kubelet_conf, ip))
        healthz = f"http://127.0.0.1:{ports.kubelet_healthz}/healthz"
        self._wait(started, "kubelet", deadline, functools.partial(_http_ok, healthz))
        ready = functools.partial(_node_ready, api, spec.name)
        self._wait(started, "kubelet", deadline, ready, what=f"node {spec.name} Ready")
        proxy_kubeconfig = self._component_kubeconfig(
            pki, server, "kube-proxy", "system:kube-proxy"
        )
        proxy_conf = node.write_kube_proxy_config(
            proxy_kubeconfig, ports.kube_proxy_healthz, ports.kube_proxy_metrics
        )
        self._run(
            started, "kube-proxy", [str(self.bin_dir / "kube-proxy"), f"--config={proxy_conf}"]
        )
        proxy_healthz = f"http://127.0.0.1:{ports.kube_proxy_healthz}/healthz"
        self._wait(started, "kube-proxy", deadline, functools.partial(_http_ok, proxy_healthz))
        if spec.gpus:
            patch = [
                {
                    "op": "add",
                    "path": "/status/capacity/" + GPU_RESOURCE.replace("/", "~1"),
                    "value": str(spec.gpus),
                }
            ]
            response = api.patch(
                f"/api/v1/nodes/{spec.name}/status",
                content=json.dumps(patch),
                headers={"Content-Type": "application/json-patch+json"},
            )
            if response.status_code != 200:
                raise ClusterError(f"advertising GPUs on {spec.name}: {response.text}")
            has_gpus = functools.partial(_allocatable, api, spec.name, GPU_RESOURCE, spec.gpus)
            self._wait(started, "kubelet", deadline, has_gpus, what=f"{spec.name} allocatable GPUs")

    def _node_ip(self, started: _Started) -> str:
        try:
            ip = node_ip()
        except OSError as e:
            raise ClusterError(f"the real node needs an IP address: {e}") from e
        started.info["node-ip"] = ip
        return ip

    def _start_dns(
        self,
        started: _Started,
        ports: _Ports,
        pki: ClusterPki,
        server: str,
        api: httpx.Client,
        ip: str,
        deadline: float,
    ) -> None:
        """CoreDNS on `ip`, and the kube-dns Service in front of it (services.devstack.cluster_dns);
        waits until it has read the API server."""
        kubeconfig = self._component_kubeconfig(pki, server, "coredns", COREDNS_USER)
        config = self.root / "Corefile"
        config.write_text(
            corefile(ip, ports.coredns, ports.coredns_health, ports.coredns_ready, kubeconfig)
        )
        for path, body in dns_objects(ip, ports.coredns, DNS_SERVICE_IP):
            _create(api, path, body)
        self._run(started, "coredns", [str(self.bin_dir / "coredns"), "-conf", str(config)])
        ready = functools.partial(_http_ok, f"http://127.0.0.1:{ports.coredns_ready}/ready")
        self._wait(started, "coredns", deadline, ready)

    # -- helpers -----------------------------------------------------------------------------------
    def _run(
        self,
        started: _Started,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
    ) -> None:
        started.processes[name] = self.state.start(name, argv, env)
        self.state.save(started.processes, started.info)

    def _wait(
        self,
        started: _Started,
        name: str,
        deadline: float,
        ready: Callable[[], bool],
        what: str | None = None,
    ) -> None:
        """Polls `ready` until `deadline` (time.monotonic()); `ClusterError` naming process
        `name` with its log tail if it died or the time ran out."""
        proc = started.processes[name]
        what = what or f"{name} ready"
        while True:
            if ready():
                return
            if not proc.alive():
                raise ClusterError(f"{name} exited before {what}; {_tail(proc.log)}")
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out waiting for {what}; {_tail(proc.log)}")
            time.sleep(0.25)

    def _component_kubeconfig(
        self,
        pki: ClusterPki,
        server: str,
        name: str,
        user: str,
        groups: tuple[str, ...] = (),
    ) -> Path:
        pair = pki.issue(name, user, groups, client=True)
        return self._write_kubeconfig(
            self.root / "kubeconfigs" / f"{name}.kubeconfig", server, pki.ca.cert, pair
        )

    @staticmethod
    def _write_kubeconfig(path: Path, server: str, ca: Path, user: CertPair) -> Path:
        """A kubeconfig (JSON, which is YAML) with absolute paths to the certificate files."""
        body = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "gridlease-dev",
                    "cluster": {"server": server, "certificate-authority": str(ca)},
                }
            ],
            "users": [
                {
                    "name": "user",
                    "user": {"client-certificate": str(user.cert), "client-key": str(user.key)},
                }
            ],
            "contexts": [
                {"name": "gridlease-dev", "context": {"cluster": "gridlease-dev", "user": "user"}}
            ],
            "current-context": "gridlease-dev",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=2))
        path.chmod(0o600)
        return path

    # -- down --------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stops every recorded process (process groups: SIGTERM, SIGKILL after 10 s), removes
        etcd's data, forgets the state; returns the names of those that were running."""
        processes = self.state.load()
        info = self.state.info()
        stopped = []
        if "kubelet" in processes:
            self._drain_real_node(processes)
        order = [n for n in reversed(COMPONENTS) if n in processes]
        order = [n for n in processes if n not in order] + order
        for name in order:
            proc = processes[name]
            if name == "containerd" and proc.alive():
                self.node.remove_containers()
            if proc.alive():
                stopped.append(name)
            proc.stop(grace=10.0)
        if "containerd" in processes:
            root = info.get("containerd-root")
            self.node.cleanup(Path(root) if root else None)
        if info.get("etcd-data"):
            shutil.rmtree(info["etcd-data"], ignore_errors=True)
        self.state.clear()
        return stopped

    def _drain_real_node(self, processes: Mapping[str, Process], timeout: float = 60.0) -> None:
        """Deletes the pods bound to the real node and waits (at most `timeout` s) until the
        kubelet has torn down their containers and networks, so nothing outlives `down`."""
        kubelet, apiserver = processes.get("kubelet"), processes.get("kube-apiserver")
        if not (kubelet and apiserver and kubelet.alive() and apiserver.alive()):
            return
        name = self.real_node_spec.name
        tls = _tls(
            self.pki_dir / "ca.crt",
            CertPair(self.pki_dir / "admin.crt", self.pki_dir / "admin.key"),
        )
        with httpx.Client(base_url=self.server, verify=tls, timeout=10.0) as api:
            try:
                pods = api.get("/api/v1/pods", params={"fieldSelector": f"spec.nodeName={name}"})
                for pod in pods.json().get("items", []):
                    meta = pod["metadata"]
                    api.delete(
                        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                        params={"gracePeriodSeconds": "0"},
                    )
            except (httpx.HTTPError, ValueError, KeyError):
                return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self.node.ctr("tasks", "ls", "-q", timeout=10.0)
            if tasks.returncode != 0 or not tasks.stdout.split():
                return
            time.sleep(0.5)


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return f"no log at {log}"
    return f"last lines of {log}:\n{text[-chars:]}"


def _tls(ca: Path, client: CertPair) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


def _http_ok(url: str, verify: ssl.SSLContext | bool = True) -> bool:
    try:
        return httpx.get(url, verify=verify, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _create(api: httpx.Client, path: str, body: Mapping[str, Any]) -> None:
    """POSTs `body`; an object that already exists (409) is fine. `ClusterError` otherwise."""
    response = api.post(path, json=body)
    if response.status_code not in (200, 201, 202, 409):
        raise ClusterError(f"creating {path} failed: {response.status_code} {response.text}")


def _allocatable(api: httpx.Client, node: str, resource: str, amount: int) -> bool:
    try:
        response = api.get(f"/api/v1/nodes/{node}")
    except httpx.HTTPError:
        return False
    allocatable = response.json().get("status", {}).get("allocatable", {})
    return bool(response.status_code == 200 and allocatable.get(resource) == str(amount))


def _node_ready(api: httpx.Client, name: str) -> bool:
    try:
        response = api.get(f"/api/v1/nodes/{name}")
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    conditions = response.json().get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
