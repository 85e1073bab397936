#!/usr/bin/env bash
# Builds the runtime's wasm, and nothing native, then writes the dev chain spec from it: all the
# dev chain needs. Plain `cargo rustc` for wasm32v1-none with the flags substrate-wasm-builder
# passes, not the builder itself: the builder always compiles wasm-opt's C++ (binaryen, about
# 15 minutes on 2 cores) to post-process a blob that Chopsticks and our node run as well
# without it. About 4-5 minutes cold on 2 cores (~250 crates, cargo prints each), seconds warm.
# The wasm is built without `std` and without `runtime-benchmarks`, as a production runtime.
# Everything lands in the cache outside the clone ($DEV_WASM, see env.sh). The native runtime
# and the node (which embeds the builder's wasm) are built by the pallet tests (test.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/.."
t0=$SECONDS
echo "==> cargo rustc: the runtime's wasm (target: $DEV_WASM_TARGET_DIR)"
# What substrate-wasm-builder 35 sets for wasm32v1-none (its wasm_project.rs): export the table;
# import the memory and export __heap_base (the runtime's WasmBuilder options, which the
# executor needs); cfg substrate_runtime (sp-io's wasm side); panic=abort and thin LTO
# (its release profile); then WASM_BUILD_RUSTFLAGS, as the builder appends it (env.sh: Rust >=
# 1.96 needs --allow-undefined, host functions are imports).
export RUSTFLAGS="-C link-arg=--export-table -C link-arg=--import-memory \
-C link-arg=--export=__heap_base --cfg substrate_runtime $WASM_BUILD_RUSTFLAGS"
unset CARGO_ENCODED_RUSTFLAGS
export CARGO_PROFILE_RELEASE_PANIC=abort CARGO_PROFILE_RELEASE_LTO=thin
CARGO_TARGET_DIR="$DEV_WASM_TARGET_DIR" cargo rustc --locked -p gridlease-runtime --lib \
  --crate-type cdylib --target wasm32v1-none --release --no-default-features
echo "<== chain build: $((SECONDS - t0)) s"
bash "$here/write-chain-spec.sh" "$DEV_WASM"
