//! The command line: `sc-cli`'s standard run options and subcommands.

use polkadot_sdk::sc_cli;

/// `gridlease-node [SUBCOMMAND] [OPTIONS]`: with no subcommand, runs the node.
#[derive(Debug, clap::Parser)]
pub struct Cli {
	#[command(subcommand)]
	pub subcommand: Option<Subcommand>,

	#[clap(flatten)]
	pub run: sc_cli::RunCmd,
}

/// The maintenance commands every Substrate node has.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
	/// Key management: generate, inspect, and `insert` a validator's keys into its keystore.
	#[command(subcommand)]
	Key(sc_cli::KeySubcommand),

	/// Write a chain spec (`dev`, `local`, or a JSON file) as JSON; `--raw` for genesis storage.
	BuildSpec(sc_cli::BuildSpecCmd),

	/// Write a chain spec without opening a database (the newer form of `build-spec`).
	ExportChainSpec(sc_cli::ExportChainSpecCmd),

	/// Validate blocks.
	CheckBlock(sc_cli::CheckBlockCmd),

	/// Export blocks.
	ExportBlocks(sc_cli::ExportBlocksCmd),

	/// Export the state of a given block into a chain spec.
	ExportState(sc_cli::ExportStateCmd),

	/// Import blocks.
	ImportBlocks(sc_cli::ImportBlocksCmd),

	/// Remove the whole chain.
	PurgeChain(sc_cli::PurgeChainCmd),

	/// Revert the chain to a previous state.
	Revert(sc_cli::RevertCmd),

	/// The database's metadata.
	ChainInfo(sc_cli::ChainInfoCmd),

	/// Runtime benchmarks (built with `--features runtime-benchmarks`).
	#[cfg(feature = "runtime-benchmarks")]
	#[command(subcommand)]
	Benchmark(BenchmarkCmd),
}

/// The benchmarks this node runs: only the pallet benchmarks that produce `weights.rs` (the
/// node has no other benchmark to offer its operators yet).
#[cfg(feature = "runtime-benchmarks")]
#[derive(Debug, clap::Subcommand)]
pub enum BenchmarkCmd {
	/// Run a pallet's benchmarks against a runtime wasm (`--runtime`) and write its weights.
	Pallet(polkadot_sdk::frame_benchmarking_cli::PalletCmd),
}
