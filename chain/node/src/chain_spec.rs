//! Chain specs: `dev` (Alice alone validates) and `local` (Alice, Bob and Charlie), both built from
//! the runtime's wasm and its genesis presets, so the node and Chopsticks start from the same
//! genesis config. Any other id is read as a chain spec JSON file (an operator's own network,
//! written with `build-spec` and edited; see chain/README.md).

use gridlease_runtime::{genesis, WASM_BINARY};
use polkadot_sdk::{sc_chain_spec::ChainType, sc_service};

/// A chain spec of our runtime; no client extensions.
pub type ChainSpec = sc_service::GenericChainSpec;

/// The token's properties as wallets (polkadot.js) read them.
fn properties() -> sc_service::Properties {
	let mut p = sc_service::Properties::new();
	p.insert("tokenSymbol".into(), "GLT".into());
	p.insert("tokenDecimals".into(), 12.into());
	p.insert("ss58Format".into(), 42.into());
	p
}

fn from_preset(name: &str, id: &str, kind: ChainType, preset: &str) -> Result<ChainSpec, String> {
	let wasm = WASM_BINARY.ok_or("the node was built without the runtime's wasm (SKIP_WASM_BUILD?)")?;
	Ok(ChainSpec::builder(wasm, None)
		.with_name(name)
		.with_id(id)
		.with_chain_type(kind)
		.with_genesis_config_preset_name(preset)
		.with_properties(properties())
		.build())
}

/// One validator (Alice), for a single-node development chain.
pub fn development() -> Result<ChainSpec, String> {
	from_preset("Gridlease Development", "gridlease_dev", ChainType::Development, genesis::DEVELOPMENT_PRESET)
}

/// Three validators (Alice, Bob, Charlie) on one machine.
pub fn local_testnet() -> Result<ChainSpec, String> {
	from_preset("Gridlease Local Testnet", "gridlease_local", ChainType::Local, genesis::LOCAL_TESTNET_PRESET)
}

/// The chain spec for `--chain ID`: `dev`, `local`, or a path to a JSON chain spec.
pub fn load(id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
	Ok(match id {
		"dev" => Box::new(development()?),
		"" | "local" => Box::new(local_testnet()?),
		path => Box::new(ChainSpec::from_json_file(std::path::PathBuf::from(path))?),
	})
}
