//! Machine registration, price, availability, bond, heartbeat and deregistration.

use super::*;
use crate::{Error, Machines};
use polkadot_sdk::frame_support::assert_noop;

#[test]
fn register_machine_holds_bond_and_records_machine() {
	new_test_ext().execute_with(|| {
		let id = register(1, 4);
		let m = Machines::<Test>::get(id).unwrap();
		assert_eq!((m.owner, m.operator, m.gpu_count, m.price_per_gpu_block), (ALICE, OPERATOR, 4, PRICE));
		assert_eq!((m.bond, m.online, m.used_gpus, m.gpus_present), (4 * BOND_PER_GPU, true, 0, 0b1111));
		assert_eq!(bond_held(ALICE), 4 * BOND_PER_GPU);
		assert_eq!(free(ALICE), INITIAL - 4 * BOND_PER_GPU);
		assert_eq!(
			last_event(),
			Event::MachineRegistered {
				machine_id: id,
				owner: ALICE,
				operator: OPERATOR,
				gpu_count: 4,
				price_per_gpu_block: PRICE,
				bond: 4 * BOND_PER_GPU
			}
			.into()
		);
		ensure_money_valid();
	});
}

#[test]
fn register_machine_rejects_bad_input() {
	new_test_ext().execute_with(|| {
		let id = register(1, 4);
		let reg = |id, gpus, model, price| {
			GpuRental::register_machine(RuntimeOrigin::signed(DAVE), id, OPERATOR, model, gpus, 1, price)
		};
		assert_noop!(reg(id, 4, model(), PRICE), Error::<Test>::MachineAlreadyRegistered);
		assert_noop!(reg(machine_id(2), 0, model(), PRICE), Error::<Test>::InvalidGpuCount);
		assert_noop!(reg(machine_id(2), MAX_GPUS + 1, model(), PRICE), Error::<Test>::InvalidGpuCount);
		assert_noop!(reg(machine_id(2), 2, Default::default(), PRICE), Error::<Test>::InvalidGpuModel);
		// Longer than MaxModelLen (32): a named error, not an undecodable call.
		assert_noop!(reg(machine_id(2), 2, vec![b'x'; 33], PRICE), Error::<Test>::InvalidGpuModel);
		assert_noop!(reg(machine_id(2), 2, model(), 0), Error::<Test>::ZeroPrice);
		assert_ok!(reg(machine_id(2), 2, vec![b'x'; 32], PRICE));
	});
}

#[test]
fn register_machine_fails_without_bond_funds() {
	new_test_ext().execute_with(|| {
		// DAVE can hold at most INITIAL - ED.
		assert_ok!(Balances::transfer_allow_death(RuntimeOrigin::signed(DAVE), BOB, INITIAL - 500));
		assert_noop!(
			GpuRental::register_machine(RuntimeOrigin::signed(DAVE), machine_id(2), DAVE, model(), 1, 1, PRICE),
			Error::<Test>::InsufficientBalance
		);
		ensure_money_valid();
	});
}

#[test]
fn set_price_changes_price_for_new_leases_only() {
	new_test_ext().execute_with(|| {
		let id = register(1, 4);
		let running = running_lease(BOB, id, 1, 100);
		assert_ok!(GpuRental::set_price(RuntimeOrigin::signed(ALICE), id, 25));
		assert_eq!(last_event(), Event::MachinePriceChanged { machine_id: id, price_per_gpu_block: 25 }.into());
		assert_eq!(Machines::<Test>::get(id).unwrap().price_per_gpu_block, 25);
		assert_eq!(crate::Leases::<Test>::get(running).unwrap().price_per_gpu_block, PRICE);
		// A customer whose ceiling is the old price is protected.
		assert_noop!(
			GpuRental::create_lease(RuntimeOrigin::signed(CHARLIE), id, 1, 10, PRICE, H256::zero()),
			Error::<Test>::PriceAboveLimit
		);
	});
}

#[test]
fn set_price_rejects_bad_callers_and_zero() {
	new_test_ext().execute_with(|| {
		let id = register(1, 4);
		assert_noop!(GpuRental::set_price(RuntimeOrigin::signed(ALICE), machine_id(9), 5), Error::<Test>::MachineNotFound);
		assert_noop!(GpuRental::set_price(RuntimeOrigin::signed(OPERATOR), id, 5), Error::<Test>::NotMachineOwner);
		assert_noop!(GpuRental::set_price(RuntimeOrigin::signed(ALICE), id, 0), Error::<Test>::ZeroPrice);
	});
}

