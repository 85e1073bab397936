//! Lease creation, start, cancellation, extension and termination.

use super::*;
use crate::{CustomerLeases, Error, LeaseEndReason, LeaseState, Leases, MachineLeases, Machines};
use polkadot_sdk::{frame_support::assert_noop, sp_runtime::Perbill};

#[test]
fn create_lease_holds_escrow_and_books_lowest_free_gpus() {
	new_test_ext().execute_with(|| {
		let id = register(1, 4);
		let l0 = lease(BOB, id, 2, 100);
		let escrow = PRICE * 2 * 100;
		assert_eq!(escrow_held(BOB), escrow);
		assert_eq!(free(BOB), INITIAL - escrow);
		let stored = Leases::<Test>::get(l0).unwrap();
		assert_eq!((stored.gpu_mask, stored.state, stored.escrow, stored.created_at), (0b0011, LeaseState::Pending, escrow, 1));
		assert_eq!(
			last_event(),
			Event::LeaseCreated {
				lease_id: l0,
				machine_id: id,
				customer: BOB,
				gpus: 2,
				gpu_mask: 0b0011,
				price_per_gpu_block: PRICE,
				fee: Perbill::from_percent(10),
				duration: 100,
				escrow,
				spec_hash: H256::repeat_byte(7)
			}
			.into()
		);
		let l1 = lease(CHARLIE, id, 2, 10);
		assert_eq!(Leases::<Test>::get(l1).unwrap().gpu_mask, 0b1100);
		assert_eq!(Machines::<Test>::get(id).unwrap().used_gpus, 0b1111);
		assert_eq!(MachineLeases::<Test>::get(id).to_vec(), vec![l0, l1]);
		assert_eq!(CustomerLeases::<Test>::get(BOB).to_vec(), vec![l0]);
		// Freed GPUs are booked again, never twice.
		assert_ok!(GpuRental::cancel_lease(RuntimeOrigin::signed(BOB), l0));
		let l2 = lease(CHARLIE, id, 1, 10);
		assert_eq!(Leases::<Test>::get(l2).unwrap().gpu_mask, 0b0001);
		ensure_money_valid();
	});
}

#[test]
fn create_lease_rejects_bad_input() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let create = |machine, gpus, duration, max_price| {
			GpuRental::create_lease(RuntimeOrigin::signed(BOB), machine, gpus, duration, max_price, H256::zero())
		};
		assert_noop!(create(machine_id(9), 1, 10, PRICE), Error::<Test>::MachineNotFound);
		assert_noop!(create(id, 0, 10, PRICE), Error::<Test>::ZeroGpus);
		assert_noop!(create(id, 3, 10, PRICE), Error::<Test>::NotEnoughFreeGpus);
		assert_noop!(create(id, 1, 0, PRICE), Error::<Test>::InvalidDuration);
		assert_noop!(create(id, 1, MAX_DURATION + 1, PRICE), Error::<Test>::InvalidDuration);
		assert_noop!(create(id, 1, 10, PRICE - 1), Error::<Test>::PriceAboveLimit);
		assert_ok!(Balances::transfer_allow_death(RuntimeOrigin::signed(BOB), DAVE, INITIAL - 100));
		assert_noop!(create(id, 2, 10, PRICE), Error::<Test>::InsufficientBalance);
		lease(CHARLIE, id, 2, 10);
		assert_noop!(create(id, 1, 10, PRICE), Error::<Test>::NotEnoughFreeGpus);
		ensure_money_valid();
	});
}

#[test]
fn create_lease_rejects_overflowing_price() {
	new_test_ext().execute_with(|| {
		let id = machine_id(1);
		assert_ok!(GpuRental::register_machine(RuntimeOrigin::signed(ALICE), id, OPERATOR, model(), 8, 1, u64::MAX / 4));
		assert_noop!(
			GpuRental::create_lease(RuntimeOrigin::signed(BOB), id, 8, 10, u64::MAX, H256::zero()),
			Error::<Test>::Overflow
		);
	});
}

