//! Builds `chain/runtime` for wasm32 only, into `$CARGO_TARGET_DIR/<profile>/wbuild/gridlease-runtime/`.
//! The native runtime (389 crates) is not compiled: this crate depends on nothing at run time.
fn main() {
	// The canonical path, as the runtime's own build names it: the wasm builder writes it into
	// its wrapper project, and the same text keeps the two builds from rebuilding each other.
	let runtime = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/Cargo.toml");
	let runtime = runtime.canonicalize().expect("chain/runtime/Cargo.toml exists");
	substrate_wasm_builder::WasmBuilder::new()
		.with_project(runtime)
		.expect("a Cargo.toml")
		.import_memory()
		.export_heap_base()
		.build();
}
