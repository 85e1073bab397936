"""Grafana dashboards as code (grafana-foundation-sdk). `python -m deploy.dashboards` writes
them as JSON into the chart (deploy/helm/gridlease/dashboards/), where they are checked in;
`--check` fails when a checked-in file differs from what the code makes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from deploy.dashboards import chain_seeds, platform, provider

__all__ = ["DASHBOARDS", "OUT_DIR", "panel_queries", "render", "render_all", "write_all"]

OUT_DIR = Path(__file__).resolve().parents[1] / "helm" / "gridlease" / "dashboards"
# File name (without .json) -> builder.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "platform-overview": platform.build,
    "provider": provider.build,
    "chain-and-seeds": chain_seeds.build,
}


def render(build: Callable[[], Dashboard]) -> str:
    """The dashboard's JSON, keys sorted, ending in a newline (stable for diffs). Panels are
    numbered in order (the SDK leaves ids unset) and get an empty `options` object where the
    SDK leaves it null, so Grafana applies each panel plugin's defaults."""
    model = json.loads(JSONEncoder().encode(build().build()))
    number = 0
    for panel in model.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            number += 1
            inner["id"] = number
            if inner.get("options") is None and inner.get("type") != "row":
                inner["options"] = {}
    return json.dumps(model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    return {f"{name}.json": render(build) for name, build in DASHBOARDS.items()}


def write_all(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def panel_queries(model: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(panel title, target refId, expr) of every Prometheus target of a dashboard's JSON,
    rows' nested panels included."""
    for panel in model.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []) or []:
                if "expr" in target:
                    yield inner.get("title", ""), str(target.get("refId", "")), target["expr"]


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded
