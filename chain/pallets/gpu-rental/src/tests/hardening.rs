//! Faults found by outside testing (issue "Money and faults"), one test per kind: downtime
//! reports after a lease was served, self-leasing, fee rounding, fee snapshots, holds changed or
//! frozen from outside, values near the limits, free reservations, GPU sets that change, and the
//! weight and end reason of calls that used to pay or report too much.

use super::*;
use crate::{
	weights::WeightInfo, CustomerLeases, Error, LeaseEndReason, Leases, MachineLeases, Machines,
	NextLeaseId,
};
use polkadot_sdk::{
	frame_support::{
		assert_noop,
		traits::{
			fungible::MutateHold,
			tokens::{Fortitude, Precision, Restriction},
			LockableCurrency, WithdrawReasons,
		},
	},
	sp_runtime::Perbill,
};

fn heartbeat_every_block(id: MachineId, from: u64, to: u64) {
	for b in from..=to {
		run_to_block(b);
		assert_ok!(GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), id, 0));
	}
}

/// Moves `amount` of `who`'s held funds under `reason` to DAVE, as another pallet could.
fn take_from_hold(reason: crate::HoldReason, who: AccountId, amount: Balance) {
	assert_ok!(<Balances as MutateHold<_>>::transfer_on_hold(
		&reason.into(),
		&who,
		&DAVE,
		amount,
		Precision::Exact,
		Restriction::Free,
		Fortitude::Force,
	));
}

// 1. Compensation and refunds cover only downtime inside the lease's paid period.
#[test]
fn report_downtime_after_a_served_lease_is_refused() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		run_to_block(10);
		let l = running_lease(BOB, id, 1, 10); // ends at 20
		heartbeat_every_block(id, 11, 20);
		run_to_block(26); // stale since 26 (fresh until 25), but the lease ended at 20, served
		assert_noop!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l), Error::<Test>::LeaseServed);
		assert_ok!(GpuRental::settle_lease(RuntimeOrigin::signed(CHARLIE), l));
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 90, fee: 10, accrued_until: 20 }));
		assert_eq!(bond_held(ALICE), BOND_PER_GPU);
		assert!(Machines::<Test>::get(id).unwrap().online);
		ensure_money_exact();
	});
}

#[test]
fn compensation_never_exceeds_the_unserved_part_of_the_lease() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		run_to_block(10);
		let l = running_lease(BOB, id, 1, 10); // costs 100, ends at 20
		heartbeat_every_block(id, 11, 12); // fresh until 17: downtime 17..20 inside the lease
		run_to_block(26);
		assert_ok!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l));
		// 7 fresh blocks paid (70); the 30 unserved are refunded and cap the compensation, which
		// would otherwise be 50% of the whole 1,000 bond.
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 63, fee: 7, accrued_until: 17 }));
		assert!(has_event(Event::DowntimeCompensated { lease_id: l, customer: BOB, amount: 30 }));
		assert!(has_event(Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Failed, refunded: 30 }));
		assert_eq!(free(BOB), INITIAL - 70 + 30);
		assert_eq!(bond_held(ALICE), BOND_PER_GPU - 30);
		ensure_money_exact();
	});
}

// 2. Owners and operators cannot lease their own machine.
#[test]
fn provider_cannot_lease_its_own_machine() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		running_lease(BOB, id, 1, 100);
		for who in [ALICE, OPERATOR] {
			assert_noop!(
				GpuRental::create_lease(RuntimeOrigin::signed(who), id, 1, 10, PRICE, H256::zero()),
				Error::<Test>::CustomerIsProvider
			);
		}
		ensure_money_exact();
	});
}

// 3. The fee is floor(accrued * fee); the provider gets the rest.
#[test]
fn fee_rounds_down_and_provider_gets_the_rest() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		assert_ok!(GpuRental::set_price(RuntimeOrigin::signed(ALICE), id, 999));
		let l = NextLeaseId::<Test>::get();
		assert_ok!(GpuRental::create_lease(RuntimeOrigin::signed(BOB), id, 1, 1, 999, H256::zero()));
		assert_ok!(GpuRental::start_lease(RuntimeOrigin::signed(OPERATOR), l));
		run_to_block(2);
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), l));
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 900, fee: 99, accrued_until: 2 }));
		assert_eq!(free(TREASURY), INITIAL + 99);
		ensure_money_exact();
	});
}

