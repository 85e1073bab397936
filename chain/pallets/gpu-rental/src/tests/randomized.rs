//! Randomized call sequences: after every step money is conserved, escrow equals what live leases
//! hold (at most, once another pallet moved held funds), no GPU is double-booked, and a failed call
//! changes no storage at all. The generator also moves and freezes held funds from outside, starts
//! sequences near the largest block number and lease id, and checks after each call that every fee
//! was rounded down, every compensation stayed within the refund, and that no lease served to its
//! end was reported for downtime. Heartbeats report random unhealthy GPU sets: no payment ever
//! reaches past the block a lease turned unhealthy, and no new lease gets an unhealthy GPU.

use super::*;
use crate::{Event as PalletEvent, HoldReason, LeaseId, NextLeaseId};
use polkadot_sdk::{
	frame_support::{
		dispatch::DispatchResult,
		traits::{
			fungible::MutateHold,
			tokens::{Fortitude, Precision, Restriction},
			LockableCurrency, WithdrawReasons,
		},
	},
	sp_io,
};

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

/// A price: mostly small, sometimes zero, sometimes near the largest balance.
fn price(rng: &mut Rng) -> u64 {
	match rng.below(10) {
		0 => u64::MAX / (1 + rng.below(1_000_000)),
		1 => 0,
		_ => 1 + rng.below(20),
	}
}

/// One random call; returns which kind it was and its result.
fn random_step(rng: &mut Rng) -> (u64, DispatchResult) {
	let anyone = rng.pick(&ACCOUNTS[..5]);
	let owner = rng.pick(&[ALICE, DAVE]);
	let machine = machine_id(rng.below(3) as u8 + 1);
	// Mostly live leases, sometimes ended or never-created ids.
	let live: Vec<LeaseId> = crate::Leases::<Test>::iter_keys().collect();
	let lease_id = if !live.is_empty() && rng.below(5) != 0 {
		rng.pick(&live)
	} else {
		rng.below(NextLeaseId::<Test>::get().saturating_add(1))
	};
	let customer = rng.pick(&[BOB, CHARLIE]);
	let o = RuntimeOrigin::signed;
	let any_machine = crate::Machines::<Test>::iter_keys().next().is_some();
	let choice = if any_machine { rng.below(18) } else { 0 };
	let result = match choice {
		0 => GpuRental::register_machine(
			o(owner),
			machine,
			if owner == ALICE { OPERATOR } else { DAVE },
			model(),
			rng.below(MAX_GPUS as u64 + 2) as u32,
			80_000,
			price(rng),
		),
		1 => GpuRental::set_price(o(owner), machine, price(rng)),
		2 => GpuRental::set_online(o(owner), machine, rng.below(2) == 0),
		3 => GpuRental::deregister_machine(o(owner), machine),
		4 => GpuRental::increase_bond(o(owner), machine, rng.below(3_000)),
		5 => {
			// Mostly all healthy; sometimes some slots (present or not) unhealthy.
			let unhealthy = if rng.below(3) == 0 { rng.below(1 << (MAX_GPUS + 1)) } else { 0 };
			GpuRental::heartbeat(o(rng.pick(&[OPERATOR, DAVE, anyone])), machine, unhealthy)
				.map(|_| ())
				.map_err(|e| e.error)
		},
		6 | 7 => GpuRental::create_lease(
			o(customer),
			machine,
			rng.below(5) as u32,
			rng.below(60),
			if rng.below(10) == 0 { u64::MAX } else { rng.below(25) },
			H256::repeat_byte(1),
		),
		8 => GpuRental::start_lease(o(rng.pick(&[OPERATOR, DAVE, anyone])), lease_id).map(|_| ()).map_err(|e| e.error),
		9 => GpuRental::cancel_lease(o(rng.pick(&[customer, anyone])), lease_id),
		10 => GpuRental::claim_payment(o(rng.pick(&[OPERATOR, DAVE, ALICE])), lease_id),
		11 => GpuRental::extend_lease(o(customer), lease_id, rng.below(30)),
		12 => GpuRental::terminate_lease(o(customer), lease_id),
		13 => GpuRental::report_downtime(o(rng.pick(&[customer, anyone])), lease_id),
		14 => GpuRental::settle_lease(o(anyone), lease_id),
		15 => GpuRental::update_gpus(o(rng.pick(&[OPERATOR, DAVE, anyone])), machine, rng.below(1 << (MAX_GPUS + 1)))
			.map(|_| ())
			.map_err(|e| e.error),
		// Another pallet moving held funds away (best effort: up to what is held).
		16 => {
			let reason = if rng.below(2) == 0 { HoldReason::LeaseEscrow } else { HoldReason::MachineBond };
			let from = rng.pick(&[ALICE, BOB, CHARLIE, DAVE]);
			<Balances as MutateHold<_>>::transfer_on_hold(
				&reason.into(),
				&from,
				&TREASURY,
				rng.below(2_000),
				Precision::BestEffort,
				Restriction::Free,
				Fortitude::Force,
			)
			.map(|_| ())
		},
		// A lock over (part of) an account's balance, held funds included.
		_ => {
			Balances::set_lock(*b"randlock", &rng.pick(&ACCOUNTS[..5]), rng.below(INITIAL * 2), WithdrawReasons::all());
			Ok(())
		},
	};
	(choice, result)
}

