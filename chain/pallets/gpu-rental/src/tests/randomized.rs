//! Randomized call sequences: after every step money is conserved, escrow equals what live leases
//! hold, no GPU is double-booked, and a failed call changes no storage at all.

use super::*;
use crate::{LeaseId, NextLeaseId};
use polkadot_sdk::{frame_support::dispatch::DispatchResult, sp_io};

const SEQUENCES: u64 = 10_000;
const STEPS: usize = 16;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
	fn next(&mut self) -> u64 {
		self.0 ^= self.0 >> 12;
		self.0 ^= self.0 << 25;
		self.0 ^= self.0 >> 27;
		self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
	}
	fn below(&mut self, n: u64) -> u64 {
		self.next() % n
	}
	fn pick<T: Copy>(&mut self, items: &[T]) -> T {
		items[self.below(items.len() as u64) as usize]
	}
}

fn random_step(rng: &mut Rng) -> DispatchResult {
	let anyone = rng.pick(&ACCOUNTS[..5]);
	let owner = rng.pick(&[ALICE, DAVE]);
	let machine = machine_id(rng.below(3) as u8 + 1);
	// Mostly live leases, sometimes ended or never-created ids.
	let live: Vec<LeaseId> = crate::Leases::<Test>::iter_keys().collect();
	let lease_id = if !live.is_empty() && rng.below(5) != 0 {
		rng.pick(&live)
	} else {
		rng.below(NextLeaseId::<Test>::get() + 1)
	};
	let customer = rng.pick(&[BOB, CHARLIE]);
	let o = RuntimeOrigin::signed;
	let any_machine = crate::Machines::<Test>::iter_keys().next().is_some();
	let choice = if any_machine { rng.below(15) } else { 0 };
	match choice {
		0 => GpuRental::register_machine(
			o(owner),
			machine,
			if owner == ALICE { OPERATOR } else { DAVE },
			model(),
			rng.below(MAX_GPUS as u64 + 2) as u32,
			80_000,
			rng.below(20).max(rng.below(2)),
		),
		1 => GpuRental::set_price(o(owner), machine, rng.below(20)),
		2 => GpuRental::set_online(o(owner), machine, rng.below(2) == 0),
		3 => GpuRental::deregister_machine(o(owner), machine),
		4 => GpuRental::increase_bond(o(owner), machine, rng.below(3_000)),
		5 => GpuRental::heartbeat(o(rng.pick(&[OPERATOR, DAVE, anyone])), machine).map(|_| ()).map_err(|e| e.error),
		6 | 7 => GpuRental::create_lease(
			o(customer),
			machine,
			rng.below(5) as u32,
			rng.below(60),
			rng.below(25),
			H256::repeat_byte(1),
		),
		8 => GpuRental::start_lease(o(rng.pick(&[OPERATOR, DAVE, anyone])), lease_id).map(|_| ()).map_err(|e| e.error),
		9 => GpuRental::cancel_lease(o(rng.pick(&[customer, anyone])), lease_id),
		10 => GpuRental::claim_payment(o(rng.pick(&[OPERATOR, DAVE, ALICE])), lease_id),
		11 => GpuRental::extend_lease(o(customer), lease_id, rng.below(30)),
		12 => GpuRental::terminate_lease(o(customer), lease_id),
		13 => GpuRental::report_downtime(o(customer), lease_id),
		_ => GpuRental::settle_lease(o(anyone), lease_id),
	}
}

#[test]
fn random_call_sequences_keep_invariants() {
	let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
	let (mut ok, mut failed) = (0u64, 0u64);
	for _ in 0..SEQUENCES {
		new_test_ext().execute_with(|| {
			for _ in 0..STEPS {
				if rng.below(3) == 0 {
					run_to_block(System::block_number() + rng.below(8));
				}
				let root_before = sp_io::storage::root(polkadot_sdk::sp_runtime::StateVersion::V1);
				match random_step(&mut rng) {
					Ok(()) => ok += 1,
					Err(_) => {
						failed += 1;
						let root_after = sp_io::storage::root(polkadot_sdk::sp_runtime::StateVersion::V1);
						assert_eq!(root_before, root_after, "a failed call changed storage");
					},
				}
				ensure_money_valid();
			}
		});
	}
	// The generator must exercise both paths substantially, or the test proves little.
	assert!(ok > SEQUENCES * STEPS as u64 / 8, "too few successful calls: {ok}");
	assert!(failed > 0);
}
