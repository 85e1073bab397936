"""services.common's __all__ names only things defined in its private modules, as the same
objects, and every private module declares __all__."""

from __future__ import annotations

import importlib
from pathlib import Path

import services.common

COMMON = Path(services.common.__file__).parent


def test_export_common_names_come_from_private_modules() -> None:
    defined: dict[str, object] = {}
    for path in sorted(COMMON.glob("_*.py")):
        if path.stem == "__init__":
            continue
        module = importlib.import_module(f"services.common.{path.stem}")
        assert hasattr(module, "__all__"), f"{path.name} has no __all__"
        defined.update({name: getattr(module, name) for name in module.__all__})
    for name in services.common.__all__:
        assert name in defined, f"{name} is exported but no private module defines it"
        assert getattr(services.common, name) is defined[name]
    assert len(services.common.__all__) == len(set(services.common.__all__))
