//! Measures the GPU rental pallet's weights from its benchmarks, natively, and writes them to
//! `pallets/gpu-rental/src/weights.rs`. Also measures `Balances::transfer_keep_alive` the same way
//! (for the relative figures), and claim/heartbeat with 10 vs 10,000 active leases.
//!
//! Why not the usual `benchmark pallet` CLI: that needs a node or `frame-omni-bencher` (over a
//! thousand more crates). The benchmarks' own `run_benchmark` works natively once the
//! externalities count storage reads and writes, which `CountingExt` below does.
//!
//!   gridlease-bench-weights [--repeat N] [--write PATH]

use frame_benchmarking::{BenchmarkParameter, BenchmarkResult, Benchmarking};
use gridlease_runtime::{genesis::dev_genesis, AllPalletsWithSystem, Runtime, RuntimeOrigin};
use polkadot_sdk::{
	frame_benchmarking,
	frame_support::traits::WhitelistedStorageKeys,
	pallet_balances,
	sp_core::{storage::TrackedStorageKey, H256},
	sp_externalities::{self, Extension, ExtensionStore, Externalities, MultiRemovalResults},
	sp_io::TestExternalities,
	sp_runtime::{BuildStorage, StateVersion},
	sp_storage::ChildInfo,
};
use std::{
	any::{Any, TypeId},
	collections::{BTreeMap, HashSet},
	time::Instant,
};

/// Externalities that count distinct storage keys read and written since the last reset, as the
/// benchmarking database does, and keep all changes in the overlay (commit is a no-op; wipe rolls
/// back to where measuring started).
struct CountingExt<E: Externalities> {
	inner: E,
	whitelist: HashSet<Vec<u8>>,
	reads: BTreeMap<Vec<u8>, u32>,
	writes: BTreeMap<Vec<u8>, u32>,
}

impl<E: Externalities> CountingExt<E> {
	fn new(mut inner: E) -> Self {
		inner.storage_start_transaction();
		Self { inner, whitelist: HashSet::new(), reads: BTreeMap::new(), writes: BTreeMap::new() }
	}
	fn read(&mut self, key: &[u8]) {
		*self.reads.entry(key.to_vec()).or_default() += 1;
	}
	fn write(&mut self, key: &[u8]) {
		*self.writes.entry(key.to_vec()).or_default() += 1;
	}
	fn counted(&self, map: &BTreeMap<Vec<u8>, u32>) -> (u32, u32) {
		let mut first = 0;
		let mut repeat = 0;
		for (k, n) in map {
			if !self.whitelist.contains(k) {
				first += 1;
				repeat += n - 1;
			}
		}
		(first, repeat)
	}
}

impl<E: Externalities> ExtensionStore for CountingExt<E> {
	fn extension_by_type_id(&mut self, type_id: TypeId) -> Option<&mut dyn Any> {
		self.inner.extension_by_type_id(type_id)
	}
	fn register_extension_with_type_id(
		&mut self,
		type_id: TypeId,
		extension: Box<dyn Extension>,
	) -> Result<(), sp_externalities::Error> {
		self.inner.register_extension_with_type_id(type_id, extension)
	}
	fn deregister_extension_by_type_id(&mut self, type_id: TypeId) -> Result<(), sp_externalities::Error> {
		self.inner.deregister_extension_by_type_id(type_id)
	}
}

