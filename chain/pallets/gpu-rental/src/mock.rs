//! A test runtime: System, Balances and GpuRental with small, round constants.

use crate as pallet_gpu_rental;
use polkadot_sdk::{
	frame_support::{
		derive_impl, parameter_types,
		traits::{ConstU32, ConstU64, VariantCountOf},
	},
	frame_system, pallet_balances,
	sp_runtime::{BuildStorage, Perbill},
};

pub type AccountId = u64;
pub type Balance = u64;
type Block = frame_system::mocking::MockBlock<Test>;

pub const ALICE: AccountId = 1; // provider (machine owner)
pub const OPERATOR: AccountId = 2; // the machine's key
pub const BOB: AccountId = 3; // customer
pub const CHARLIE: AccountId = 4; // customer
pub const DAVE: AccountId = 5; // second provider
pub const TREASURY: AccountId = 99;

pub const ED: Balance = 1;
pub const INITIAL: Balance = 1_000_000;
pub const BOND_PER_GPU: Balance = 1_000;
pub const START_WINDOW: u64 = 10;
pub const GRACE: u64 = 5;
pub const UNHEALTHY_GRACE: u64 = 3;
pub const MAX_DURATION: u64 = 10_000;
pub const MAX_GPUS: u32 = 8;
pub const MAX_CUSTOMER_LEASES: u32 = 4;

#[polkadot_sdk::frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Test;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(2)]
	pub type GpuRental = pallet_gpu_rental;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountId = AccountId;
	type Lookup = polkadot_sdk::sp_runtime::traits::IdentityLookup<AccountId>;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = Balance;
	type ExistentialDeposit = ConstU64<ED>;
	type AccountStore = System;
	type RuntimeHoldReason = RuntimeHoldReason;
	type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
}

parameter_types! {
	pub const Treasury: AccountId = TREASURY;
	/// Mutable in tests: a runtime upgrade that changes the fee must not touch running leases.
	pub static ProtocolFee: Perbill = Perbill::from_percent(10);
	pub const DowntimeCompensation: Perbill = Perbill::from_percent(50);
}

impl pallet_gpu_rental::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Treasury = Treasury;
	type ProtocolFee = ProtocolFee;
	type MinBondPerGpu = ConstU64<BOND_PER_GPU>;
	type StartWindow = ConstU64<START_WINDOW>;
	type HeartbeatGrace = ConstU64<GRACE>;
	type UnhealthyGrace = ConstU64<UNHEALTHY_GRACE>;
	type DowntimeCompensation = DowntimeCompensation;
	type MaxGpusPerMachine = ConstU32<MAX_GPUS>;
	type MaxLeasesPerCustomer = ConstU32<MAX_CUSTOMER_LEASES>;
	type MaxLeaseDuration = ConstU64<MAX_DURATION>;
	type MaxModelLen = ConstU32<32>;
	type WeightInfo = ();
}

/// Every account in the tests, funded with `INITIAL`; the treasury exists from genesis.
pub const ACCOUNTS: [AccountId; 6] = [ALICE, OPERATOR, BOB, CHARLIE, DAVE, TREASURY];

pub fn new_test_ext() -> polkadot_sdk::sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: ACCOUNTS.iter().map(|a| (*a, INITIAL)).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext = polkadot_sdk::sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

/// Moves to block `n` (events of earlier blocks stay readable until reset).
pub fn run_to_block(n: u64) {
	System::set_block_number(n);
}
