//! Builds `chain/runtime` for wasm32 only, into `$CARGO_TARGET_DIR/<profile>/wbuild/gridlease-runtime/`.
//! The native runtime (389 crates) is not compiled: this crate depends on nothing at run time.
fn main() {
	// The canonical path, as the runtime's own build names it: the wasm builder writes it into
	// its wrapper project, and the same text keeps the two builds from rebuilding each other.
	// Read when the script runs, not when it is compiled: cargo reuses a compiled build script
	// across checkouts at other paths (its fingerprint holds no absolute path), so a path baked in
	// with env!() can name a clone that no longer exists.
	let here = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
	let runtime = std::path::Path::new(&here).join("../runtime/Cargo.toml");
	let runtime = runtime.canonicalize().expect("chain/runtime/Cargo.toml exists");
	substrate_wasm_builder::WasmBuilder::new()
		.with_project(runtime)
		.expect("a Cargo.toml")
		.import_memory()
		.export_heap_base()
		.build();
}