#[test]
fn set_online_false_refuses_new_leases_and_true_restores() {
	new_test_ext().execute_with(|| {
		let id = register(1, 4);
		assert_ok!(GpuRental::set_online(RuntimeOrigin::signed(ALICE), id, false));
		assert_eq!(last_event(), Event::MachineAvailabilityChanged { machine_id: id, online: false }.into());
		assert_noop!(
			GpuRental::create_lease(RuntimeOrigin::signed(BOB), id, 1, 10, PRICE, H256::zero()),
			Error::<Test>::MachineOffline
		);
		assert_ok!(GpuRental::set_online(RuntimeOrigin::signed(ALICE), id, true));
		lease(BOB, id, 1, 10);
		assert_noop!(GpuRental::set_online(RuntimeOrigin::signed(BOB), id, true), Error::<Test>::NotMachineOwner);
		assert_noop!(
			GpuRental::set_online(RuntimeOrigin::signed(ALICE), machine_id(9), true),
			Error::<Test>::MachineNotFound
		);
	});
}

#[test]
fn set_online_requires_full_bond_after_penalty() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = running_lease(BOB, id, 2, 100);
		run_to_block(1 + GRACE + 1);
		assert_ok!(GpuRental::report_downtime(RuntimeOrigin::signed(BOB), l));
		assert!(!Machines::<Test>::get(id).unwrap().online);
		assert_noop!(GpuRental::set_online(RuntimeOrigin::signed(ALICE), id, true), Error::<Test>::BondTooLow);
		let missing = 2 * BOND_PER_GPU - Machines::<Test>::get(id).unwrap().bond;
		assert_ok!(GpuRental::increase_bond(RuntimeOrigin::signed(ALICE), id, missing));
		assert_ok!(GpuRental::set_online(RuntimeOrigin::signed(ALICE), id, true));
		ensure_money_valid();
	});
}

#[test]
fn increase_bond_holds_more() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		assert_ok!(GpuRental::increase_bond(RuntimeOrigin::signed(ALICE), id, 500));
		assert_eq!(bond_held(ALICE), BOND_PER_GPU + 500);
		assert_eq!(last_event(), Event::MachineBondIncreased { machine_id: id, amount: 500, bond: BOND_PER_GPU + 500 }.into());
		assert_noop!(GpuRental::increase_bond(RuntimeOrigin::signed(BOB), id, 1), Error::<Test>::NotMachineOwner);
		assert_noop!(GpuRental::increase_bond(RuntimeOrigin::signed(ALICE), machine_id(9), 1), Error::<Test>::MachineNotFound);
		assert_noop!(GpuRental::increase_bond(RuntimeOrigin::signed(ALICE), id, INITIAL), Error::<Test>::InsufficientBalance);
		assert_noop!(GpuRental::increase_bond(RuntimeOrigin::signed(ALICE), id, u64::MAX), Error::<Test>::Overflow);
		ensure_money_valid();
	});
}

#[test]
fn heartbeat_only_from_operator_or_owner() {
	new_test_ext().execute_with(|| {
		let id = register(1, 1);
		run_to_block(3);
		assert_ok!(GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), id, 0));
		assert_eq!(last_event(), Event::HeartbeatReceived { machine_id: id, gap: 0, unhealthy_gpus: 0 }.into());
		assert_ok!(GpuRental::heartbeat(RuntimeOrigin::signed(ALICE), id, 0));
		assert_eq!(Machines::<Test>::get(id).unwrap().last_heartbeat, 3);
		assert_noop!(GpuRental::heartbeat(RuntimeOrigin::signed(BOB), id, 0).map_err(|e| e.error), Error::<Test>::NotMachineOperator);
		assert_noop!(GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), machine_id(9), 0).map_err(|e| e.error), Error::<Test>::MachineNotFound);
		run_to_block(3 + GRACE + 4);
		assert_ok!(GpuRental::heartbeat(RuntimeOrigin::signed(OPERATOR), id, 0));
		assert_eq!(last_event(), Event::HeartbeatReceived { machine_id: id, gap: 4, unhealthy_gpus: 0 }.into());
	});
}

#[test]
fn deregister_machine_releases_bond_when_idle() {
	new_test_ext().execute_with(|| {
		let id = register(1, 2);
		let l = lease(BOB, id, 1, 10);
		assert_noop!(GpuRental::deregister_machine(RuntimeOrigin::signed(ALICE), id), Error::<Test>::MachineHasLeases);
		assert_noop!(GpuRental::deregister_machine(RuntimeOrigin::signed(BOB), id), Error::<Test>::NotMachineOwner);
		assert_noop!(
			GpuRental::deregister_machine(RuntimeOrigin::signed(ALICE), machine_id(9)),
			Error::<Test>::MachineNotFound
		);
		assert_ok!(GpuRental::cancel_lease(RuntimeOrigin::signed(BOB), l));
		assert_ok!(GpuRental::deregister_machine(RuntimeOrigin::signed(ALICE), id));
		assert_eq!(last_event(), Event::MachineDeregistered { machine_id: id, bond_released: 2 * BOND_PER_GPU }.into());
		assert!(Machines::<Test>::get(id).is_none());
		// The cancelled lease paid its one-block reservation (10, fee 1) to ALICE.
		assert_eq!((bond_held(ALICE), free(ALICE)), (0, INITIAL + 9));
		ensure_money_valid();
	});
}
