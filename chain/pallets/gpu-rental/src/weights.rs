//! Weights for `pallet_gpu_rental`, written by the Substrate benchmarking CLI (64.0.0) through
//! `chain/scripts/bench-weights`. Do not edit by hand: run that script again.
//!
//! Measured 2026-11-30 on `vm` (AMD EPYC): 50 steps over each component's
//! range, 20 repeats each, wasm execution `Compiled`, from the
//! `development` genesis preset. Proof sizes are estimated from each storage item's maximum
//! encoded length; storage reads and writes are priced by the runtime's `DbWeight`.
//!
//! Command:
//!   /root/.cache/gridlease/cargo-target/debug/gridlease-node
//!   benchmark
//!   pallet
//!   --runtime
//!   /root/.cache/gridlease/cargo-target/debug/wbuild/gridlease-runtime/gridlease_runtime.wasm
//!   --genesis-builder
//!   runtime
//!   --genesis-builder-preset
//!   development
//!   --steps
//!   50
//!   --repeat
//!   20
//!   --pallet
//!   pallet_gpu_rental
//!   --extrinsic
//!   *
//!   --template
//!   scripts/weight-template.hbs
//!   --output
//!   pallets/gpu-rental/src/weights.rs
//!   --json-file
//!   /root/.cache/gridlease/bench-weights/pallet_gpu_rental.json

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use polkadot_sdk::frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};
use core::marker::PhantomData;

/// The weight of each of `pallet_gpu_rental`'s calls, as functions of their components.
pub trait WeightInfo {
	fn register_machine() -> Weight;
	fn set_price() -> Weight;
	fn set_online() -> Weight;
	fn deregister_machine() -> Weight;
	fn increase_bond() -> Weight;
	fn heartbeat(l: u32, ) -> Weight;
	fn create_lease() -> Weight;
	fn start_lease(l: u32, ) -> Weight;
	fn cancel_lease() -> Weight;
	fn claim_payment() -> Weight;
	fn extend_lease() -> Weight;
	fn terminate_lease() -> Weight;
	fn report_downtime() -> Weight;
	fn settle_lease() -> Weight;
	fn update_gpus(l: u32, ) -> Weight;
}

