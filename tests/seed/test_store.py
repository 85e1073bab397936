"""OfferStore on a real SQLite file: sequence rules, durability, expiry, paging, digest root."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.common import DuplicateSequence, StaleSequence, open_signed_offer
from services.seed.store import OfferFilterSpec, OfferRecord, OfferStore

from .harness import make_offer


def _record(sequence: int = 1, key: object = None, **fields: object) -> OfferRecord:
    signed, _ = make_offer(key, sequence=sequence, **fields)  # type: ignore[arg-type]
    return OfferRecord.from_offer(open_signed_offer(signed), signed)


def test_put_offer_keeps_newest_sequence(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = OfferStore(tmp_path / "offers.db")
        await store.open()
        try:
            signed, key = make_offer(sequence=2)
            rec = OfferRecord.from_offer(open_signed_offer(signed), signed)
            await store.put(rec)
            older = make_offer(key, sequence=1)[0]
            with pytest.raises(StaleSequence):
                await store.put(OfferRecord.from_offer(open_signed_offer(older), older))
            with pytest.raises(DuplicateSequence):
                await store.put(rec)
            newer = make_offer(key, sequence=3)[0]
            await store.put(OfferRecord.from_offer(open_signed_offer(newer), newer))
            held = store.get(rec.machine_id)
            assert held is not None and held.sequence == 3 and len(store) == 1
        finally:
            await store.close()

    asyncio.run(scenario())


def test_reopen_store_restores_offers(tmp_path: Path) -> None:
    records = [_record() for _ in range(3)]

    async def write() -> None:
        store = OfferStore(tmp_path / "offers.db")
        await store.open()
        await asyncio.gather(*(store.put(r) for r in records))  # one group commit
        await store.close()

    async def read() -> list[bytes]:
        store = OfferStore(tmp_path / "offers.db")
        await store.open()
        try:
            return [r.signed_offer for r in store.scan()]
        finally:
            await store.close()

    asyncio.run(write())
    restored = asyncio.run(read())
    assert sorted(restored) == sorted(r.signed_offer for r in records)


def test_expire_offers_removes_from_disk(tmp_path: Path) -> None:
    old, fresh = _record(timestamp_ms=1_000), _record(timestamp_ms=10_000)
    events: list[tuple[str, bytes]] = []

    async def scenario() -> int:
        store = OfferStore(tmp_path / "offers.db")
        await store.open()
        store.subscribe(lambda kind, rec: events.append((kind, rec.machine_id)))
        await store.bulk_load([old, fresh])
        gone = await store.expire(cutoff_ms=5_000)
        assert [r.machine_id for r in gone] == [old.machine_id]
        assert store.get(old.machine_id) is None and store.get(fresh.machine_id) is not None
        await store.close()
        reopened = OfferStore(tmp_path / "offers.db")
        await reopened.open()
        count = len(reopened)
        await reopened.close()
        return count

    assert asyncio.run(scenario()) == 1
    assert events[2:] == [("expired", old.machine_id)]
    assert sorted(events[:2]) == sorted([("stored", old.machine_id), ("stored", fresh.machine_id)])


def test_query_offers_pages_and_filters(tmp_path: Path) -> None:
    records = [_record(gpu_count=n) for n in (1, 2, 4, 8, 8)]

    async def scenario() -> tuple[list[int], bytes, list[int]]:
        store = OfferStore(tmp_path / "offers.db")
        await store.open()
        await store.bulk_load(records)
        spec = OfferFilterSpec(min_gpu_count=2)
        first, after = store.query(spec.matches, after=b"", limit=2)
        rest, end = store.query(spec.matches, after=after, limit=10)
        await store.close()
        return [r.gpu_count for r in first + rest], end, [len(first), len(rest)]

    counts, end, sizes = asyncio.run(scenario())
    assert sorted(counts) == [2, 4, 8, 8]
    assert end == b"" and sizes == [2, 2]


def test_digest_root_changes_with_content(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, bytes, bytes]:
        store = OfferStore(tmp_path / "offers.db")
        await store.open()
        empty = store.root()
        signed, key = make_offer(sequence=1)
        await store.put(OfferRecord.from_offer(open_signed_offer(signed), signed))
        one = store.root()
        newer = make_offer(key, sequence=2)[0]
        await store.put(OfferRecord.from_offer(open_signed_offer(newer), newer))
        two = store.root()
        await store.close()
        return empty, one, two

    empty, one, two = asyncio.run(scenario())
    assert len({empty, one, two}) == 3


def test_failed_commit_changes_nothing_and_fails_only_its_writer(tmp_path: Path) -> None:
    # Item 18/27: sequence 2^63 does not fit SQLite's INTEGER. Admission refuses it now; the store
    # must still hold nothing of a record whose commit failed, and a good record that shared the
    # group commit must be stored all the same.
    bad, good = _record(sequence=2**63), _record()
    events: list[tuple[str, bytes]] = []

    async def scenario() -> tuple[list[object], int, bytes, bytes]:
        store = OfferStore(tmp_path / "offers.db")
        await store.open()
        store.subscribe(lambda kind, rec: events.append((kind, rec.machine_id)))
        empty_root = store.root()
        outcomes = await asyncio.gather(store.put(bad), store.put(good), return_exceptions=True)
        assert store.get(bad.machine_id) is None
        held = len(store)
        root = store.root()
        await store.close()
        reopened = OfferStore(tmp_path / "offers.db")
        await reopened.open()
        assert reopened.get(bad.machine_id) is None and reopened.get(good.machine_id) is not None
        await reopened.close()
        return outcomes, held, empty_root, root

    outcomes, held, empty_root, root = asyncio.run(scenario())
    assert isinstance(outcomes[0], OverflowError) and outcomes[1] is None
    assert held == 1 and root != empty_root
    assert events == [("stored", good.machine_id)]  # watchers never saw the refused record


def test_concurrent_puts_keep_the_highest_sequence(tmp_path: Path) -> None:
    # Newer and older sequences of one machine in the same group commit: the newest wins on disk
    # and in memory, the older caller is told StaleSequence.
    signed, key = make_offer(sequence=7)
    newer = OfferRecord.from_offer(open_signed_offer(signed), signed)
    older_signed = make_offer(key, sequence=6)[0]
    older = OfferRecord.from_offer(open_signed_offer(older_signed), older_signed)

    async def scenario() -> tuple[list[object], int, int]:
        store = OfferStore(tmp_path / "offers.db")
        await store.open()
        outcomes = await asyncio.gather(store.put(newer), store.put(older), return_exceptions=True)
        in_memory = store.get(newer.machine_id)
        await store.close()
        reopened = OfferStore(tmp_path / "offers.db")
        await reopened.open()
        on_disk = reopened.get(newer.machine_id)
        await reopened.close()
        assert in_memory is not None and on_disk is not None
        return outcomes, in_memory.sequence, on_disk.sequence

    outcomes, in_memory, on_disk = asyncio.run(scenario())
    assert outcomes[0] is None and isinstance(outcomes[1], StaleSequence)
    assert in_memory == on_disk == 7
