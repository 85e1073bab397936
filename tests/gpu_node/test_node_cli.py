"""`gridlease-node init` writes a config file that the node's settings read back, and a unit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.common import CONFIG_FILE_ENV
from services.gpu_node.cli import main
from services.gpu_node.settings import NodeSettings


def test_init_writes_config_and_unit_that_settings_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("GRIDLEASE_")]:
        monkeypatch.delenv(key)
    config, unit = tmp_path / "node.toml", tmp_path / "gridlease-node.service"
    code = main([
        "init", "--config", str(config), "--unit", str(unit),
        "--chain-url", "ws://chain.example:9944", "--seed", "s1:7600", "--seed", "s2:7600",
        "--data-dir", str(tmp_path / "data"), "--simulate-gpus", "h100:8",
        "--price-per-gpu-block", "2500", "--label", "interconnect=nvlink", "--region", "eu-west",
    ])  # fmt: skip
    assert code == 0
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    settings = NodeSettings()
    assert settings.chain_url == "ws://chain.example:9944"
    assert settings.seeds == ["s1:7600", "s2:7600"]
    assert settings.simulate_gpus == "h100:8"
    assert settings.price_per_gpu_block == 2500
    assert settings.labels == {"interconnect": "nvlink"}
    assert settings.data_dir == tmp_path / "data"
    text = unit.read_text()
    assert f"Environment={CONFIG_FILE_ENV}={config}" in text
    assert "ExecStart=" in text and text.split("ExecStart=")[1].split("\n")[0].endswith(" run")

    # A second init does not clobber what an operator may have edited.
    assert main(["init", "--config", str(config), "--unit", str(unit)]) == 2


def test_settings_refuse_unknown_simulation_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEASE_NODE_SIMULATE_GPUS", "h900:1")
    with pytest.raises(ValueError, match="h900"):
        NodeSettings()
