//! Benchmarks of the GPU rental pallet. Each sets up its call's worst case: full GPU masks, full
//! per-customer lease lists, and for heartbeats a stale machine whose every GPU is leased.

use super::*;
use crate::Pallet as GpuRental;
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Get};
use frame_system::RawOrigin;
use polkadot_sdk::frame_benchmarking;
use sp_runtime::traits::{Bounded, Saturating};

fn fund<T: Config>(who: &T::AccountId) {
	// Large, yet many funded accounts together stay far from overflowing total issuance.
	let amount = BalanceOf::<T>::max_value() / 1_000_000u32.into();
	let _ = T::Currency::set_balance(who, amount);
}

fn model<T: Config>() -> alloc::vec::Vec<u8> {
	alloc::vec![b'G'; T::MaxModelLen::get() as usize]
}

fn price<T: Config>() -> BalanceOf<T> {
	1_000u32.into()
}

/// Registers machine `n` with every GPU the runtime allows, owned by `owner`.
fn machine<T: Config>(n: u32, owner: &T::AccountId) -> MachineId {
	let mut id = [0u8; 32];
	id[..4].copy_from_slice(&n.to_le_bytes());
	fund::<T>(owner);
	GpuRental::<T>::register_machine(
		RawOrigin::Signed(owner.clone()).into(),
		id,
		owner.clone(),
		model::<T>(),
		T::MaxGpusPerMachine::get(),
		81_559,
		price::<T>(),
	)
	.expect("register");
	id
}

fn create<T: Config>(customer: &T::AccountId, machine_id: MachineId, gpus: u32) -> LeaseId {
	let id = NextLeaseId::<T>::get();
	GpuRental::<T>::create_lease(
		RawOrigin::Signed(customer.clone()).into(),
		machine_id,
		gpus,
		100u32.into(),
		price::<T>(),
		Default::default(),
	)
	.expect("create");
	id
}

fn start<T: Config>(owner: &T::AccountId, lease_id: LeaseId) {
	GpuRental::<T>::start_lease(RawOrigin::Signed(owner.clone()).into(), lease_id).expect("start");
}

/// Gives `customer` `MaxLeasesPerCustomer - 1` pending single-GPU leases on other machines, so
/// the call under test works on the longest list.
fn fill_customer<T: Config>(customer: &T::AccountId) {
	let per_machine = T::MaxGpusPerMachine::get();
	let others: T::AccountId = account("filler-owner", 0, 0);
	let wanted = T::MaxLeasesPerCustomer::get().saturating_sub(1);
	let mut m = 1_000;
	let mut made = 0;
	while made < wanted {
		let id = machine::<T>(m, &others);
		for _ in 0..per_machine.min(wanted - made) {
			create::<T>(customer, id, 1);
			made += 1;
		}
		m += 1;
	}
}

/// Starts `count` single-GPU leases on `machine_id`, each for its own funded customer.
fn start_single_gpu_leases<T: Config>(owner: &T::AccountId, machine_id: MachineId, count: u32) {
	for i in 0..count {
		let customer: T::AccountId = account("customer", i, 0);
		fund::<T>(&customer);
		let lease = create::<T>(&customer, machine_id, 1);
		start::<T>(owner, lease);
	}
}

fn ensure_treasury<T: Config>() {
	fund::<T>(&T::Treasury::get());
}

