//! The dev chain's genesis, built natively: Alice..Ferdie funded, Alice the Aura authority and
//! sudo key, the treasury endowed with the existential deposit so fees can be paid into it.

use super::*;
use polkadot_sdk::{
	sp_consensus_aura::sr25519::AuthorityId as AuraId,
	sp_core::{storage::Storage, Pair},
	sp_keyring::Sr25519Keyring,
	sp_runtime::BuildStorage,
};

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
	let alice_aura: AuraId = Sr25519Keyring::Alice.pair().public().into();
	RuntimeGenesisConfig {
		balances: pallet_balances::GenesisConfig { balances, ..Default::default() },
		aura: pallet_aura::GenesisConfig { authorities: alloc::vec![alice_aura] },
		sudo: pallet_sudo::GenesisConfig { key: Some(Sr25519Keyring::Alice.to_account_id()) },
		..Default::default()
	}
}

/// Genesis storage with the runtime's wasm as `:code`, starting the clock at `now_ms`.
///
/// Block builders such as Chopsticks derive the next block's timestamp and Aura slot from the
/// parent's `Timestamp::Now` and `Aura::CurrentSlot`; genesis sets both, consistently, so the
/// first block's slot digest agrees with its timestamp.
pub fn dev_genesis_storage(now_ms: u64) -> Result<Storage, alloc::string::String> {
	use codec::Encode;
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
