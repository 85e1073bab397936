//! The dev chain's genesis: Alice..Ferdie funded, Alice the Aura authority and sudo key, the
//! treasury endowed with the existential deposit so fees can be paid into it.
//!
//! One definition, two readers: the runtime serves it as the genesis preset
//! [`DEVELOPMENT_PRESET`] (what `chain/devchain/chain-spec-from-wasm.cjs` builds the dev chain
//! from, executing the wasm alone), and the native [`dev_genesis_storage`] builds it directly.

use super::*;
use polkadot_sdk::{sp_consensus_aura::sr25519::AuthorityId as AuraId, sp_keyring::Sr25519Keyring};

/// Name of the dev chain's genesis preset (`GenesisBuilder_get_preset`): the SDK's standard one.
pub const DEVELOPMENT_PRESET: &str = polkadot_sdk::sp_genesis_builder::DEV_RUNTIME_PRESET;

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

/// The genesis config of the dev chain.
pub fn dev_genesis() -> RuntimeGenesisConfig {
	let mut balances: alloc::vec::Vec<(AccountId, Balance)> =
		dev_accounts().into_iter().map(|a| (a, DEV_ENDOWMENT)).collect();
	balances.push((configs::TreasuryAccount::get(), EXISTENTIAL_DEPOSIT));
	let alice_aura: AuraId = Sr25519Keyring::Alice.public().into();
	RuntimeGenesisConfig {
		balances: pallet_balances::GenesisConfig { balances, ..Default::default() },
		aura: pallet_aura::GenesisConfig { authorities: alloc::vec![alice_aura] },
		sudo: pallet_sudo::GenesisConfig { key: Some(Sr25519Keyring::Alice.to_account_id()) },
		..Default::default()
	}
}

/// The JSON of a named genesis preset (the whole config, so no merge is needed), or None.
pub fn preset(id: &polkadot_sdk::sp_genesis_builder::PresetId) -> Option<alloc::vec::Vec<u8>> {
	match id.as_str() {
		DEVELOPMENT_PRESET => serde_json::to_vec(&dev_genesis()).ok(),
		_ => None,
	}
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