#[test]
fn compensation_share_is_exact_and_rounds_down() {
	new_test_ext().execute_with(|| {
		let id = register(1, 3); // bond 3,000: one GPU's share is exactly 1,000
		let l = running_lease(BOB, id, 1, 1_000);
		run_to_block(1 + GRACE + 1);
		assert_ok!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l));
		assert!(has_event(Event::DowntimeCompensated { lease_id: l, customer: BOB, amount: 500 }));
		// A bond of 3,003 over 3 GPUs: one GPU's share is 1,001; half of it, 500.5, pays 500.
		let id2 = machine_id(2);
		assert_ok!(GpuRental::register_machine(RuntimeOrigin::signed(DAVE), id2, DAVE, model(), 3, 1, PRICE));
		assert_ok!(GpuRental::increase_bond(RuntimeOrigin::signed(DAVE), id2, 3));
		let l2 = lease(CHARLIE, id2, 1, 1_000);
		assert_ok!(GpuRental::start_lease(RuntimeOrigin::signed(DAVE), l2));
		run_to_block(System::block_number() + GRACE + 1);
		assert_ok!(GpuRental::report_downtime(RuntimeOrigin::signed(CHARLIE), l2));
		assert!(has_event(Event::DowntimeCompensated { lease_id: l2, customer: CHARLIE, amount: 500 }));
		ensure_money_exact();
	});
}

// 4. A running lease keeps the fee it was made with.
#[test]
fn lease_keeps_the_fee_it_was_made_with() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let old = running_lease(BOB, id, 1, 100);
		ProtocolFee::set(Perbill::from_percent(50)); // as a runtime upgrade would
		let new = running_lease(CHARLIE, id, 1, 100);
		run_to_block(5);
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), old));
		assert!(has_event(Event::PaymentClaimed { lease_id: old, provider: ALICE, paid: 36, fee: 4, accrued_until: 5 }));
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), new));
		assert!(has_event(Event::PaymentClaimed { lease_id: new, provider: ALICE, paid: 20, fee: 20, accrued_until: 5 }));
		assert_eq!(Leases::<Test>::get(old).unwrap().fee, Perbill::from_percent(10));
		ProtocolFee::set(Perbill::from_percent(10));
		ensure_money_exact();
	});
}

// 5. Holds shrunk or frozen from outside never wedge a lease or a machine.
#[test]
fn escrow_shrunk_from_outside_pays_what_is_there_and_ends_the_lease() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = running_lease(BOB, id, 1, 100); // escrow 1,000
		take_from_hold(crate::HoldReason::LeaseEscrow, BOB, 950);
		heartbeat_every_block(id, 5, 5);
		run_to_block(11); // 10 blocks accrued (100) but only 50 held
		assert_ok!(GpuRental::terminate_lease(RuntimeOrigin::signed(BOB), l));
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 45, fee: 5, accrued_until: 10 }));
		assert!(has_event(Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Terminated, refunded: 0 }));
		assert!(Leases::<Test>::get(l).is_none());
		assert_eq!(Machines::<Test>::get(id).unwrap().used_gpus, 0);
		assert_eq!(escrow_held(BOB), 0);
		ensure_money_valid();
	});
}

#[test]
fn lock_on_the_customer_does_not_stop_paying_the_provider() {
	new_test_ext().execute_with(|| {
		let id = register(1, 3);
		let claimed = running_lease(BOB, id, 1, 100);
		let ended = running_lease(BOB, id, 1, 100);
		let settled = running_lease(CHARLIE, id, 1, 3);
		// A lock over everything each customer has, held funds included.
		Balances::set_lock(*b"testlock", &BOB, INITIAL, WithdrawReasons::all());
		Balances::set_lock(*b"testlock", &CHARLIE, INITIAL, WithdrawReasons::all());
		run_to_block(5);
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), claimed));
		assert!(has_event(Event::PaymentClaimed { lease_id: claimed, provider: ALICE, paid: 36, fee: 4, accrued_until: 5 }));
		assert_ok!(GpuRental::terminate_lease(RuntimeOrigin::signed(BOB), ended));
		assert!(has_event(Event::LeaseEnded { lease_id: ended, reason: LeaseEndReason::Terminated, refunded: 960 }));
		assert_ok!(GpuRental::settle_lease(RuntimeOrigin::signed(DAVE), settled));
		assert!(has_event(Event::LeaseEnded { lease_id: settled, reason: LeaseEndReason::Expired, refunded: 0 }));
		ensure_money_exact();
	});
}

