//! Claim and heartbeat time with 10 vs 10,000 running leases on the chain, natively: the pallet's
//! per-lease work must not grow with how many leases exist elsewhere (its weights, which assume
//! it does not, come from the benchmarking CLI: chain/scripts/bench-weights).
//!
//!   gridlease-bench-scale [--repeat N]

use gridlease_runtime::{genesis::dev_genesis, Runtime, RuntimeOrigin};
use polkadot_sdk::{
	pallet_balances,
	sp_core::H256,
	sp_io::TestExternalities,
	sp_runtime::BuildStorage,
};
use std::time::Instant;

fn genesis() -> TestExternalities {
	TestExternalities::new(dev_genesis().build_storage().expect("genesis"))
}

fn median(mut v: Vec<u128>) -> u128 {
	v.sort_unstable();
	v[v.len() / 2]
}

/// Times claim_payment and heartbeat with `active` running leases on the chain (16 per machine).
fn flat_check(active: u32, repeat: usize) -> (u128, u128, u128) {
	use gridlease_runtime::{GpuRental, System};
	use polkadot_sdk::{
		frame_support::storage::{with_transaction, TransactionOutcome},
		sp_keyring::Sr25519Keyring,
		sp_runtime::{traits::AccountIdConversion, DispatchError},
	};
	let mut t = genesis();
	let owner = Sr25519Keyring::Alice.to_account_id();
	let gpus_per_machine = 16u32;
	let machines = active.div_ceil(gpus_per_machine);
	t.execute_with(|| {
		System::set_block_number(1);
		let _ = <pallet_balances::Pallet<Runtime> as polkadot_sdk::frame_support::traits::fungible::Mutate<_>>::set_balance(&owner, 1u128 << 100);
		for m in 0..machines {
			let mut id = [0u8; 32];
			id[..4].copy_from_slice(&m.to_le_bytes());
			GpuRental::register_machine(
				RuntimeOrigin::signed(owner.clone()), id, owner.clone(),
				b"H100".to_vec(),
				gpus_per_machine, 81_559, 1_000_000,
			).expect("register");
			for g in 0..gpus_per_machine.min(active - m * gpus_per_machine) {
				// 64 leases per customer at most: a customer per machine is plenty.
				let customer: polkadot_sdk::sp_runtime::AccountId32 =
					polkadot_sdk::frame_support::PalletId(*b"bench/cu").into_sub_account_truncating(m);
				if g == 0 {
					let _ = <pallet_balances::Pallet<Runtime> as polkadot_sdk::frame_support::traits::fungible::Mutate<_>>::set_balance(&customer, 1u128 << 100);
				}
				let lease = pallet_gpu_rental::NextLeaseId::<Runtime>::get();
				GpuRental::create_lease(RuntimeOrigin::signed(customer), id, 1, 1_000, 1_000_000, H256::zero()).expect("create");
				GpuRental::start_lease(RuntimeOrigin::signed(owner.clone()), lease).expect("start");
			}
		}
		// A new block starts with no events; the setup's 2 * N events would distort every call.
		System::reset_events();
	});
	t.commit_all().expect("commit");
	t.execute_with(|| {
		System::set_block_number(20);
		let machine0 = [0u8; 32];
		let time = |f: &dyn Fn() -> Result<(), DispatchError>| -> u128 {
			median((0..repeat).map(|_| {
				let start = Instant::now();
				let _ = with_transaction(|| TransactionOutcome::Rollback(f()));
				start.elapsed().as_nanos()
			}).collect())
		};
		let claim = time(&|| GpuRental::claim_payment(RuntimeOrigin::signed(owner.clone()), 0).map_err(|e| e));
		let heartbeat = time(&|| GpuRental::heartbeat(RuntimeOrigin::signed(owner.clone()), machine0, 0).map(|_| ()).map_err(|e| e.error));
		System::set_block_number(200); // stale: the heartbeat settles the machine's 16 leases
		let gap = time(&|| GpuRental::heartbeat(RuntimeOrigin::signed(owner.clone()), machine0, 0).map(|_| ()).map_err(|e| e.error));
		(claim, heartbeat, gap)
	})
}

fn main() {
	let args: Vec<String> = std::env::args().collect();
	let repeat: usize = args
		.iter()
		.position(|a| a == "--repeat")
		.and_then(|i| args.get(i + 1))
		.map(|r| r.parse().expect("--repeat N"))
		.unwrap_or(300);
	println!("claim / heartbeat time with N active leases (native, median of {repeat}):");
	println!("{:>8} {:>12} {:>15} {:>26}", "leases", "claim us", "heartbeat us", "heartbeat after gap us");
	for active in [10u32, 10_000] {
		let (claim, hb, gap) = flat_check(active, repeat);
		println!("{:>8} {:>12.2} {:>15.2} {:>26.2}", active, claim as f64 / 1e3, hb as f64 / 1e3, gap as f64 / 1e3);
	}
}
