"""Dashboards as code: the JSON checked into the chart is exactly what deploy/dashboards makes,
and every panel reads Prometheus through the dashboard's data source variable. (Every query
returning data from a running stack: test_dashboards_prometheus.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

from deploy.dashboards import DASHBOARDS, OUT_DIR, panel_queries, render_all
from tests.deploy.test_alerts import REPO


def test_checked_in_dashboards_match_the_code() -> None:
    made = render_all()
    on_disk = {path.name: path.read_text() for path in OUT_DIR.glob("*.json")}
    assert sorted(on_disk) == sorted(made), "run: .venv/bin/python -m deploy.dashboards"
    for name, text in made.items():
        assert on_disk[name] == text, f"{name} drifted: run .venv/bin/python -m deploy.dashboards"


def test_check_command_reports_drift_by_exit_status() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.dashboards", "--check"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    uids = set()
    for name in DASHBOARDS:
        model = json.loads((OUT_DIR / f"{name}.json").read_text())
        uids.add(model["uid"])
        assert [v["name"] for v in model["templating"]["list"]][0] == "datasource"
        panels = [p for p in model["panels"] if p["type"] != "row"]
        assert panels
        ids = [p["id"] for p in model["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in panels:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            assert panel["description"], panel["title"]
        assert len(list(panel_queries(model))) >= len(panels)
    assert len(uids) == len(DASHBOARDS)