#[test]
fn bond_shrunk_or_locked_pays_the_compensation_that_is_there() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2); // bond 2,000
		let l = running_lease(BOB, id, 2, 1_000);
		Balances::set_lock(*b"testlock", &ALICE, INITIAL, WithdrawReasons::all());
		take_from_hold(crate::HoldReason::MachineBond, ALICE, 1_900);
		run_to_block(1 + GRACE + 1);
		assert_ok!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l));
		// 50% of the recorded 2,000 is 1,000; the hold has 100.
		assert!(has_event(Event::DowntimeCompensated { lease_id: l, customer: BOB, amount: 100 }));
		assert_eq!(bond_held(ALICE), 0);
		assert_ok!(GpuRental::deregister_machine(RuntimeOrigin::signed(ALICE), id));
		assert!(has_event(Event::MachineDeregistered { machine_id: id, bond_released: 0 }));
		ensure_money_valid();
	});
}

// 6. Checked arithmetic with named errors near the limits; a lease is never overwritten.
#[test]
fn leases_near_the_last_block_number_are_refused_not_saturated() {
	new_test_ext().execute_with(|| {
		run_to_block(u64::MAX - 20);
		let id = register(1, 2);
		let create = |duration| GpuRental::create_lease(RuntimeOrigin::signed(BOB), id, 1, duration, PRICE, H256::zero());
		// Created now, started at the end of the window (+10), 11 blocks would end past u64::MAX.
		assert_noop!(create(11), Error::<Test>::BlockNumberOverflow);
		let l = lease(BOB, id, 1, 5);
		assert_ok!(GpuRental::start_lease(RuntimeOrigin::signed(OPERATOR), l));
		assert_eq!(Leases::<Test>::get(l).unwrap().ends_at, u64::MAX - 15);
		assert_ok!(GpuRental::extend_lease(RuntimeOrigin::signed(BOB), l, 15));
		assert_eq!(Leases::<Test>::get(l).unwrap().ends_at, u64::MAX);
		assert_noop!(GpuRental::extend_lease(RuntimeOrigin::signed(BOB), l, 1), Error::<Test>::BlockNumberOverflow);
		let pending = lease(CHARLIE, id, 1, 10);
		assert_noop!(GpuRental::extend_lease(RuntimeOrigin::signed(CHARLIE), pending, 1), Error::<Test>::BlockNumberOverflow);
		ensure_money_exact();
	});
}

#[test]
fn lease_ids_run_out_with_an_error_instead_of_overwriting() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		NextLeaseId::<Test>::put(u64::MAX - 1);
		let last = lease(BOB, id, 1, 10);
		assert_eq!(last, u64::MAX - 1);
		assert_noop!(
			GpuRental::create_lease(RuntimeOrigin::signed(CHARLIE), id, 1, 10, PRICE, H256::zero()),
			Error::<Test>::LeaseIdsExhausted
		);
		assert_eq!(Leases::<Test>::get(last).unwrap().customer, BOB);
		ensure_money_exact();
	});
}

// 7. Reserving GPUs is never free: every pending lease that ends pays for its reservation.
#[test]
fn repeated_reservations_each_cost_at_least_a_block() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		for round in 1..=3u64 {
			let l = lease(BOB, id, 2, 100);
			assert_ok!(GpuRental::cancel_lease(RuntimeOrigin::signed(BOB), l));
			assert_eq!(free(BOB), INITIAL - round * 2 * PRICE);
		}
		// Held for 4 blocks while the machine was up: 4 blocks paid.
		let l = lease(BOB, id, 2, 100);
		run_to_block(5);
		assert_ok!(GpuRental::cancel_lease(RuntimeOrigin::signed(BOB), l));
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 72, fee: 8, accrued_until: 5 }));
		ensure_money_exact();
	});
}

#[test]
fn reservation_on_a_machine_that_was_down_is_free() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2); // fresh until 6
		run_to_block(8);
		let l = lease(BOB, id, 1, 100);
		run_to_block(8 + START_WINDOW + 1);
		assert_ok!(GpuRental::cancel_lease(RuntimeOrigin::signed(CHARLIE), l));
		assert_eq!(last_event(), Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::StartTimeout, refunded: 1_000 }.into());
		assert_eq!(free(BOB), INITIAL);
		ensure_money_exact();
	});
}

