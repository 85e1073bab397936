"""The committed stubs are exactly what scripts/gen_protos.py produces from proto/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gen_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_protos"] = module
    spec.loader.exec_module(module)
    return module


def test_generate_stubs_matches_committed(tmp_path: Path) -> None:
    committed = ROOT / "services" / "common" / "grpc_gen"
    written = _gen_module().generate(tmp_path / "grpc_gen")
    fresh = {p.relative_to(tmp_path / "grpc_gen"): p.read_bytes() for p in written}
    on_disk = {
        p.relative_to(committed): p.read_bytes()
        for p in committed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sorted(fresh) == sorted(on_disk)
    stale = [str(name) for name, data in fresh.items() if on_disk[name] != data]
    assert not stale, f"regenerate with scripts/gen_protos.py: {stale}"


def test_import_stubs_uses_package_paths() -> None:
    from services.common.grpc_gen.gridlease.v1 import node_pb2_grpc, seed_pb2

    assert seed_pb2.DESCRIPTOR.package == "gridlease.v1"
    assert hasattr(node_pb2_grpc, "NodeServiceStub")