#[test]
fn create_lease_bounds_leases_per_customer() {
	new_test_ext().execute_with(|| {
		let id = register(1, MAX_GPUS);
		for _ in 0..MAX_CUSTOMER_LEASES {
			lease(BOB, id, 1, 10);
		}
		assert_noop!(
			GpuRental::create_lease(RuntimeOrigin::signed(BOB), id, 1, 10, PRICE, H256::zero()),
			Error::<Test>::TooManyLeases
		);
	});
}

#[test]
fn start_lease_within_window_runs_it() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = lease(BOB, id, 1, 50);
		run_to_block(1 + START_WINDOW);
		assert_noop!(GpuRental::start_lease(RuntimeOrigin::signed(BOB), l).map_err(|e| e.error), Error::<Test>::NotMachineOperator);
		assert_ok!(GpuRental::start_lease(RuntimeOrigin::signed(OPERATOR), l));
		let stored = Leases::<Test>::get(l).unwrap();
		assert_eq!((stored.state, stored.started_at, stored.ends_at, stored.accrue_from), (LeaseState::Running, 11, 61, 11));
		assert!(has_event(Event::LeaseStarted { lease_id: l, ends_at: 61 }));
		assert_eq!(Machines::<Test>::get(id).unwrap().last_heartbeat, 11);
		assert_noop!(GpuRental::start_lease(RuntimeOrigin::signed(OPERATOR), l).map_err(|e| e.error), Error::<Test>::LeaseAlreadyStarted);
		assert_noop!(GpuRental::start_lease(RuntimeOrigin::signed(OPERATOR), 77).map_err(|e| e.error), Error::<Test>::LeaseNotFound);
	});
}

#[test]
fn start_lease_after_window_fails_and_anyone_cancels_paying_the_reservation() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = lease(BOB, id, 2, 50);
		assert_noop!(GpuRental::cancel_lease(RuntimeOrigin::signed(CHARLIE), l), Error::<Test>::StartWindowOpen);
		run_to_block(1 + START_WINDOW + 1);
		assert_noop!(GpuRental::start_lease(RuntimeOrigin::signed(OPERATOR), l).map_err(|e| e.error), Error::<Test>::StartWindowPassed);
		assert_ok!(GpuRental::cancel_lease(RuntimeOrigin::signed(CHARLIE), l));
		// Reserved while the machine was up: blocks 1..=6 (registered at 1, grace 5) = 5 blocks.
		let reservation = PRICE * 2 * 5;
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 90, fee: 10, accrued_until: 6 }));
		assert_eq!(
			last_event(),
			Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::StartTimeout, refunded: PRICE * 2 * 50 - reservation }.into()
		);
		assert_eq!((free(BOB), escrow_held(BOB)), (INITIAL - reservation, 0));
		assert!(Leases::<Test>::get(l).is_none());
		assert_eq!(Machines::<Test>::get(id).unwrap().used_gpus, 0);
		assert!(CustomerLeases::<Test>::get(BOB).is_empty());
		assert_noop!(GpuRental::cancel_lease(RuntimeOrigin::signed(BOB), l), Error::<Test>::LeaseNotFound);
		ensure_money_valid();
	});
}

#[test]
fn cancel_lease_by_customer_before_start_pays_one_block_at_least() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = lease(BOB, id, 1, 50);
		assert_ok!(GpuRental::cancel_lease(RuntimeOrigin::signed(BOB), l));
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 9, fee: 1, accrued_until: 1 }));
		assert_eq!(last_event(), Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Cancelled, refunded: 490 }.into());
		assert_eq!(free(BOB), INITIAL - PRICE);
		let started = running_lease(BOB, id, 1, 50);
		assert_noop!(GpuRental::cancel_lease(RuntimeOrigin::signed(BOB), started), Error::<Test>::LeaseAlreadyStarted);
		ensure_money_valid();
	});
}