// 9. The GPU set follows the hardware; leases on vanished GPUs end, the bond follows the count.
#[test]
fn update_gpus_ends_leases_on_removed_gpus_and_adjusts_the_bond() {
	new_test_ext().execute_with(|| {
		let id = register(1, 8);
		let lost = running_lease(BOB, id, 2, 100); // slots 0, 1
		let kept = running_lease(CHARLIE, id, 1, 100); // slot 2
		run_to_block(3);
		let without_1 = 0b1111_1101u64;
		assert_noop!(
			GpuRental::update_gpus(RuntimeOrigin::signed(BOB), id, without_1).map_err(|e| e.error),
			Error::<Test>::NotMachineOperator
		);
		for bad in [0, 1u64 << MAX_GPUS] {
			assert_noop!(
				GpuRental::update_gpus(RuntimeOrigin::signed(OPERATOR), id, bad).map_err(|e| e.error),
				Error::<Test>::InvalidGpuSet
			);
		}
		assert_ok!(GpuRental::update_gpus(RuntimeOrigin::signed(OPERATOR), id, without_1));
		assert!(has_event(Event::PaymentClaimed { lease_id: lost, provider: ALICE, paid: 36, fee: 4, accrued_until: 3 }));
		assert!(has_event(Event::LeaseEnded { lease_id: lost, reason: LeaseEndReason::GpusRemoved, refunded: 2_000 - 40 }));
		assert!(has_event(Event::MachineGpusChanged { machine_id: id, gpus_present: without_1, gpu_count: 7, bond: 7 * BOND_PER_GPU }));
		assert!(Leases::<Test>::get(kept).is_some());
		let m = Machines::<Test>::get(id).unwrap();
		assert_eq!((m.gpu_count, m.used_gpus, m.bond), (7, 0b100, 7 * BOND_PER_GPU));
		assert_eq!(bond_held(ALICE), 7 * BOND_PER_GPU);
		// Slot 1 is gone: slots 0 and 3..=7 are free, never slot 1.
		assert_noop!(
			GpuRental::create_lease(RuntimeOrigin::signed(BOB), id, 7, 10, PRICE, H256::zero()),
			Error::<Test>::NotEnoughFreeGpus
		);
		let five = lease(BOB, id, 5, 10);
		assert_eq!(Leases::<Test>::get(five).unwrap().gpu_mask, 0b0111_1001);
		// Growing back holds the bond again.
		assert_ok!(GpuRental::update_gpus(RuntimeOrigin::signed(OPERATOR), id, 0xFF));
		assert_eq!(bond_held(ALICE), 8 * BOND_PER_GPU);
		ensure_money_exact();
	});
}

// 28. Refused calls pay for what they did; terminate after the end is an expiry; no empty lists.
#[test]
fn refused_heartbeat_and_start_pay_the_small_weight() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = lease(BOB, id, 1, 10);
		let err = GpuRental::heartbeat(RuntimeOrigin::signed(BOB), id, 0).unwrap_err();
		assert_eq!(err.post_info.actual_weight, Some(<() as WeightInfo>::heartbeat(0)));
		let err = GpuRental::start_lease(RuntimeOrigin::signed(BOB), l).unwrap_err();
		assert_eq!(err.post_info.actual_weight, Some(<() as WeightInfo>::start_lease(0)));
		let err = GpuRental::update_gpus(RuntimeOrigin::signed(BOB), id, 1).unwrap_err();
		assert_eq!(err.post_info.actual_weight, Some(<() as WeightInfo>::update_gpus(0)));
	});
}

#[test]
fn terminate_after_the_end_is_an_expiry_and_lists_are_removed() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = running_lease(BOB, id, 1, 3);
		run_to_block(6);
		assert_ok!(GpuRental::terminate_lease(RuntimeOrigin::signed(BOB), l));
		assert!(has_event(Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Expired, refunded: 0 }));
		assert!(!MachineLeases::<Test>::contains_key(id));
		assert!(!CustomerLeases::<Test>::contains_key(BOB));
		ensure_money_exact();
	});
}