impl<E: Externalities> Externalities for CountingExt<E> {
	fn set_offchain_storage(&mut self, key: &[u8], value: Option<&[u8]>) {
		self.inner.set_offchain_storage(key, value)
	}
	fn storage(&mut self, key: &[u8]) -> Option<Vec<u8>> {
		self.read(key);
		self.inner.storage(key)
	}
	fn storage_hash(&mut self, key: &[u8]) -> Option<Vec<u8>> {
		self.read(key);
		self.inner.storage_hash(key)
	}
	fn child_storage_hash(&mut self, child_info: &ChildInfo, key: &[u8]) -> Option<Vec<u8>> {
		self.inner.child_storage_hash(child_info, key)
	}
	fn child_storage(&mut self, child_info: &ChildInfo, key: &[u8]) -> Option<Vec<u8>> {
		self.inner.child_storage(child_info, key)
	}
	fn exists_storage(&mut self, key: &[u8]) -> bool {
		self.read(key);
		self.inner.exists_storage(key)
	}
	fn next_storage_key(&mut self, key: &[u8]) -> Option<Vec<u8>> {
		self.read(key);
		self.inner.next_storage_key(key)
	}
	fn next_child_storage_key(&mut self, child_info: &ChildInfo, key: &[u8]) -> Option<Vec<u8>> {
		self.inner.next_child_storage_key(child_info, key)
	}
	fn kill_child_storage(
		&mut self,
		child_info: &ChildInfo,
		maybe_limit: Option<u32>,
		maybe_cursor: Option<&[u8]>,
	) -> MultiRemovalResults {
		self.inner.kill_child_storage(child_info, maybe_limit, maybe_cursor)
	}
	fn clear_prefix(
		&mut self,
		prefix: &[u8],
		maybe_limit: Option<u32>,
		maybe_cursor: Option<&[u8]>,
	) -> MultiRemovalResults {
		self.write(prefix);
		self.inner.clear_prefix(prefix, maybe_limit, maybe_cursor)
	}
	fn clear_child_prefix(
		&mut self,
		child_info: &ChildInfo,
		prefix: &[u8],
		maybe_limit: Option<u32>,
		maybe_cursor: Option<&[u8]>,
	) -> MultiRemovalResults {
		self.inner.clear_child_prefix(child_info, prefix, maybe_limit, maybe_cursor)
	}
	fn place_storage(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
		self.write(&key);
		self.inner.place_storage(key, value)
	}
	fn place_child_storage(&mut self, child_info: &ChildInfo, key: Vec<u8>, value: Option<Vec<u8>>) {
		self.inner.place_child_storage(child_info, key, value)
	}
	fn storage_root(&mut self, state_version: StateVersion) -> Vec<u8> {
		self.inner.storage_root(state_version)
	}
	fn child_storage_root(&mut self, child_info: &ChildInfo, state_version: StateVersion) -> Vec<u8> {
		self.inner.child_storage_root(child_info, state_version)
	}
	fn storage_append(&mut self, key: Vec<u8>, value: Vec<u8>) {
		self.write(&key);
		self.inner.storage_append(key, value)
	}
	fn storage_start_transaction(&mut self) {
		self.inner.storage_start_transaction()
	}
	fn storage_rollback_transaction(&mut self) -> Result<(), ()> {
		self.inner.storage_rollback_transaction()
	}
	fn storage_commit_transaction(&mut self) -> Result<(), ()> {
		self.inner.storage_commit_transaction()
	}
	fn wipe(&mut self) {
		let _ = self.inner.storage_rollback_transaction();
		self.inner.storage_start_transaction();
	}
	fn commit(&mut self) {}
	fn read_write_count(&self) -> (u32, u32, u32, u32) {
		let (r, rr) = self.counted(&self.reads);
		let (w, rw) = self.counted(&self.writes);
		(r, rr, w, rw)
	}
	fn reset_read_write_count(&mut self) {
		self.reads.clear();
		self.writes.clear();
	}
	fn get_whitelist(&self) -> Vec<TrackedStorageKey> {
		self.whitelist.iter().map(|k| TrackedStorageKey::new(k.clone())).collect()
	}
	fn set_whitelist(&mut self, new: Vec<TrackedStorageKey>) {
		self.whitelist = new.into_iter().map(|k| k.key).collect();
	}
	fn get_read_and_written_keys(&self) -> Vec<(Vec<u8>, u32, u32, bool)> {
		let keys: HashSet<&Vec<u8>> = self.reads.keys().chain(self.writes.keys()).collect();
		keys.into_iter()
			.map(|k| {
				let r = self.reads.get(k).copied().unwrap_or(0);
				let w = self.writes.get(k).copied().unwrap_or(0);
				(k.clone(), r, w, self.whitelist.contains(k))
			})
			.collect()
	}
}

fn genesis() -> TestExternalities {
	TestExternalities::new(dev_genesis().build_storage().expect("genesis"))
}

/// Runs one benchmark once in fresh genesis state and returns its result.
fn run_once<P: Benchmarking>(name: &str, components: &[(BenchmarkParameter, u32)]) -> BenchmarkResult {
	let whitelist: Vec<TrackedStorageKey> = AllPalletsWithSystem::whitelisted_storage_keys();
	let mut t = genesis();
	let mut ext = CountingExt::new(t.ext());
	let results = sp_externalities::set_and_run_with_externalities(&mut ext, || {
		P::run_benchmark(name.as_bytes(), components, &whitelist, true, 1)
	})
	.unwrap_or_else(|e| panic!("benchmark {name} {components:?} failed: {e:?}"));
	results.into_iter().next().expect("one result")
}

