//! Pay only for healthy GPUs: heartbeats carry the unhealthy GPU slots; a lease holding one stops
//! accruing at that block, resumes without pay for the gap, and can be ended by anyone once it
//! stayed unhealthy past `UnhealthyGrace`.

use super::*;
use crate::{weights::WeightInfo, Error, LeaseEndReason, Leases, Machines};
use polkadot_sdk::frame_support::assert_noop;

fn heartbeat(id: MachineId, unhealthy: u64) {
	assert_ok!(GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), id, unhealthy));
}

#[test]
fn an_unhealthy_gpu_stops_its_lease_at_once_and_the_other_lease_keeps_paying() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let a = running_lease(BOB, id, 1, 100); // slot 0
		let b = running_lease(CHARLIE, id, 1, 100); // slot 1
		run_to_block(4);
		heartbeat(id, 0b01);
		assert!(has_event(Event::LeaseHealthChanged { lease_id: a, healthy: false }));
		assert!(!has_event(Event::LeaseHealthChanged { lease_id: b, healthy: false }));
		assert_eq!(Leases::<Test>::get(a).unwrap().unhealthy_since, 4);
		assert_eq!(Machines::<Test>::get(id).unwrap().unhealthy_gpus, 0b01);
		run_to_block(8);
		System::reset_events();
		heartbeat(id, 0b01); // the same report changes nothing
		assert!(!has_event(Event::LeaseHealthChanged { lease_id: a, healthy: false }));
		run_to_block(10);
		// a: blocks 1..4 only (3 * 10 = 30, fee 3); b: blocks 1..10 (90, fee 9).
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), a));
		assert_eq!(
			last_event(),
			Event::PaymentClaimed { lease_id: a, provider: ALICE, paid: 27, fee: 3, accrued_until: 4 }.into()
		);
		assert_noop!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), a), Error::<Test>::NothingToClaim);
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), b));
		assert_eq!(
			last_event(),
			Event::PaymentClaimed { lease_id: b, provider: ALICE, paid: 81, fee: 9, accrued_until: 10 }.into()
		);
		ensure_money_exact();
	});
}

#[test]
fn a_lease_healthy_again_resumes_without_pay_for_the_unhealthy_blocks() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = running_lease(BOB, id, 1, 100);
		run_to_block(3);
		heartbeat(id, 1);
		run_to_block(7);
		System::reset_events();
		heartbeat(id, 0);
		// What accrued before the fault (blocks 1..3) is paid now; blocks 3..7 never are.
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 18, fee: 2, accrued_until: 3 }));
		assert!(has_event(Event::LeaseHealthChanged { lease_id: l, healthy: true }));
		let lease = Leases::<Test>::get(l).unwrap();
		assert_eq!((lease.unhealthy_since, lease.accrue_from), (0, 7));
		run_to_block(9);
		assert_ok!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), l));
		assert_eq!(
			last_event(),
			Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 18, fee: 2, accrued_until: 9 }.into()
		);
		ensure_money_exact();
	});
}

#[test]
fn anyone_ends_a_lease_unhealthy_past_the_grace_with_refund_and_compensation() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = running_lease(BOB, id, 1, 100); // escrow 1000
		run_to_block(3);
		heartbeat(id, 1); // unhealthy since 3; reportable after 3 + UNHEALTHY_GRACE = 6
		run_to_block(6);
		assert_noop!(GpuRental::report_downtime(RuntimeOrigin::signed(DAVE), l), Error::<Test>::NotLeaseCustomer);
		assert_noop!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l), Error::<Test>::UnhealthyGraceOpen);
		run_to_block(7);
		let (bob_before, alice_bond) = (free(BOB), bond_held(ALICE));
		assert_ok!(GpuRental::report_downtime(RuntimeOrigin::signed(DAVE), l));
		// Provider paid blocks 1..3 (20); refund 980; compensation 50% of the 1-GPU bond.
		let compensation = BOND_PER_GPU / 2;
		assert!(has_event(Event::PaymentClaimed { lease_id: l, provider: ALICE, paid: 18, fee: 2, accrued_until: 3 }));
		assert!(has_event(Event::LeaseEnded { lease_id: l, reason: LeaseEndReason::Failed, refunded: 980 }));
		assert!(has_event(Event::DowntimeCompensated { lease_id: l, customer: BOB, amount: compensation }));
		assert_eq!(free(BOB), bob_before + 980 + compensation);
		assert_eq!(bond_held(ALICE), alice_bond - compensation);
		assert!(Leases::<Test>::get(l).is_none());
		ensure_money_exact();
	});
}

