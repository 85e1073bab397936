//! The genesis presets: Alice..Ferdie funded, Alice the sudo key, the treasury endowed with the
//! existential deposit so fees can be paid into it; the validators (Aura and GRANDPA authorities)
//! are Alice alone in [`DEVELOPMENT_PRESET`] and Alice, Bob and Charlie in
//! [`LOCAL_TESTNET_PRESET`].
//!
//! One definition, three readers: the runtime serves the presets by name (what
//! `chain/devchain/chain-spec-from-wasm.cjs` builds the Chopsticks dev chain from, executing the
//! wasm alone, and what the node's `dev` and `local` chain specs are), and the native
//! [`dev_genesis_storage`] builds the development one directly.

use super::*;
use polkadot_sdk::{
	sp_consensus_aura::sr25519::AuthorityId as AuraId,
	sp_consensus_grandpa::AuthorityId as GrandpaId,
	sp_keyring::{Ed25519Keyring, Sr25519Keyring},
};

/// Name of the one-validator genesis preset (`GenesisBuilder_get_preset`): the SDK's standard one.
pub const DEVELOPMENT_PRESET: &str = polkadot_sdk::sp_genesis_builder::DEV_RUNTIME_PRESET;
/// Name of the three-validator (Alice, Bob, Charlie) preset: the SDK's standard one.
pub const LOCAL_TESTNET_PRESET: &str = polkadot_sdk::sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET;
/// Every preset the runtime serves.
pub const PRESETS: [&str; 2] = [DEVELOPMENT_PRESET, LOCAL_TESTNET_PRESET];

/// Each dev account starts with a million tokens.
pub const DEV_ENDOWMENT: Balance = 1_000_000 * UNIT;

/// The six well-known dev accounts.
pub fn dev_accounts() -> alloc::vec::Vec<AccountId> {
	[
		Sr25519Keyring::Alice,
		Sr25519Keyring::Bob,
		Sr25519Keyring::Charlie,
		Sr25519Keyring::Dave,
		Sr25519Keyring::Eve,
		Sr25519Keyring::Ferdie,
	]
	.iter()
	.map(|k| k.to_account_id())
	.collect()
}

/// A dev validator's keys: Aura (sr25519) and GRANDPA (ed25519) from the same well-known seed.
pub type DevValidator = (Sr25519Keyring, Ed25519Keyring);
/// Alice, Bob and Charlie: the local testnet's validators.
pub const ALICE: DevValidator = (Sr25519Keyring::Alice, Ed25519Keyring::Alice);
pub const BOB: DevValidator = (Sr25519Keyring::Bob, Ed25519Keyring::Bob);
pub const CHARLIE: DevValidator = (Sr25519Keyring::Charlie, Ed25519Keyring::Charlie);

/// The genesis config with these validators, each producing blocks (Aura) and voting on finality
/// (GRANDPA, weight 1).
pub fn genesis_with_validators(validators: &[DevValidator]) -> RuntimeGenesisConfig {
	let mut balances: alloc::vec::Vec<(AccountId, Balance)> =
		dev_accounts().into_iter().map(|a| (a, DEV_ENDOWMENT)).collect();
	balances.push((configs::TreasuryAccount::get(), EXISTENTIAL_DEPOSIT));
	let aura: alloc::vec::Vec<AuraId> = validators.iter().map(|(sr, _)| sr.public().into()).collect();
	let grandpa: alloc::vec::Vec<(GrandpaId, u64)> =
		validators.iter().map(|(_, ed)| (ed.public().into(), 1)).collect();
	RuntimeGenesisConfig {
		balances: pallet_balances::GenesisConfig { balances, ..Default::default() },
		aura: pallet_aura::GenesisConfig { authorities: aura },
		grandpa: pallet_grandpa::GenesisConfig { authorities: grandpa, ..Default::default() },
		sudo: pallet_sudo::GenesisConfig { key: Some(Sr25519Keyring::Alice.to_account_id()) },
		..Default::default()
	}
}

/// The genesis config of the dev chain: Alice the only validator.
pub fn dev_genesis() -> RuntimeGenesisConfig {
	genesis_with_validators(&[ALICE])
}

/// The JSON of a named genesis preset (the whole config, so no merge is needed), or None.
pub fn preset(id: &polkadot_sdk::sp_genesis_builder::PresetId) -> Option<alloc::vec::Vec<u8>> {
	let config = match id.as_str() {
		DEVELOPMENT_PRESET => dev_genesis(),
		LOCAL_TESTNET_PRESET => genesis_with_validators(&[ALICE, BOB, CHARLIE]),
		_ => return None,
	};
	serde_json::to_vec(&config).ok()
}

/// Genesis storage with the runtime's wasm as `:code`, starting the clock at `now_ms`.
///
/// Block builders such as Chopsticks derive the next block's timestamp and Aura slot from the
/// parent's `Timestamp::Now` and `Aura::CurrentSlot`; genesis sets both, consistently, so the
/// first block's slot digest agrees with its timestamp.
#[cfg(feature = "std")]
pub fn dev_genesis_storage(
	now_ms: u64,
) -> Result<polkadot_sdk::sp_core::storage::Storage, alloc::string::String> {
	use codec::Encode;
	use polkadot_sdk::sp_runtime::BuildStorage;
	let mut storage = dev_genesis().build_storage()?;
	let slot = now_ms / SLOT_DURATION;
	storage.top.insert(pallet_timestamp::Now::<Runtime>::hashed_key().to_vec(), (slot * SLOT_DURATION).encode());
	storage.top.insert(
		pallet_aura::CurrentSlot::<Runtime>::hashed_key().to_vec(),
		polkadot_sdk::sp_consensus_aura::Slot::from(slot).encode(),
	);
	let code = WASM_BINARY.ok_or("the runtime was built without its wasm (SKIP_WASM_BUILD?)")?;
	storage.top.insert(polkadot_sdk::sp_core::storage::well_known_keys::CODE.to_vec(), code.to_vec());
	Ok(storage)
}
