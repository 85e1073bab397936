"""Background loops survive failures: each failure is logged (the first with its traceback)
and the loop backs off instead of retrying at full speed."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.customer_api.workers import MAX_BACKOFF_S, _every, backoff_s


def test_backoff_doubles_up_to_a_bound() -> None:
    assert [backoff_s(1.0, n) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert backoff_s(1.0, 50) == MAX_BACKOFF_S
    assert backoff_s(60.0, 3) == 60.0  # a slow loop is never made faster


def test_failing_loop_logs_traceback_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) < 50:
            raise RuntimeError("chain gone")

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(_every("probe", 0.01, step, stop))
        await asyncio.sleep(0.6)
        stop.set()
        await task

    with caplog.at_level(logging.WARNING, logger="services.customer_api.workers"):
        asyncio.run(run())
    failures = [r for r in caplog.records if r.getMessage() == "probe.failed"]
    assert failures and failures[0].exc_info is not None  # first one with its traceback
    assert not any(r.exc_info for r in failures[1:])
    # Without backing off 0.6 s of 0.01 s passes would be ~60 calls; doubling allows ~7.
    assert len(calls) <= 10
