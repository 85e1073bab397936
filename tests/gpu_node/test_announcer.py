"""What the signed offer says: the GPUs really offered and the terms handed in at announce time."""

from __future__ import annotations

from pathlib import Path

from substrateinterface import Keypair

from services.common.grpc_gen.gridlease.v1 import offer_pb2
from services.gpu_node.announcer import OfferTerms, offer_for
from services.gpu_node.desired import host_resources
from services.gpu_node.gpus import build_gpu_set
from services.gpu_node.hardware.model import GpuDevice, Inventory
from services.gpu_node.store import NodeStore

from .utils import make_gpu

KEY = Keypair.create_from_uri("//NodeOfferTest", ss58_format=42)
A100 = "NVIDIA A100-SXM4-80GB"


def _offer(signed: offer_pb2.SignedOffer) -> offer_pb2.Offer:
    return offer_pb2.Offer.FromString(signed.offer)


def _terms(price: int, on_chain: int | None) -> OfferTerms:
    return OfferTerms("5Owner", "127.0.0.1:7700", price, "r", {}, gpus_on_chain=on_chain)


def test_offer_for_mixed_machine_offers_one_model_group(tmp_path: Path) -> None:
    # a100:2,t4:1 is two A100s on offer, not three A100 80GB.
    gpus: tuple[GpuDevice, ...] = (
        make_gpu(0, name=A100), make_gpu(1, name=A100), make_gpu(2, name="Tesla T4"),
    )  # fmt: skip
    gpu_set = build_gpu_set(Inventory("550", "12.4", gpus, True), NodeStore(tmp_path / "db"), A100)
    offer = _offer(offer_for(KEY, gpu_set, _terms(5, None), 1))
    assert (offer.gpu.model, offer.gpu.count) == (A100, 2)


def test_offer_for_counts_only_gpus_both_node_and_chain_have(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "db")
    build_gpu_set(Inventory("550", "12.4", tuple(make_gpu(i) for i in range(8)), True), store,
                  make_gpu(0).name)  # fmt: skip
    # GPU-3 is gone (slot 3), but the chain has not been told yet: it books slots 0..7, and the
    # offer may only promise the 7 that exist here and there.
    seven = tuple(make_gpu(i) for i in range(8) if i != 3)
    gpu_set = build_gpu_set(Inventory("550", "12.4", seven, True), store, make_gpu(0).name)
    assert gpu_set.mask == 0xF7
    offer = _offer(offer_for(KEY, gpu_set, _terms(1_250_000, 0xFF), 2))
    assert offer.gpu.count == 7
    # The chain has a slot the node never had (9): still 7.
    assert _offer(offer_for(KEY, gpu_set, _terms(1, 0x2F7), 3)).gpu.count == 7
    # The chain has not yet taken back a slot the node can run again (slot 0 missing there): 6.
    assert _offer(offer_for(KEY, gpu_set, _terms(1, 0xF6), 4)).gpu.count == 6
    assert offer.price_per_gpu_per_block == "1250000"


def test_host_resources_reads_cpus_and_memory(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemFree:  1 kB\nMemTotal:       24683520 kB\n")
    found = host_resources(meminfo)
    assert found.memory_mib == 24683520 // 1024
    assert found.cpu_millicores >= 1000 and found.cpu_millicores % 1000 == 0
