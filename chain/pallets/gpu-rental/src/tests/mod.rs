//! Unit tests of the GPU rental pallet, by theme, plus a randomized invariant test.

mod leases;
mod hardening;
mod health;
mod machines;
mod payments;
mod randomized;

use crate::{mock::*, Event, HoldReason, LeaseId, MachineId};
use polkadot_sdk::{
	frame_support::{assert_ok, traits::fungible::{Inspect, InspectHold}},
	frame_system,
	sp_core::H256,
};

pub const PRICE: Balance = 10;

pub fn machine_id(n: u8) -> MachineId {
	[n; 32]
}

pub fn model() -> Vec<u8> {
	b"NVIDIA H100 80GB HBM3".to_vec()
}

/// Registers machine `n` owned by ALICE, operated by OPERATOR, with `gpus` GPUs at `PRICE`.
pub fn register(n: u8, gpus: u32) -> MachineId {
	let id = machine_id(n);
	assert_ok!(GpuRental::register_machine(
		RuntimeOrigin::signed(ALICE),
		id,
		OPERATOR,
		model(),
		gpus,
		81_559,
		PRICE
	));
	id
}

/// Creates a lease for `customer` and returns its id.
pub fn lease(customer: AccountId, machine: MachineId, gpus: u32, duration: u64) -> LeaseId {
	let id = crate::NextLeaseId::<Test>::get();
	assert_ok!(GpuRental::create_lease(
		RuntimeOrigin::signed(customer),
		machine,
		gpus,
		duration,
		PRICE,
		H256::repeat_byte(7)
	));
	id
}

/// Creates and starts a lease at the current block.
pub fn running_lease(customer: AccountId, machine: MachineId, gpus: u32, duration: u64) -> LeaseId {
	let id = lease(customer, machine, gpus, duration);
	assert_ok!(GpuRental::start_lease(RuntimeOrigin::signed(OPERATOR), id));
	id
}

pub fn free(who: AccountId) -> Balance {
	Balances::free_balance(who)
}

pub fn escrow_held(who: AccountId) -> Balance {
	Balances::balance_on_hold(&HoldReason::LeaseEscrow.into(), &who)
}

pub fn bond_held(who: AccountId) -> Balance {
	Balances::balance_on_hold(&HoldReason::MachineBond.into(), &who)
}

/// Money is conserved: issuance unchanged and equal to what the known accounts hold in total;
/// and the pallet's own invariants (escrow, bonds, GPU masks) hold.
pub fn ensure_money_valid() {
	let total: Balance = ACCOUNTS.iter().map(|a| Balances::total_balance(a)).sum();
	assert_eq!(Balances::total_issuance(), INITIAL * ACCOUNTS.len() as Balance, "issuance changed");
	assert_eq!(total, Balances::total_issuance(), "money created or lost");
	crate::Pallet::<Test>::do_try_state().expect("pallet invariants");
}

/// `ensure_money_valid` plus exact holds: for tests where nothing outside moves held funds.
pub fn ensure_money_exact() {
	ensure_money_valid();
	ensure_holds_exact();
}

/// Without outside changes to the holds, escrow and bonds held equal what storage records.
pub fn ensure_holds_exact() {
	for who in ACCOUNTS {
		let escrow: Balance =
			crate::Leases::<Test>::iter_values().filter(|l| l.customer == who).map(|l| l.escrow).sum();
		assert_eq!(escrow_held(who), escrow, "escrow held differs from leases for {who}");
		let bond: Balance =
			crate::Machines::<Test>::iter_values().filter(|m| m.owner == who).map(|m| m.bond).sum();
		assert_eq!(bond_held(who), bond, "bond held differs from machines for {who}");
	}
}

pub fn last_event() -> RuntimeEvent {
	frame_system::Pallet::<Test>::events().pop().expect("an event").event
}

pub fn has_event(e: Event<Test>) -> bool {
	let e: RuntimeEvent = e.into();
	frame_system::Pallet::<Test>::events().iter().any(|r| r.event == e)
}