#[test]
fn extend_lease_adds_escrow_and_moves_end() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let pending = lease(BOB, id, 1, 10);
		assert_ok!(GpuRental::extend_lease(RuntimeOrigin::signed(BOB), pending, 5));
		assert_eq!(Leases::<Test>::get(pending).unwrap().duration, 15);
		let l = running_lease(BOB, id, 1, 10);
		assert_ok!(GpuRental::extend_lease(RuntimeOrigin::signed(BOB), l, 20));
		assert_eq!(
			last_event(),
			Event::LeaseExtended { lease_id: l, extra_blocks: 20, added_escrow: 200, duration: 30 }.into()
		);
		let stored = Leases::<Test>::get(l).unwrap();
		assert_eq!((stored.ends_at, stored.escrow), (31, 300));
		assert_eq!(escrow_held(BOB), 150 + 300);
		ensure_money_valid();
	});
}

#[test]
fn extend_lease_rejects_bad_input() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = running_lease(BOB, id, 1, 10);
		assert_noop!(GpuRental::extend_lease(RuntimeOrigin::signed(CHARLIE), l, 5), Error::<Test>::NotLeaseCustomer);
		assert_noop!(GpuRental::extend_lease(RuntimeOrigin::signed(BOB), l, 0), Error::<Test>::InvalidDuration);
		assert_noop!(GpuRental::extend_lease(RuntimeOrigin::signed(BOB), l, MAX_DURATION), Error::<Test>::InvalidDuration);
		assert_noop!(GpuRental::extend_lease(RuntimeOrigin::signed(BOB), 77, 5), Error::<Test>::LeaseNotFound);
		let big = running_lease(CHARLIE, id, 1, 10);
		assert_ok!(Balances::transfer_allow_death(RuntimeOrigin::signed(CHARLIE), DAVE, INITIAL - 200));
		assert_noop!(GpuRental::extend_lease(RuntimeOrigin::signed(CHARLIE), big, 50), Error::<Test>::InsufficientBalance);
		run_to_block(11);
		assert_noop!(GpuRental::extend_lease(RuntimeOrigin::signed(BOB), l, 5), Error::<Test>::LeaseExpired);
		ensure_money_valid();
	});
}

#[test]
fn terminate_running_lease_pays_accrued_and_refunds_rest() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = running_lease(BOB, id, 2, 100);
		run_to_block(4); // 3 fresh blocks accrued: 3 * 2 * 10 = 60
		assert_noop!(GpuRental::terminate_lease(RuntimeOrigin::signed(CHARLIE), l), Error::<Test>::NotLeaseCustomer);
		assert_ok!(GpuRental::terminate_lease(RuntimeOrigin::signed(BOB), l));
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 54, fee: 6, accrued_until: 4 }));
		assert_eq!(last_event(), Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Terminated, refunded: 2000 - 60 }.into());
		assert_eq!(free(BOB), INITIAL - 60);
		assert_eq!(free(ALICE), INITIAL - 2 * BOND_PER_GPU + 54);
		assert_eq!(free(TREASURY), INITIAL + 6);
		assert_eq!(Machines::<Test>::get(id).unwrap().used_gpus, 0);
		assert_noop!(GpuRental::terminate_lease(RuntimeOrigin::signed(BOB), l), Error::<Test>::LeaseNotFound);
		ensure_money_valid();
	});
}

#[test]
fn terminate_pending_lease_cancels_it() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = lease(BOB, id, 2, 100);
		assert_ok!(GpuRental::terminate_lease(RuntimeOrigin::signed(BOB), l));
		assert_eq!(last_event(), Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Cancelled, refunded: 1980 }.into());
		assert_eq!(free(BOB), INITIAL - 2 * PRICE);
		ensure_money_valid();
	});
}
