"""The dev chain spec written from the runtime's wasm alone (chain/scripts/write-chain-spec.sh,
which runs the runtime's genesis builder inside the wasm with Chopsticks' executor) is the native
writer's (chain/runtime/src/bin/chain_spec.rs) on every key but the two clock keys, and
Chopsticks boots from it and builds blocks. So `dev up` needs no native runtime build.

The equivalence test feeds the wasm the native writer embeds (its spec's `:code`) to the wasm
writer, so both describe one runtime even when the cached builds differ in age. It needs the
native writer, which the pallet-tests phase of `./gridlease test` builds (chain/scripts/test.sh);
without it the test fails, saying how to build it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from substrateinterface import Keypair

from services.common import SS58_FORMAT, TOKEN_UNIT, new_keypair
from services.devstack.doctor import dev_wasm
from services.devstack.stack import REPO
from tests.utils.devchain import DevChain, start_dev_chain

CACHE = Path(os.environ.get("GRIDLEASE_CACHE") or Path.home() / ".cache" / "gridlease")
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or CACHE / "cargo-target")
NATIVE_WRITER = TARGET / "debug" / "gridlease-chain-spec"
WASM = dev_wasm(CACHE)  # the dev chain's (chain/scripts/build.sh)
WRITE = REPO / "chain" / "scripts" / "write-chain-spec.sh"
CODE = "0x3a636f6465"  # ":code"
# twox128("Timestamp") ++ twox128("Now"), twox128("Aura") ++ twox128("CurrentSlot")
TIMESTAMP_NOW = "0xf0c365c3cf59d671eb72da0e7a4113c49f1f0515f462cdcf84e0f1d6045dfcbb"
AURA_SLOT = "0x57f8dc2f5ab09467896f47300f04243806155b3cd9a8c9e5e9a23fd5dc13a5ed"
SLOT_MS = 1000  # the runtime's SLOT_DURATION


def write_from_wasm(wasm: Path, out: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    subprocess.run([str(WRITE), str(wasm), str(out)], check=True, timeout=300)
    print(f"chain spec from the wasm: {time.monotonic() - t0:.2f} s")
    spec: dict[str, Any] = json.loads(out.read_text())
    return spec


def u64(value: str) -> int:
    return int.from_bytes(bytes.fromhex(value[2:]), "little")


def test_spec_from_wasm_equals_native_but_for_the_clock(tmp_path: Path) -> None:
    assert NATIVE_WRITER.is_file(), (
        f"the native chain-spec writer is not built ({NATIVE_WRITER}): run "
        "bash chain/scripts/test.sh (the pallet tests phase of ./gridlease test)"
    )
    t0 = time.monotonic()
    subprocess.run([str(NATIVE_WRITER), str(tmp_path / "native.json")], check=True, timeout=120)
    print(f"native chain-spec writer: {time.monotonic() - t0:.2f} s")
    native_text = (tmp_path / "native.json").read_text()
    native = json.loads(native_text)
    code = native["genesis"]["raw"]["top"][CODE]
    (tmp_path / "runtime.wasm").write_bytes(bytes.fromhex(code[2:]))

    before_ms = int(time.time() * 1000)
    spec = write_from_wasm(tmp_path / "runtime.wasm", tmp_path / "wasm.json")
    after_ms = int(time.time() * 1000)

    top, native_top = spec["genesis"]["raw"]["top"], native["genesis"]["raw"]["top"]
    assert top.keys() == native_top.keys()
    clock = {TIMESTAMP_NOW, AURA_SLOT}
    assert {k for k in top if top[k] != native_top[k]} <= clock
    assert top[CODE] == code  # the wasm itself, byte for byte
    # The clock starts at the current slot, and the timestamp is that slot's start.
    slot = u64(top[AURA_SLOT])
    assert before_ms // SLOT_MS <= slot <= after_ms // SLOT_MS
    assert u64(top[TIMESTAMP_NOW]) == slot * SLOT_MS
    # The rest of the file too, to the byte: the same JSON text once the clock is the same.
    text = (tmp_path / "wasm.json").read_text()
    for key in clock:
        text = text.replace(f'"{key}": "{top[key]}"', f'"{key}": "{native_top[key]}"')
    assert text == native_text


def test_dev_wasm_has_the_builders_genesis_but_for_code_and_clock(tmp_path: Path) -> None:
    """The dev chain's wasm (plain cargo, no substrate-wasm-builder, no runtime-benchmarks)
    writes the genesis of the wasm the builder makes for the node, but for the code itself."""
    assert WASM.is_file() and NATIVE_WRITER.is_file(), (
        f"build the dev wasm ({WASM}: bash chain/scripts/build.sh) and the native writer "
        f"({NATIVE_WRITER}: bash chain/scripts/test.sh)"
    )
    subprocess.run([str(NATIVE_WRITER), str(tmp_path / "native.json")], check=True, timeout=120)
    native_top = json.loads((tmp_path / "native.json").read_text())["genesis"]["raw"]["top"]
    top = write_from_wasm(WASM, tmp_path / "dev.json")["genesis"]["raw"]["top"]
    assert top.keys() == native_top.keys()
    assert {k for k in top if top[k] != native_top[k]} <= {CODE, TIMESTAMP_NOW, AURA_SLOT}
    assert bytes.fromhex(top[CODE][2:]) == WASM.read_bytes()


@pytest.fixture(scope="module")
def chain_from_wasm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevChain]:
    assert WASM.is_file(), (
        f"the runtime's wasm is not built ({WASM}): run bash chain/scripts/build.sh "
        "(the chain build phase of ./gridlease test)"
    )
    out = tmp_path_factory.mktemp("spec-from-wasm")
    write_from_wasm(WASM, out / "gridlease-dev.json")
    spec = str(out / "gridlease-dev.json")
    chain = start_dev_chain(out, ready_timeout=300, extra_args=("--chain-spec", spec))
    yield chain
    chain.stop()


def test_chopsticks_boots_from_the_spec_written_from_wasm(chain_from_wasm: DevChain) -> None:
    with chain_from_wasm.client() as chain:
        head = chain.block_number()  # Chopsticks may have built one block at start
        assert head <= 1
        alice = Keypair.create_from_uri("//Alice", ss58_format=SS58_FORMAT)
        assert chain.free_balance(alice.ss58_address) == 1_000_000 * TOKEN_UNIT
        chain.dev_new_blocks(1)
        assert chain.block_number() == head + 1
        dest, _ = new_keypair()
        receipt = chain.transfer(alice, dest.ss58_address, TOKEN_UNIT)
        assert receipt.block_number == head + 2
        assert chain.free_balance(dest.ss58_address) == TOKEN_UNIT