#[test]
fn new_leases_never_get_an_unhealthy_gpu() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		heartbeat(id, 0b01);
		let l = lease(BOB, id, 1, 10);
		assert_eq!(Leases::<Test>::get(l).unwrap().gpu_mask, 0b10);
		assert_noop!(
			GpuRental::create_lease(RuntimeOrigin::signed(CHARLIE), id, 1, 10, PRICE, H256::repeat_byte(7)),
			Error::<Test>::NotEnoughFreeGpus
		);
		heartbeat(id, 0);
		let again = lease(CHARLIE, id, 1, 10);
		assert_eq!(Leases::<Test>::get(again).unwrap().gpu_mask, 0b01);
		ensure_money_exact();
	});
}

#[test]
fn slots_not_present_are_ignored_and_removed_slots_leave_the_mask() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		heartbeat(id, u64::MAX);
		assert_eq!(Machines::<Test>::get(id).unwrap().unhealthy_gpus, 0b11);
		assert!(has_event(Event::HeartbeatReceived { machine_id: id, gap: 0, unhealthy_gpus: 0b11 }));
		assert_ok!(GpuRental::update_gpus(RuntimeOrigin::signed(OPERATOR), id, 0b10));
		assert_eq!(Machines::<Test>::get(id).unwrap().unhealthy_gpus, 0b10);
		ensure_money_exact();
	});
}

#[test]
fn a_lease_started_on_a_gpu_that_turned_unhealthy_is_not_paid() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = lease(BOB, id, 1, 100);
		heartbeat(id, 1); // pending leases are not marked
		assert_eq!(Leases::<Test>::get(l).unwrap().unhealthy_since, 0);
		run_to_block(2);
		assert_ok!(GpuRental::start_lease(RuntimeOrigin::signed(OPERATOR), l));
		assert!(has_event(Event::LeaseHealthChanged { lease_id: l, healthy: false }));
		assert_eq!(Leases::<Test>::get(l).unwrap().unhealthy_since, 2);
		run_to_block(4);
		assert_noop!(GpuRental::claim_payment(RuntimeOrigin::signed(OPERATOR), l), Error::<Test>::NothingToClaim);
		ensure_money_exact();
	});
}

#[test]
fn a_lease_past_its_end_is_not_marked_and_stays_served() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		let l = running_lease(BOB, id, 1, 3); // ends at 4
		run_to_block(5);
		System::reset_events();
		heartbeat(id, 1);
		assert!(!has_event(Event::LeaseHealthChanged { lease_id: l, healthy: false }));
		run_to_block(20);
		assert_noop!(GpuRental::report_downtime(RuntimeOrigin::signed(DAVE), l), Error::<Test>::NotLeaseCustomer);
		assert_noop!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l), Error::<Test>::LeaseServed);
		ensure_money_exact();
	});
}

#[test]
fn a_heartbeat_pays_weight_only_for_the_leases_it_touched() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		running_lease(BOB, id, 1, 100);
		running_lease(CHARLIE, id, 1, 100);
		let same = GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), id, 0).unwrap();
		assert_eq!(same.actual_weight, Some(<() as WeightInfo>::heartbeat(0)));
		let changed = GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), id, 0b10).unwrap();
		assert_eq!(changed.actual_weight, Some(<() as WeightInfo>::heartbeat(1)));
	});
}