fn median(mut v: Vec<u128>) -> u128 {
	v.sort_unstable();
	v[v.len() / 2]
}

/// A measured weight: ref time in picoseconds and DB accesses, each `base + slope * component`.
#[derive(Default, Clone)]
struct Measured {
	component: Option<(String, u32, u32)>,
	base_ps: u64,
	slope_ps: u64,
	reads: u32,
	reads_slope: u32,
	writes: u32,
	writes_slope: u32,
}

impl Measured {
	/// Total weight in picoseconds with the component at `c`, DB accesses priced as RocksDB.
	fn total_ps(&self, c: u32) -> u64 {
		let db = polkadot_sdk::frame_support::weights::constants::RocksDbWeight::get();
		self.base_ps
			+ self.slope_ps * c as u64
			+ db.reads((self.reads + self.reads_slope * c) as u64).ref_time()
			+ db.writes((self.writes + self.writes_slope * c) as u64).ref_time()
	}
}

use polkadot_sdk::frame_support::traits::Get;

fn measure<P: Benchmarking>(name: &str, components: &[(BenchmarkParameter, u32, u32)], repeat: usize) -> Measured {
	let sample = |comps: &[(BenchmarkParameter, u32)]| -> (u128, u32, u32) {
		let runs: Vec<BenchmarkResult> = (0..repeat).map(|_| run_once::<P>(name, comps)).collect();
		let time = median(runs.iter().map(|r| r.extrinsic_time).collect());
		(time, runs[0].reads, runs[0].writes)
	};
	match components {
		[] => {
			let (t, r, w) = sample(&[]);
			Measured { base_ps: (t * 1000) as u64, reads: r, writes: w, ..Default::default() }
		},
		[(param, low, high)] => {
			// Least squares over five evenly spaced points.
			let points: Vec<u32> = (0..5).map(|i| low + (high - low) * i / 4).collect();
			let samples: Vec<(u32, (u128, u32, u32))> = points.iter().map(|&c| (c, sample(&[(*param, c)]))).collect();
			let n = samples.len() as f64;
			let mx = samples.iter().map(|(c, _)| *c as f64).sum::<f64>() / n;
			let my = samples.iter().map(|(_, s)| s.0 as f64).sum::<f64>() / n;
			let sxy: f64 = samples.iter().map(|(c, s)| (*c as f64 - mx) * (s.0 as f64 - my)).sum();
			let sxx: f64 = samples.iter().map(|(c, _)| (*c as f64 - mx).powi(2)).sum();
			let slope = (sxy / sxx).max(0.0);
			let base = (my - slope * mx).max(samples.iter().map(|(_, s)| s.0 as f64).fold(f64::MAX, f64::min) * 0.5);
			let (first, last) = (&samples[0], &samples[samples.len() - 1]);
			let span = (last.0 - first.0).max(1);
			Measured {
				component: Some((format!("{param:?}"), *low, *high)),
				base_ps: (base * 1000.0) as u64,
				slope_ps: (slope * 1000.0) as u64,
				reads: first.1 .1,
				reads_slope: (last.1 .1.saturating_sub(first.1 .1)).div_ceil(span),
				writes: first.1 .2,
				writes_slope: (last.1 .2.saturating_sub(first.1 .2)).div_ceil(span),
			}
		},
		_ => panic!("benchmarks with more than one component are not supported"),
	}
}