/// The measured weights, storage priced by the runtime's `DbWeight`.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: polkadot_sdk::frame_system::Config> WeightInfo for SubstrateWeight<T> {
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	fn register_machine() -> Weight {
		// Proof size in bytes, measured `108`, estimated `3712`.
		// Fastest run: 107_140_000 ps.
		Weight::from_parts(129_672_000, 3712)
			.saturating_add(T::DbWeight::get().reads(2))
			.saturating_add(T::DbWeight::get().writes(2))
	}
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	fn set_price() -> Weight {
		// Proof size in bytes, measured `384`, estimated `3712`.
		// Fastest run: 28_854_000 ps.
		Weight::from_parts(37_771_000, 3712)
			.saturating_add(T::DbWeight::get().reads(1))
			.saturating_add(T::DbWeight::get().writes(1))
	}
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	fn set_online() -> Weight {
		// Proof size in bytes, measured `384`, estimated `3712`.
		// Fastest run: 28_954_000 ps.
		Weight::from_parts(48_320_000, 3712)
			.saturating_add(T::DbWeight::get().reads(1))
			.saturating_add(T::DbWeight::get().writes(1))
	}
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:1)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	fn deregister_machine() -> Weight {
		// Proof size in bytes, measured `439`, estimated `3712`.
		// Fastest run: 99_676_000 ps.
		Weight::from_parts(144_640_000, 3712)
			.saturating_add(T::DbWeight::get().reads(3))
			.saturating_add(T::DbWeight::get().writes(3))
	}
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	fn increase_bond() -> Weight {
		// Proof size in bytes, measured `439`, estimated `3712`.
		// Fastest run: 112_009_000 ps.
		Weight::from_parts(164_197_000, 3712)
			.saturating_add(T::DbWeight::get().reads(2))
			.saturating_add(T::DbWeight::get().writes(2))
	}
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:0)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::Leases` (r:16 w:16)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:16 w:16)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:17 w:17)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	/// Component `l` measured over `[0, 16]`.
	fn heartbeat(l: u32, ) -> Weight {
		// Proof size in bytes, measured `630 + l * 366`, estimated `3712 + l * 2668`.
		// Fastest run: 37_440_000 ps.
		Weight::from_parts(44_179_457, 3712)
			.saturating_add(Weight::from_parts(195_268_418, 0).saturating_mul(l.into()))
			.saturating_add(T::DbWeight::get().reads(3))
			.saturating_add(T::DbWeight::get().reads((3_u64).saturating_mul(l.into())))
			.saturating_add(T::DbWeight::get().writes(2))
			.saturating_add(T::DbWeight::get().writes((3_u64).saturating_mul(l.into())))
			.saturating_add(Weight::from_parts(0, 2668).saturating_mul(l.into()))
	}
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::NextLeaseId` (r:1 w:1)
	/// Proof: `GpuRental::NextLeaseId` (`max_values`: Some(1), `max_size`: Some(8), added: 503, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::Leases` (r:1 w:1)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::CustomerLeases` (r:1 w:1)
	/// Proof: `GpuRental::CustomerLeases` (`max_values`: None, `max_size`: Some(562), added: 3037, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:1)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	fn create_lease() -> Weight {
		// Proof size in bytes, measured `1897`, estimated `4027`.
		// Fastest run: 157_494_000 ps.
		Weight::from_parts(230_220_000, 4027)
			.saturating_add(T::DbWeight::get().reads(6))
			.saturating_add(T::DbWeight::get().writes(6))
	}
	/// Storage: `GpuRental::Leases` (r:16 w:16)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:0)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:15 w:15)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:16 w:16)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	/// Component `l` measured over `[0, 15]`.
	fn start_lease(l: u32, ) -> Weight {
		// Proof size in bytes, measured `867 + l * 366`, estimated `3712 + l * 2668`.
		// Fastest run: 58_369_000 ps.
		Weight::from_parts(65_035_731, 3712)
			.saturating_add(Weight::from_parts(211_200_356, 0).saturating_mul(l.into()))
			.saturating_add(T::DbWeight::get().reads(4))
			.saturating_add(T::DbWeight::get().reads((3_u64).saturating_mul(l.into())))
			.saturating_add(T::DbWeight::get().writes(3))
			.saturating_add(T::DbWeight::get().writes((3_u64).saturating_mul(l.into())))
			.saturating_add(Weight::from_parts(0, 2668).saturating_mul(l.into()))
	}
	/// Storage: `GpuRental::Leases` (r:1 w:1)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:2 w:2)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:1)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::CustomerLeases` (r:1 w:1)
	/// Proof: `GpuRental::CustomerLeases` (`max_values`: None, `max_size`: Some(562), added: 3037, mode: `MaxEncodedLen`)
	fn cancel_lease() -> Weight {
		// Proof size in bytes, measured `2410`, estimated `6196`.
		// Fastest run: 295_702_000 ps.
		Weight::from_parts(388_876_000, 6196)
			.saturating_add(T::DbWeight::get().reads(7))
			.saturating_add(T::DbWeight::get().writes(7))
	}
	/// Storage: `GpuRental::Leases` (r:1 w:1)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:2 w:2)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:1)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::CustomerLeases` (r:1 w:1)
	/// Proof: `GpuRental::CustomerLeases` (`max_values`: None, `max_size`: Some(562), added: 3037, mode: `MaxEncodedLen`)
	fn claim_payment() -> Weight {
		// Proof size in bytes, measured `2407`, estimated `6196`.
		// Fastest run: 293_708_000 ps.
		Weight::from_parts(467_081_000, 6196)
			.saturating_add(T::DbWeight::get().reads(7))
			.saturating_add(T::DbWeight::get().writes(7))
	}
	/// Storage: `GpuRental::Leases` (r:1 w:1)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	fn extend_lease() -> Weight {
		// Proof size in bytes, measured `549`, estimated `3658`.
		// Fastest run: 116_328_000 ps.
		Weight::from_parts(198_179_000, 3658)
			.saturating_add(T::DbWeight::get().reads(2))
			.saturating_add(T::DbWeight::get().writes(2))
	}
	/// Storage: `GpuRental::Leases` (r:1 w:1)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:2 w:2)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:1)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::CustomerLeases` (r:1 w:1)
	/// Proof: `GpuRental::CustomerLeases` (`max_values`: None, `max_size`: Some(562), added: 3037, mode: `MaxEncodedLen`)
	fn terminate_lease() -> Weight {
		// Proof size in bytes, measured `2410`, estimated `6196`.
		// Fastest run: 294_860_000 ps.
		Weight::from_parts(495_806_000, 6196)
			.saturating_add(T::DbWeight::get().reads(7))
			.saturating_add(T::DbWeight::get().writes(7))
	}
	/// Storage: `GpuRental::Leases` (r:1 w:1)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:2 w:2)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:2 w:2)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:1)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::CustomerLeases` (r:1 w:1)
	/// Proof: `GpuRental::CustomerLeases` (`max_values`: None, `max_size`: Some(562), added: 3037, mode: `MaxEncodedLen`)
	fn report_downtime() -> Weight {
		// Proof size in bytes, measured `2487`, estimated `6196`.
		// Fastest run: 376_122_000 ps.
		Weight::from_parts(644_855_000, 6196)
			.saturating_add(T::DbWeight::get().reads(8))
			.saturating_add(T::DbWeight::get().writes(8))
	}
	/// Storage: `GpuRental::Leases` (r:1 w:1)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:3 w:3)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:1)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::CustomerLeases` (r:1 w:1)
	/// Proof: `GpuRental::CustomerLeases` (`max_values`: None, `max_size`: Some(562), added: 3037, mode: `MaxEncodedLen`)
	fn settle_lease() -> Weight {
		// Proof size in bytes, measured `2513`, estimated `8799`.
		// Fastest run: 293_899_000 ps.
		Weight::from_parts(363_599_000, 8799)
			.saturating_add(T::DbWeight::get().reads(8))
			.saturating_add(T::DbWeight::get().writes(8))
	}
	/// Storage: `GpuRental::Machines` (r:1 w:1)
	/// Proof: `GpuRental::Machines` (`max_values`: None, `max_size`: Some(247), added: 2722, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::MachineLeases` (r:1 w:1)
	/// Proof: `GpuRental::MachineLeases` (`max_values`: None, `max_size`: Some(177), added: 2652, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::Leases` (r:15 w:15)
	/// Proof: `GpuRental::Leases` (`max_values`: None, `max_size`: Some(193), added: 2668, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:16 w:16)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(85), added: 2560, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:16 w:16)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	/// Storage: `GpuRental::CustomerLeases` (r:15 w:15)
	/// Proof: `GpuRental::CustomerLeases` (`max_values`: None, `max_size`: Some(562), added: 3037, mode: `MaxEncodedLen`)
	/// Component `l` measured over `[0, 15]`.
	fn update_gpus(l: u32, ) -> Weight {
		// Proof size in bytes, measured `651 + l * 430`, estimated `3712 + l * 3037`.
		// Fastest run: 102_602_000 ps.
		Weight::from_parts(155_066_480, 3712)
			.saturating_add(Weight::from_parts(261_657_841, 0).saturating_mul(l.into()))
			.saturating_add(T::DbWeight::get().reads(4))
			.saturating_add(T::DbWeight::get().reads((4_u64).saturating_mul(l.into())))
			.saturating_add(T::DbWeight::get().writes(4))
			.saturating_add(T::DbWeight::get().writes((4_u64).saturating_mul(l.into())))
			.saturating_add(Weight::from_parts(0, 3037).saturating_mul(l.into()))
	}
}