/// The step kind that moves held funds from outside the pallet.
const OUTSIDE_TRANSFER: u64 = 16;

/// Checks the events of one call: fees rounded down, compensation within the refund (which it
/// equals at most while no held funds were moved from outside).
fn check_payout_events(outside_changed: bool) {
	let events: Vec<_> = System::events()
		.into_iter()
		.filter_map(|r| match r.event {
			RuntimeEvent::GpuRental(e) => Some(e),
			_ => None,
		})
		.collect();
	for e in &events {
		match e {
			PalletEvent::PaymentClaimed { paid, fee, lease_id, .. } => {
				// The random test's fee is 10 %: floor((paid + fee) / 10), unless the hold ran dry
				// and only part of the fee could move (never more than that).
				assert!(*fee <= (paid + fee) / 10, "fee {fee} above floor of 10% of {} (lease {lease_id})", paid + fee);
			},
			PalletEvent::DowntimeCompensated { lease_id, amount, .. } => {
				let refunded = events.iter().find_map(|e| match e {
					PalletEvent::LeaseEnded { lease_id: id, refunded, .. } if id == lease_id => Some(*refunded),
					_ => None,
				});
				let refunded = refunded.expect("a compensated lease ends");
				if !outside_changed {
					assert!(*amount <= refunded, "compensation {amount} above the refund {refunded}");
				}
			},
			_ => {},
		}
	}
}

/// Running leases whose machine went stale before their end, or whose GPUs were reported
/// unhealthy: the only ones that may fail.
fn reportable_leases() -> Vec<LeaseId> {
	crate::Leases::<Test>::iter()
		.filter(|(_, l)| {
			let m = crate::Machines::<Test>::get(l.machine_id).expect("machine of a live lease");
			l.state == crate::LeaseState::Running &&
				(crate::Pallet::<Test>::fresh_until(&m) < l.ends_at || l.unhealthy_since != 0)
		})
		.map(|(id, _)| id)
		.collect()
}

/// Running leases reported unhealthy, with the block they turned so.
fn unhealthy_leases() -> Vec<(LeaseId, u64)> {
	crate::Leases::<Test>::iter()
		.filter(|(_, l)| l.unhealthy_since != 0)
		.map(|(id, l)| (id, l.unhealthy_since))
		.collect()
}

/// No payment of the last call reached past the block a lease turned unhealthy, and no lease
/// was created on a slot its machine reports unhealthy.
fn check_health_events(unhealthy_before: &[(LeaseId, u64)]) {
	for r in System::events() {
		match r.event {
			RuntimeEvent::GpuRental(PalletEvent::PaymentClaimed { lease_id, accrued_until, .. }) => {
				if let Some((_, since)) = unhealthy_before.iter().find(|(id, _)| *id == lease_id) {
					assert!(accrued_until <= *since, "lease {lease_id} paid up to {accrued_until}, unhealthy since {since}");
				}
			},
			RuntimeEvent::GpuRental(PalletEvent::LeaseCreated { machine_id, gpu_mask, .. }) => {
				let m = crate::Machines::<Test>::get(machine_id).expect("machine of a new lease");
				assert_eq!(gpu_mask & m.unhealthy_gpus, 0, "a lease was given an unhealthy GPU");
			},
			_ => {},
		}
	}
}

#[test]
fn random_call_sequences_keep_invariants() {
	let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
	let (mut ok, mut failed) = (0u64, 0u64);
	for _ in 0..SEQUENCES {
		new_test_ext().execute_with(|| {
			// One sequence in eight starts near the largest block number, one in eight near the
			// last lease id.
			match rng.below(8) {
				0 => run_to_block(u64::MAX - rng.below(MAX_DURATION + 100)),
				1 => NextLeaseId::<Test>::put(u64::MAX - rng.below(4)),
				_ => {},
			}
			let mut outside_changed = false;
			for _ in 0..STEPS {
				if rng.below(3) == 0 {
					run_to_block(System::block_number().saturating_add(rng.below(8)));
				}
				System::reset_events();
				let root_before = sp_io::storage::root(polkadot_sdk::sp_runtime::StateVersion::V1);
				let reports = reportable_leases();
				let unhealthy_before = unhealthy_leases();
				let (choice, result) = random_step(&mut rng);
				if choice == OUTSIDE_TRANSFER && result.is_ok() {
					outside_changed = true;
				}
				match result {
					Ok(()) => ok += 1,
					Err(_) => {
						failed += 1;
						let root_after = sp_io::storage::root(polkadot_sdk::sp_runtime::StateVersion::V1);
						assert_eq!(root_before, root_after, "a failed call changed storage");
					},
				}
				for r in System::events() {
					if let RuntimeEvent::GpuRental(PalletEvent::LeaseEnded { lease_id, reason: crate::LeaseEndReason::Failed, .. }) = r.event {
						assert!(reports.contains(&lease_id), "lease {lease_id} reported though served to its end");
					}
				}
				check_payout_events(outside_changed);
				check_health_events(&unhealthy_before);
				if outside_changed { ensure_money_valid() } else { ensure_money_exact() }
			}
		});
	}
	// The generator must exercise both paths substantially, or the test proves little.
	assert!(ok > SEQUENCES * STEPS as u64 / 8, "too few successful calls: {ok}");
	assert!(failed > 0);
}
