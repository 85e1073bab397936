//! Uptime-based pay: claims, heartbeat gaps, downtime reports and settlement.

use super::*;
use crate::{Error, LeaseEndReason, Leases, Machines};
use polkadot_sdk::frame_support::assert_noop;

#[test]
fn claim_payment_pays_fresh_blocks_less_fee() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = running_lease(BOB, id, 1, 100);
		run_to_block(5);
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), l));
		// 4 blocks * 1 GPU * 10 = 40; fee 4.
		assert_eq!(
			last_event(),
			Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 36, fee: 4, accrued_until: 5 }.into()
		);
		assert_eq!(free(ALICE), INITIAL - 2 * BOND_PER_GPU + 36);
		assert_eq!(Leases::<Test>::get(l).unwrap().escrow, 1000 - 40);
		assert_noop!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), l), Error::<Test>::NothingToClaim);
		assert_noop!(GpuRental::claim_payment(RuntimeOrigin::signed(BOB), l), Error::<Test>::NotMachineOperator);
		assert_noop!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), 77), Error::<Test>::LeaseNotFound);
		let pending = lease(CHARLIE, id, 1, 10);
		assert_noop!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), pending), Error::<Test>::LeaseNotRunning);
		ensure_money_valid();
	});
}

#[test]
fn claim_payment_stops_accruing_when_heartbeats_stop() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = running_lease(BOB, id, 1, 100); // heartbeat at 1: fresh until 1 + GRACE = 6
		run_to_block(20);
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(ALICE), l));
		assert_eq!(
			last_event(),
			Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 45, fee: 5, accrued_until: 6 }.into()
		);
		assert_noop!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), l), Error::<Test>::NothingToClaim);
	});
}

#[test]
fn heartbeat_after_gap_does_not_pay_the_gap() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let a = running_lease(BOB, id, 1, 100);
		let b = running_lease(CHARLIE, id, 1, 100);
		run_to_block(30); // stale since 6
		assert_ok!(GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), id, 0));
		assert!(has_event(Event::HeartbeatReceived { machine_id: id, gap: 24, unhealthy_gpus: 0 }));
		// Both leases were paid blocks 1..=6 (5 blocks) and moved past the gap.
		for l in [a, b] {
			assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 45, fee: 5, accrued_until: 6 }));
			assert_eq!(Leases::<Test>::get(l).unwrap().accrue_from, 30);
		}
		run_to_block(33);
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), a));
		assert_eq!(
			last_event(),
			Event::PaymentClaimed { lease_id: a, provider: ALICE, paid: 27, fee: 3, accrued_until: 33 }.into()
		);
		ensure_money_valid();
	});
}

#[test]
fn claim_after_end_settles_lease() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = running_lease(BOB, id, 1, 8);
		for b in [4, 8] {
			run_to_block(b);
			assert_ok!(GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), id, 0));
		}
		run_to_block(12); // ends at 9
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), l));
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 72, fee: 8, accrued_until: 9 }));
		assert_eq!(last_event(), Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Expired, refunded: 0 }.into());
		assert!(Leases::<Test>::get(l).is_none());
		assert_eq!(free(BOB), INITIAL - 80);
		ensure_money_valid();
	});
}

#[test]
fn settle_lease_by_anyone_after_end_refunds_unpaid_downtime() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = running_lease(BOB, id, 1, 20); // fresh until 6, ends at 21
		assert_noop!(GpuRental::settle_lease(RuntimeOrigin::signed(DAVE), l), Error::<Test>::LeaseNotEnded);
		run_to_block(21);
		assert_ok!(GpuRental::settle_lease(RuntimeOrigin::signed(DAVE), l));
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 45, fee: 5, accrued_until: 6 }));
		assert_eq!(last_event(), Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Expired, refunded: 150 }.into());
		assert_eq!(free(BOB), INITIAL - 50);
		assert_eq!(Machines::<Test>::get(id).unwrap().used_gpus, 0);
		let pending = lease(BOB, id, 1, 5);
		assert_noop!(GpuRental::settle_lease(RuntimeOrigin::signed(DAVE), pending), Error::<Test>::LeaseNotRunning);
		assert_noop!(GpuRental::settle_lease(RuntimeOrigin::signed(DAVE), 77), Error::<Test>::LeaseNotFound);
		ensure_money_valid();
	});
}

#[test]
fn report_downtime_refunds_and_compensates_from_bond() {
	new_test_ext().execute_with(|| {
		let id = register(1, 4);
		let l = running_lease(BOB, id, 2, 100); // escrow 2000, fresh until 6
		run_to_block(6);
		assert_noop!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l), Error::<Test>::MachineNotStale);
		run_to_block(9);
		assert_noop!(GpuRental::report_downtime(RuntimeOrigin::signed(CHARLIE), l), Error::<Test>::NotLeaseCustomer);
		assert_ok!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l));
		// Paid 5 fresh blocks * 2 GPUs * 10 = 100 (fee 10); refunded 1900.
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 90, fee: 10, accrued_until: 6 }));
		// Compensation: 50% of the bond share of 2 of 4 GPUs = 50% * 2000 = 1000.
		assert!(has_event(Event::DowntimeCompensated { lease_id: l, customer: BOB, amount: 1000 }));
		assert!(has_event(Event::MachineAvailabilityChanged { machine_id: id, online: false }));
		assert_eq!(last_event(), Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Failed, refunded: 1900 }.into());
		assert_eq!(free(BOB), INITIAL - 100 + 1000);
		assert_eq!(bond_held(ALICE), 4 * BOND_PER_GPU - 1000);
		assert_eq!(Machines::<Test>::get(id).unwrap().bond, 3000);
		ensure_money_valid();
	});
}

#[test]
fn report_downtime_requires_running_lease() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = lease(BOB, id, 1, 100);
		run_to_block(9);
		assert_noop!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l), Error::<Test>::LeaseNotRunning);
		assert_noop!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), 77), Error::<Test>::LeaseNotFound);
	});
}

#[test]
fn full_lifecycle_conserves_money_to_the_unit() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = running_lease(BOB, id, 2, 10);
		run_to_block(4);
		assert_ok!(GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), id, 0));
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), l));
		assert_ok!(GpuRental::extend_lease(RuntimeOrigin::signed(BOB), l, 5));
		run_to_block(8);
		assert_ok!(GpuRental::terminate_lease(RuntimeOrigin::signed(BOB), l));
		// 7 fresh blocks * 2 GPUs * 10 = 140 spent: 126 to the provider, 14 fee.
		assert_eq!(free(BOB), INITIAL - 140);
		assert_eq!(free(ALICE), INITIAL - 2 * BOND_PER_GPU + 126);
		assert_eq!(free(TREASURY), INITIAL + 14);
		assert_eq!(escrow_held(BOB), 0);
		ensure_money_valid();
	});
}
