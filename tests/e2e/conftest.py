"""A test marked `on_validators` concerns our node's network (killing a validator) and has no
meaning on Chopsticks, a single process: its Chopsticks instance is not collected at all (rather
than collected and skipped)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "on_validators: runs only on the three-validator network")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_chopsticks = callspec is not None and callspec.params.get("deployment") == "chopsticks"
        only_validators = item.get_closest_marker("on_validators") is not None
        (dropped if on_chopsticks and only_validators else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