/// The same weights with storage priced as RocksDB, for the pallet's unit tests (`()`).
impl WeightInfo for () {
	fn register_machine() -> Weight {
		Weight::from_parts(129_672_000, 3712)
			.saturating_add(RocksDbWeight::get().reads(2))
			.saturating_add(RocksDbWeight::get().writes(2))
	}
	fn set_price() -> Weight {
		Weight::from_parts(37_771_000, 3712)
			.saturating_add(RocksDbWeight::get().reads(1))
			.saturating_add(RocksDbWeight::get().writes(1))
	}
	fn set_online() -> Weight {
		Weight::from_parts(48_320_000, 3712)
			.saturating_add(RocksDbWeight::get().reads(1))
			.saturating_add(RocksDbWeight::get().writes(1))
	}
	fn deregister_machine() -> Weight {
		Weight::from_parts(144_640_000, 3712)
			.saturating_add(RocksDbWeight::get().reads(3))
			.saturating_add(RocksDbWeight::get().writes(3))
	}
	fn increase_bond() -> Weight {
		Weight::from_parts(164_197_000, 3712)
			.saturating_add(RocksDbWeight::get().reads(2))
			.saturating_add(RocksDbWeight::get().writes(2))
	}
	fn heartbeat(l: u32, ) -> Weight {
		Weight::from_parts(44_179_457, 3712)
			.saturating_add(Weight::from_parts(195_268_418, 0).saturating_mul(l.into()))
			.saturating_add(RocksDbWeight::get().reads(3))
			.saturating_add(RocksDbWeight::get().reads((3_u64).saturating_mul(l.into())))
			.saturating_add(RocksDbWeight::get().writes(2))
			.saturating_add(RocksDbWeight::get().writes((3_u64).saturating_mul(l.into())))
			.saturating_add(Weight::from_parts(0, 2668).saturating_mul(l.into()))
	}
	fn create_lease() -> Weight {
		Weight::from_parts(230_220_000, 4027)
			.saturating_add(RocksDbWeight::get().reads(6))
			.saturating_add(RocksDbWeight::get().writes(6))
	}
	fn start_lease(l: u32, ) -> Weight {
		Weight::from_parts(65_035_731, 3712)
			.saturating_add(Weight::from_parts(211_200_356, 0).saturating_mul(l.into()))
			.saturating_add(RocksDbWeight::get().reads(4))
			.saturating_add(RocksDbWeight::get().reads((3_u64).saturating_mul(l.into())))
			.saturating_add(RocksDbWeight::get().writes(3))
			.saturating_add(RocksDbWeight::get().writes((3_u64).saturating_mul(l.into())))
			.saturating_add(Weight::from_parts(0, 2668).saturating_mul(l.into()))
	}
	fn cancel_lease() -> Weight {
		Weight::from_parts(388_876_000, 6196)
			.saturating_add(RocksDbWeight::get().reads(7))
			.saturating_add(RocksDbWeight::get().writes(7))
	}
	fn claim_payment() -> Weight {
		Weight::from_parts(467_081_000, 6196)
			.saturating_add(RocksDbWeight::get().reads(7))
			.saturating_add(RocksDbWeight::get().writes(7))
	}
	fn extend_lease() -> Weight {
		Weight::from_parts(198_179_000, 3658)
			.saturating_add(RocksDbWeight::get().reads(2))
			.saturating_add(RocksDbWeight::get().writes(2))
	}
	fn terminate_lease() -> Weight {
		Weight::from_parts(495_806_000, 6196)
			.saturating_add(RocksDbWeight::get().reads(7))
			.saturating_add(RocksDbWeight::get().writes(7))
	}
	fn report_downtime() -> Weight {
		Weight::from_parts(644_855_000, 6196)
			.saturating_add(RocksDbWeight::get().reads(8))
			.saturating_add(RocksDbWeight::get().writes(8))
	}
	fn settle_lease() -> Weight {
		Weight::from_parts(363_599_000, 8799)
			.saturating_add(RocksDbWeight::get().reads(8))
			.saturating_add(RocksDbWeight::get().writes(8))
	}
	fn update_gpus(l: u32, ) -> Weight {
		Weight::from_parts(155_066_480, 3712)
			.saturating_add(Weight::from_parts(261_657_841, 0).saturating_mul(l.into()))
			.saturating_add(RocksDbWeight::get().reads(4))
			.saturating_add(RocksDbWeight::get().reads((4_u64).saturating_mul(l.into())))
			.saturating_add(RocksDbWeight::get().writes(4))
			.saturating_add(RocksDbWeight::get().writes((4_u64).saturating_mul(l.into())))
			.saturating_add(Weight::from_parts(0, 3037).saturating_mul(l.into()))
	}
}