fn advance<T: Config>(blocks: u32) {
	let now = frame_system::Pallet::<T>::block_number();
	frame_system::Pallet::<T>::set_block_number(now.saturating_add(blocks.into()));
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn register_machine() {
		let owner: T::AccountId = whitelisted_caller();
		fund::<T>(&owner);
		let id = [7u8; 32];
		#[extrinsic_call]
		_(RawOrigin::Signed(owner.clone()), id, owner.clone(), model::<T>(), T::MaxGpusPerMachine::get(), 81_559, price::<T>());
		assert!(Machines::<T>::contains_key(id));
	}

	#[benchmark]
	fn set_price() {
		let owner: T::AccountId = whitelisted_caller();
		let id = machine::<T>(1, &owner);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id, 2_000u32.into());
		assert_eq!(Machines::<T>::get(id).unwrap().price_per_gpu_block, 2_000u32.into());
	}

	#[benchmark]
	fn set_online() {
		let owner: T::AccountId = whitelisted_caller();
		let id = machine::<T>(1, &owner);
		GpuRental::<T>::set_online(RawOrigin::Signed(owner.clone()).into(), id, false).unwrap();
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id, true);
		assert!(Machines::<T>::get(id).unwrap().online);
	}

	#[benchmark]
	fn deregister_machine() {
		let owner: T::AccountId = whitelisted_caller();
		let id = machine::<T>(1, &owner);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id);
		assert!(!Machines::<T>::contains_key(id));
	}

	#[benchmark]
	fn increase_bond() {
		let owner: T::AccountId = whitelisted_caller();
		let id = machine::<T>(1, &owner);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id, 1_000u32.into());
	}

	/// Worst case: the machine went stale, so `l` running leases must be settled, and every GPU
	/// turns unhealthy, so each of them is marked too.
	#[benchmark]
	fn heartbeat(l: Linear<0, { T::MaxGpusPerMachine::get() }>) {
		ensure_treasury::<T>();
		let owner: T::AccountId = whitelisted_caller();
		let id = machine::<T>(1, &owner);
		start_single_gpu_leases::<T>(&owner, id, l);
		advance::<T>(10u32.saturating_add(TryInto::<u32>::try_into(T::HeartbeatGrace::get()).unwrap_or(1_000)));
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id, u64::MAX);
		let machine = Machines::<T>::get(id).unwrap();
		assert_eq!(machine.last_heartbeat, frame_system::Pallet::<T>::block_number());
		assert_eq!(machine.unhealthy_gpus, machine.gpus_present);
	}

	#[benchmark]
	fn create_lease() {
		let owner: T::AccountId = account("owner", 0, 0);
		let id = machine::<T>(1, &owner);
		let customer: T::AccountId = whitelisted_caller();
		fund::<T>(&customer);
		fill_customer::<T>(&customer);
		let gpus = T::MaxGpusPerMachine::get();
		#[extrinsic_call]
		_(RawOrigin::Signed(customer.clone()), id, gpus, 100u32.into(), price::<T>(), Default::default());
		assert_eq!(CustomerLeases::<T>::get(&customer).len() as u32, T::MaxLeasesPerCustomer::get());
	}

	/// Worst case: the machine went stale and its other `l` running leases must be settled first.
	#[benchmark]
	fn start_lease(l: Linear<0, { T::MaxGpusPerMachine::get() - 1 }>) {
		ensure_treasury::<T>();
		let owner: T::AccountId = whitelisted_caller();
		let id = machine::<T>(1, &owner);
		start_single_gpu_leases::<T>(&owner, id, l);
		advance::<T>(TryInto::<u32>::try_into(T::HeartbeatGrace::get()).unwrap_or(1_000).saturating_add(1));
		let customer: T::AccountId = account("customer", 999, 0);
		fund::<T>(&customer);
		let lease = create::<T>(&customer, id, 1);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), lease);
		assert_eq!(Leases::<T>::get(lease).unwrap().state, LeaseState::Running);
	}

	#[benchmark]
	fn cancel_lease() {
		let owner: T::AccountId = account("owner", 0, 0);
		let id = machine::<T>(1, &owner);
		let customer: T::AccountId = whitelisted_caller();
		fund::<T>(&customer);
		fill_customer::<T>(&customer);
		let lease = create::<T>(&customer, id, T::MaxGpusPerMachine::get());
		#[extrinsic_call]
		_(RawOrigin::Signed(customer), lease);
		assert!(!Leases::<T>::contains_key(lease));
	}

	/// Worst case: the claim after the end block, which also settles and refunds.
	#[benchmark]
	fn claim_payment() {
		ensure_treasury::<T>();
		let owner: T::AccountId = whitelisted_caller();
		let id = machine::<T>(1, &owner);
		let customer: T::AccountId = account("customer", 0, 0);
		fund::<T>(&customer);
		fill_customer::<T>(&customer);
		let lease = create::<T>(&customer, id, T::MaxGpusPerMachine::get());
		start::<T>(&owner, lease);
		advance::<T>(200);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), lease);
		assert!(!Leases::<T>::contains_key(lease));
	}

	#[benchmark]
	fn extend_lease() {
		let owner: T::AccountId = account("owner", 0, 0);
		let id = machine::<T>(1, &owner);
		let customer: T::AccountId = whitelisted_caller();
		fund::<T>(&customer);
		let lease = create::<T>(&customer, id, T::MaxGpusPerMachine::get());
		start::<T>(&owner, lease);
		#[extrinsic_call]
		_(RawOrigin::Signed(customer), lease, 10u32.into());
		assert_eq!(Leases::<T>::get(lease).unwrap().duration, 110u32.into());
	}

	#[benchmark]
	fn terminate_lease() {
		ensure_treasury::<T>();
		let owner: T::AccountId = account("owner", 0, 0);
		let id = machine::<T>(1, &owner);
		let customer: T::AccountId = whitelisted_caller();
		fund::<T>(&customer);
		fill_customer::<T>(&customer);
		let lease = create::<T>(&customer, id, T::MaxGpusPerMachine::get());
		start::<T>(&owner, lease);
		advance::<T>(1);
		#[extrinsic_call]
		_(RawOrigin::Signed(customer), lease);
		assert!(!Leases::<T>::contains_key(lease));
	}

	#[benchmark]
	fn report_downtime() {
		ensure_treasury::<T>();
		let owner: T::AccountId = account("owner", 0, 0);
		let id = machine::<T>(1, &owner);
		let customer: T::AccountId = whitelisted_caller();
		fund::<T>(&customer);
		fill_customer::<T>(&customer);
		let lease = create::<T>(&customer, id, T::MaxGpusPerMachine::get());
		start::<T>(&owner, lease);
		advance::<T>(TryInto::<u32>::try_into(T::HeartbeatGrace::get()).unwrap_or(1_000).saturating_add(2));
		#[extrinsic_call]
		_(RawOrigin::Signed(customer), lease);
		assert!(!Leases::<T>::contains_key(lease));
	}

	#[benchmark]
	fn settle_lease() {
		ensure_treasury::<T>();
		let owner: T::AccountId = account("owner", 0, 0);
		let id = machine::<T>(1, &owner);
		let customer: T::AccountId = account("customer", 0, 0);
		fund::<T>(&customer);
		fill_customer::<T>(&customer);
		let lease = create::<T>(&customer, id, T::MaxGpusPerMachine::get());
		start::<T>(&owner, lease);
		advance::<T>(200);
		let anyone: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(anyone), lease);
		assert!(!Leases::<T>::contains_key(lease));
	}

	/// Worst case: `l` running leases hold GPUs that vanish and must be settled and ended.
	#[benchmark]
	fn update_gpus(l: Linear<0, { T::MaxGpusPerMachine::get() - 1 }>) {
		ensure_treasury::<T>();
		let owner: T::AccountId = whitelisted_caller();
		let id = machine::<T>(1, &owner);
		start_single_gpu_leases::<T>(&owner, id, l);
		advance::<T>(5);
		// Only the highest slot stays: every lease (on the lowest slots) loses its GPU.
		let last = 1u64 << (T::MaxGpusPerMachine::get() - 1);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id, last);
		assert_eq!(Machines::<T>::get(id).unwrap().gpu_count, 1);
		assert!(MachineLeases::<T>::get(id).is_empty());
	}

	impl_benchmark_test_suite!(GpuRental, crate::mock::new_test_ext(), crate::mock::Test);
}