fn weights_rs(measured: &[(String, Measured)], repeat: usize) -> String {
	let mut out = String::new();
	out.push_str(&format!(
		"//! Weights for `pallet_gpu_rental`, generated by `chain/scripts/bench-weights`\n\
		 //! (gridlease-bench-weights: the pallet's benchmarks run natively, median of {repeat} runs\n\
		 //! per point, storage reads/writes counted per distinct key). Do not edit by hand.\n\n\
		 #![cfg_attr(rustfmt, rustfmt_skip)]\n#![allow(unused_parens)]\n#![allow(unused_imports)]\n#![allow(missing_docs)]\n\n\
		 use polkadot_sdk::frame_support::{{traits::Get, weights::{{Weight, constants::RocksDbWeight}}}};\n\
		 use core::marker::PhantomData;\n\n\
		 /// Weight functions needed for `pallet_gpu_rental`.\npub trait WeightInfo {{\n"
	));
	let sig = |name: &str, m: &Measured| match &m.component {
		Some(_) => format!("fn {name}(l: u32) -> Weight"),
		None => format!("fn {name}() -> Weight"),
	};
	for (name, m) in measured {
		out.push_str(&format!("\t{};\n", sig(name, m)));
	}
	out.push_str("}\n\n/// Weights measured for `pallet_gpu_rental`.\npub struct SubstrateWeight<T>(PhantomData<T>);\n");
	for (imp, db) in [
		("impl<T: polkadot_sdk::frame_system::Config> WeightInfo for SubstrateWeight<T>", "T::DbWeight::get()"),
		("// For tests.\nimpl WeightInfo for ()", "RocksDbWeight::get()"),
	] {
		out.push_str(&format!("{imp} {{\n"));
		for (name, m) in measured {
			out.push_str(&format!("\t{} {{\n\t\tWeight::from_parts({}, 0)\n", sig(name, m), m.base_ps));
			if m.component.is_some() {
				out.push_str(&format!("\t\t\t.saturating_add(Weight::from_parts({}, 0).saturating_mul(l.into()))\n", m.slope_ps));
			}
			out.push_str(&format!("\t\t\t.saturating_add({db}.reads({}))\n", m.reads));
			if m.reads_slope > 0 {
				out.push_str(&format!("\t\t\t.saturating_add({db}.reads(({}_u64).saturating_mul(l.into())))\n", m.reads_slope));
			}
			out.push_str(&format!("\t\t\t.saturating_add({db}.writes({}))\n", m.writes));
			if m.writes_slope > 0 {
				out.push_str(&format!("\t\t\t.saturating_add({db}.writes(({}_u64).saturating_mul(l.into())))\n", m.writes_slope));
			}
			out.push_str("\t}\n");
		}
		out.push_str("}\n\n");
	}
	out.trim_end().to_string() + "\n"
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
	let arg = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
	let repeat: usize = arg("--repeat").map(|r| r.parse().expect("--repeat N")).unwrap_or(15);
	let write = arg("--write");

	let transfer = measure::<pallet_balances::Pallet<Runtime>>("transfer_keep_alive", &[], repeat);
	let mut measured = Vec::new();
	for meta in <pallet_gpu_rental::Pallet<Runtime> as Benchmarking>::benchmarks(false) {
		let name = String::from_utf8(meta.name.clone()).expect("utf8 name");
		let m = measure::<pallet_gpu_rental::Pallet<Runtime>>(&name, &meta.components, repeat);
		measured.push((name, m));
	}

	let max_gpus: u32 = <Runtime as pallet_gpu_rental::Config>::MaxGpusPerMachine::get();
	let ref_total = transfer.total_ps(0) as f64;
	println!("weights (native, median of {repeat}); DB reads/writes priced as RocksDbWeight (25/100 us)");
	println!("{:<30} {:>11} {:>11} {:>6} {:>7} {:>13}", "call", "time us", "+per l us", "reads", "writes", "x transfer_ka");
	println!(
		"{:<30} {:>11.2} {:>11} {:>6} {:>7} {:>13.2}",
		"Balances::transfer_keep_alive", transfer.base_ps as f64 / 1e6, "-", transfer.reads, transfer.writes, 1.0
	);
	for (name, m) in &measured {
		let worst = m.component.as_ref().map(|_| max_gpus).unwrap_or(0);
		println!(
			"{:<30} {:>11.2} {:>11} {:>6} {:>7} {:>13.2}",
			name,
			m.base_ps as f64 / 1e6,
			m.component.as_ref().map(|_| format!("{:.2}", m.slope_ps as f64 / 1e6)).unwrap_or("-".into()),
			m.reads + m.reads_slope * worst,
			m.writes + m.writes_slope * worst,
			m.total_ps(worst) as f64 / ref_total,
		);
	}
	println!("(per-l rows at the worst case l = MaxGpusPerMachine = {max_gpus})");

	println!("\nclaim / heartbeat time with N active leases (native, median of {}):", repeat * 20);
	println!("{:>8} {:>12} {:>15} {:>26}", "leases", "claim us", "heartbeat us", "heartbeat after gap us");
	for active in [10u32, 10_000] {
		let (claim, hb, gap) = flat_check(active, repeat * 20);
		println!("{:>8} {:>12.2} {:>15.2} {:>26.2}", active, claim as f64 / 1e3, hb as f64 / 1e3, gap as f64 / 1e3);
	}

	if let Some(path) = write {
		std::fs::write(&path, weights_rs(&measured, repeat)).expect("write weights");
		println!("\nwrote {path}");
	}
}
