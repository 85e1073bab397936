"""Every query of every dashboard, run by a real Prometheus (Debian's package) scraping the
whole stack (dev chain, two seeds, a GPU node with simulated H100s on Podman, the customer API)
while a lease runs: each must parse and return data, Grafana's variables and macros substituted
as Grafana would (`$__rate_interval` at four scrape intervals and more, "All" as `.*`). The
variables' own label_values queries must list values too. The alert rules are loaded as well,
so Prometheus evaluates them against the live series.

Queries that cannot return data here are listed in NO_DATA_HERE with the reason; for them the
test asserts that they parse and return nothing, so the list cannot go stale silently."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from deploy.dashboards import DASHBOARDS, OUT_DIR, panel_queries
from services.common.grpc_gen.gridlease.v1 import seed_pb2, seed_pb2_grpc
from services.customer_cli.cli import wait_until_running
from services.customer_cli.client import ApiClient
from services.devstack.demo import demo_customer, demo_ssh_key
from services.devstack.processes import wait_until
from services.devstack.stack import Ports, Stack
from tests.utils.ports import free_ports
from tests.utils.prometheus import Prometheus, start_prometheus

ALERTS = Path(__file__).resolve().parents[2] / "deploy/helm/gridlease/files/alerts.yaml"
SCRAPE_S = 1
# Grafana's $__rate_interval is max($__interval + scrape interval, 4 x scrape interval); a wider
# window here only makes each rate see more samples.
RATE_INTERVAL = "20s"
# Board 7 of the simulated node reports XID 13 (an application fault), so the XID panels have
# a real event to show.
NODE_FAULTS = "xid=7:13"
# (dashboard file, panel title, refId) -> why it has no data in this test.
NO_DATA_HERE = {
    ("chain-and-seeds", "Chain node peers", "A"): (
        "substrate_sub_libp2p_peers_count is a Substrate node's own metric; the dev chain is "
        "Chopsticks, which has no peers and no Prometheus endpoint"
    ),
}


class _FaultyNodeStack(Stack):
    def node_env(self) -> dict[str, str]:
        return {**super().node_env(), "GRIDLEASE_NODE_SIMULATE_GPU_FAULTS": NODE_FAULTS}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    p = free_ports(8)
    ports = Ports(chain=p[0], seeds=(p[1], p[2]), seed_metrics=(p[3], p[4]), node=p[5],
                  node_metrics=p[6], api=p[7])  # fmt: skip
    s = _FaultyNodeStack(root=tmp_path_factory.mktemp("stack"), ports=ports, say=lambda _m: None)
    s.up()
    yield s
    s.down()


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    ports = stack.ports
    jobs = {
        "gridlease-api": [f"127.0.0.1:{ports.api}"],
        "gridlease-seed": [f"127.0.0.1:{port}" for port in ports.seed_metrics],
        "gridlease-node": [f"127.0.0.1:{ports.node_metrics}"],
    }
    server = start_prometheus(
        tmp_path_factory.mktemp("prometheus"), jobs, scrape_interval_s=SCRAPE_S,
        rule_files=(ALERTS,),
    )  # fmt: skip
    yield server
    server.stop()


@pytest.fixture(scope="module")
def running_lease(stack: Stack, prometheus: Prometheus) -> Iterator[tuple[int, float]]:
    """A 2-GPU lease running on the node; (lease id, when it ran, epoch seconds)."""
    demo_ssh_key(stack.root)
    with ApiClient(demo_customer(stack.api_url, stack.root)) as api:
        offer = api.get("/offers", params={"min_gpus": 2, "limit": 1})["data"][0]
        key = (stack.root / "demo_ed25519.pub").read_text().strip()
        lease = api.post("/leases", json={
            "machine_id": offer["machine_id"], "gpus": 2, "duration_blocks": 2000,
            "image": "localhost/gridlease-sshd:1", "ssh_public_key": key,
        })  # fmt: skip
        lease_id = int(lease["lease_id"])
        wait_until_running(api, lease_id, out=io.StringIO())
        yield lease_id, time.time()
        api.post(f"/leases/{lease_id}/terminate")


def _reject_one_announcement(stack: Stack) -> None:
    """An empty announcement: a seed refuses it (counted by reason, as operators see it)."""
    with grpc.insecure_channel(stack.seed_endpoints[0]) as channel:
        stub = seed_pb2_grpc.SeedServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Announce(seed_pb2.AnnounceRequest(), timeout=10)
    assert refused.value.code() is not grpc.StatusCode.OK


def substitute(expr: str, range_s: int) -> str:
    """Grafana's macros and this test's variable choices ("All": `.*`) put into `expr`."""
    out = (expr.replace("$__rate_interval", RATE_INTERVAL)
           .replace("$__interval", f"{SCRAPE_S}s")
           .replace("$__range", f"{range_s}s"))  # fmt: skip
    out = re.sub(r"\$\{?(Hostname|lease)\}?", ".*", out)
    assert "$" not in out, f"unsubstituted variable in {out}"
    return out


def _series(answer: dict[str, object]) -> int:
    data = answer.get("data")
    assert isinstance(data, dict)
    result = data.get("result")
    assert isinstance(result, list)
    return len(result)


def test_every_dashboard_query_returns_data_while_a_lease_runs(
    stack: Stack, prometheus: Prometheus, running_lease: tuple[int, float]
) -> None:
    lease_id, _ = running_lease
    _reject_one_announcement(stack)
    queries = []
    for name in DASHBOARDS:
        model = json.loads((OUT_DIR / f"{name}.json").read_text())
        for title, ref, expr in panel_queries(model):
            queries.append((name, title, ref, expr))
    assert len(queries) >= 40
    started = time.time()

    def evaluate() -> dict[tuple[str, str, str], dict[str, object]]:
        end = time.time()
        range_s = max(int(end - started), 30)
        return {
            (name, title, ref): prometheus.query_range(
                substitute(expr, range_s), started - 5, end, SCRAPE_S
            )
            for name, title, ref, expr in queries
        }

    answers: dict[tuple[str, str, str], dict[str, object]] = {}

    def all_answered() -> bool:
        # Rates need a few scrapes, heartbeats a few blocks: wait (bounded) until every
        # query that can have data has it.
        answers.update(evaluate())
        return all(_series(a) > 0 for key, a in answers.items() if key not in NO_DATA_HERE)

    try:
        wait_until("every dashboard query to return data", all_answered, 240)
    except TimeoutError:
        pass  # the assertions below name each query without data
    for key, answer in answers.items():
        assert answer["status"] == "success", (key, answer)
    empty = [key for key, a in answers.items() if _series(a) == 0 and key not in NO_DATA_HERE]
    assert empty == [], f"queries without data: {empty}"
    for key, reason in NO_DATA_HERE.items():
        assert key in answers, f"NO_DATA_HERE names no query: {key}"
        assert _series(answers[key]) == 0, f"{key} now has data: drop it ({reason})"

    # The lease is on the per-lease panels under its own id.
    per_lease = answers[("provider", "GPUs per lease", "A")]
    data = per_lease["data"]
    assert isinstance(data, dict)
    assert {s["metric"]["lease_id"] for s in data["result"]} >= {str(lease_id)}


def test_every_dashboard_variable_lists_values(
    prometheus: Prometheus, running_lease: tuple[int, float]
) -> None:
    checked = 0
    for name in DASHBOARDS:
        model = json.loads((OUT_DIR / f"{name}.json").read_text())
        for variable in model["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
            assert match, variable["query"]
            metric, label = match.groups()

            def listed(metric: str = metric, label: str = label) -> bool:
                answer = prometheus.label_values(label, metric)
                assert answer["status"] == "success", answer
                return bool(answer["data"])

            wait_until(f"values of ${variable['name']}", listed, 120)
            checked += 1
    assert checked >= 2
