# Sourced by the chain scripts: one toolchain (Debian's rustc-web 1.96, which has the std sources the
# wasm target needs) for native and wasm, and one build cache outside the clone.
export PATH="/usr/bin:$PATH"
export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc
export GRIDLEASE_CACHE="${GRIDLEASE_CACHE:-$HOME/.cache/gridlease}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$GRIDLEASE_CACHE/cargo-target}"
# Rust >= 1.96 no longer passes --allow-undefined to wasm-ld; runtime host functions are imports.
export WASM_BUILD_RUSTFLAGS="${WASM_BUILD_RUSTFLAGS:--C link-arg=--allow-undefined}"
# The dev chain's wasm (build.sh: plain cargo, no native runtime, no wasm-opt), in a target dir
# of its own so it never waits for a native build's lock.
# services/devstack/doctor.py dev_wasm() names the same file.
export DEV_WASM_TARGET_DIR="$GRIDLEASE_CACHE/dev-wasm-target"
export DEV_WASM="$DEV_WASM_TARGET_DIR/wasm32v1-none/release/gridlease_runtime.wasm"
# The wasm builder looks for Cargo.lock above its out dir, which is in the cache, not the clone.
export WASM_BUILD_WORKSPACE_HINT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TERM_COLOR=never
