"""The API's own metrics: leases by state from the database, GPUs offered and leased from the
offer index, the indexer's lag behind the finalized head, and money counted exactly."""

from __future__ import annotations

import uuid
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from services.customer_api.core.db import make_engine
from services.customer_api.core.migrate import upgrade
from services.customer_api.metrics import ApiMetrics, LeaseStateCollector
from services.customer_api.models import Customer, LeaseRecord, LeaseState
from services.customer_api.offers.index import OfferIndex
from tests.customer_api.test_offer_index import _offer, _on_chain
from tests.utils.api_db import new_sqlite_database


def _samples(metrics: ApiMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_indexer_lag_is_finalized_head_minus_indexed_block() -> None:
    metrics = ApiMetrics.create()
    assert _samples(metrics)[("gridlease_api_indexer_lag_blocks", ())] == 0.0  # nothing seen
    metrics.saw_best(120)
    metrics.saw_finalized(118)
    metrics.indexed(100)
    samples = _samples(metrics)
    assert samples[("gridlease_api_indexer_lag_blocks", ())] == 18.0
    assert samples[("gridlease_api_chain_head_block", (("head", "best"),))] == 120.0
    assert samples[("gridlease_api_chain_head_block", (("head", "finalized"),))] == 118.0
    assert samples[("gridlease_api_indexed_block", ())] == 100.0


def test_payments_are_counted_exactly_in_smallest_units() -> None:
    metrics = ApiMetrics.create()
    metrics.paid(2**60 + 1, 3)
    metrics.paid(1, 0)
    assert metrics.provider_pay.value == 2**60 + 2 and metrics.protocol_fees.value == 3
    samples = _samples(metrics)
    assert samples[("gridlease_api_protocol_fee_units_total", ())] == 3.0


def test_chain_rpc_errors_are_exported_by_kind_from_zero() -> None:
    metrics = ApiMetrics.create()
    metrics.chain_rpc_error("unavailable")
    samples = _samples(metrics)
    assert samples[("gridlease_chain_rpc_errors_total", (("kind", "unavailable"),))] == 1.0
    assert samples[("gridlease_chain_rpc_errors_total", (("kind", "unreadable"),))] == 0.0


def test_leases_by_state_are_counted_in_the_database(tmp_path: Path) -> None:
    engine = make_engine(new_sqlite_database(tmp_path))
    upgrade(engine)
    with Session(engine) as session:
        customer = Customer(name="c", address="5C" + "x" * 46)
        session.add(customer)
        session.flush()
        for state in (LeaseState.RUNNING, LeaseState.RUNNING, LeaseState.ENDED):
            session.add(LeaseRecord(
                customer_id=customer.id, customer_address=customer.address,
                request_hash=uuid.uuid4().hex, machine_id="0x" + "ab" * 32,
                endpoint="127.0.0.1:7700", gpus=1, duration_blocks=10, spec_json="{}",
                spec_hash="0x" + "00" * 32, chain_state=state,
            ))  # fmt: skip
        session.commit()
    metrics = ApiMetrics.create()
    metrics.registry.register(LeaseStateCollector(engine))
    samples = _samples(metrics)
    leases = {dict(k[1])["state"]: v for k, v in samples.items() if k[0] == "gridlease_api_leases"}
    assert leases == {"submitting": 0, "pending": 0, "starting": 0, "running": 2, "ended": 1}


def test_database_down_exports_no_lease_counts_rather_than_failing_the_scrape(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'api.db'}")
    metrics = ApiMetrics.create()
    metrics.registry.register(LeaseStateCollector(engine))
    assert not [k for k in _samples(metrics) if k[0] == "gridlease_api_leases"]


def test_gpu_totals_count_offered_and_chain_taken_gpus() -> None:
    index = OfferIndex(capacity=2)
    first, _ = _offer(gpu_count=8)
    second, _ = _offer(gpu_count=4)
    unchecked, _ = _offer(gpu_count=2)
    for offer in (first, second, unchecked):
        assert index.upsert(offer)
    index.set_chain(bytes(first.machine_id), _on_chain(first, free=5))
    index.set_chain(bytes(second.machine_id), _on_chain(second, free=4))
    assert index.gpu_totals() == (14, 3)
    index.remove(bytes(first.machine_id))
    assert index.gpu_totals() == (6, 0)
