"""The chart's alert rules through Prometheus' own tools: `promtool check rules` (syntax and
PromQL) and `promtool test rules` (tests/deploy/alerts_test.yaml: each alert fires on the series
that should raise it, with its labels and text, and stays quiet on healthy series)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "helm" / "gridlease" / "files" / "alerts.yaml"
ALERT_TESTS = Path(__file__).parent / "alerts_test.yaml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    # Debian's `prometheus` package (scripts/system-deps.sh, run by scripts/test.sh).
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_alert_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_pass_their_unit_tests() -> None:
    result = _promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - fired == set()
    for name in ("GridleaseNodeHeartbeatsMissing", "GridleaseGpuCountDropped",
                 "GridleaseGpuXidError", "GridleaseIndexerLagging", "GridleaseApiErrorRate",
                 "GridleaseSeedPeerUnreachable", "GridleaseFinalityStalled"):  # fmt: skip
        assert name in alerts


def test_every_alert_has_severity_summary_and_description() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
