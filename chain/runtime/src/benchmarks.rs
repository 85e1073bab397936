//! The pallets whose benchmarks the runtime exposes through `frame_benchmarking::Benchmark`, the
//! runtime API that `gridlease-node benchmark pallet` calls to write each pallet's `weights.rs`.
//! Balances is listed so `transfer_keep_alive` can be measured beside our calls (bench/).

polkadot_sdk::frame_benchmarking::define_benchmarks!(
	[pallet_balances, Balances]
	[pallet_gpu_rental, GpuRental]
);
