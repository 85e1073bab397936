//! # GPU rental pallet
//!
//! Records GPU machines and the leases on them, holds each customer's payment in escrow, and pays
//! providers only for the blocks their machine was up.
//!
//! ## Overview
//!
//! - **Machines.** A provider (the machine's *owner*) registers a machine with its GPU inventory and
//!   a price per GPU per block, naming an *operator* account (the key on the machine itself) that
//!   sends heartbeats, starts leases and claims pay. A bond of at least [`Config::MinBondPerGpu`]
//!   per GPU is held from the owner under [`HoldReason::MachineBond`].
//! - **Leases.** A customer leases some of a machine's GPUs for a number of blocks at no more than a
//!   price they name. The whole price is held from the customer under
//!   [`HoldReason::LeaseEscrow`]. Each lease owns a disjoint set of GPU indexes (a bit mask), so
//!   two leases can never hold the same GPU.
//! - **Start.** The operator confirms the workload runs with [`Pallet::start_lease`] within
//!   [`Config::StartWindow`] blocks; otherwise anyone may cancel the lease. A lease that ends
//!   before it started pays for its reservation: the blocks its GPUs were held while the machine
//!   was up (at least one), capped at the start window, so that reserving GPUs is never free.
//!   The owner and operator of a machine cannot lease it.
//! - **Pay for uptime only.** A machine is *fresh* at block `b` while
//!   `b <= last_heartbeat + HeartbeatGrace`. A running lease accrues pay for each fresh block
//!   between its checkpoint (`accrue_from`) and its end. [`Pallet::claim_payment`] pays what has
//!   accrued, minus the protocol fee the lease was made with (rounded down) to the treasury, in
//!   O(1). A heartbeat that arrives after
//!   the machine went stale first settles its leases up to the old freshness horizon and moves their
//!   checkpoints past the gap, so downtime is never paid (bounded by the machine's GPU count).
//! - **Downtime.** If a running lease's machine went stale before the lease's end block, the
//!   customer reports it: the lease ends as failed, the unpaid escrow is refunded, and the customer
//!   receives [`Config::DowntimeCompensation`] of the bond share of the leased GPUs, at most the
//!   refund itself (so a cheap lease can never drain a bond). A lease the machine served to its
//!   end cannot be reported.
//! - **Pay for healthy GPUs only.** Each heartbeat carries the machine's unhealthy GPU slots
//!   (`unhealthy_gpus`, a bit mask: lost GPUs, critical XIDs, uncorrectable memory errors, as the
//!   node sees them). A running lease holding an unhealthy slot stops accruing at that heartbeat's
//!   block (`unhealthy_since`) and resumes, without pay for the gap, when a heartbeat reports its
//!   GPUs healthy again; new leases never get an unhealthy slot. Once a lease has been unhealthy
//!   for more than [`Config::UnhealthyGrace`] blocks, anyone may end it with
//!   [`Pallet::report_downtime`]: refund and compensation as for downtime. The chain cannot see a
//!   GPU: a provider can hide a fault by never reporting it, which is why downtime (a machine that
//!   stops heartbeating) stays a separate, provable path.
//! - **GPU set.** The operator keeps the machine's GPU set equal to the hardware with
//!   [`Pallet::update_gpus`]; leases on GPUs that vanished end with their unpaid part refunded.
//! - **Funds changed from outside.** Escrow and bonds are paid out from what the holds really
//!   contain, ignoring freezes on the held funds, so no lease or machine can be wedged by another
//!   pallet moving or freezing the funds.
//! - **Extend, terminate, settle.** The customer may extend (more escrow at the agreed price) or
//!   terminate early (accrued pay out, the rest refunded). After the end block the operator's claim,
//!   or [`Pallet::settle_lease`] by anyone, settles the lease and frees its GPUs.
//!
//! Ended leases are removed from storage; their history lives in events, which services index off
//! chain. Live leases are listed per machine (at most [`Config::MaxGpusPerMachine`]) and per customer
//! (at most [`Config::MaxLeasesPerCustomer`]) so both lookups are one storage read.
//!
//! No hook iterates over machines or leases; every call touches a bounded number of items.

#![cfg_attr(not(feature = "std"), no_std)]

pub use pallet::*;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod weights;
pub use weights::WeightInfo;

use polkadot_sdk::{frame_support, frame_system, sp_runtime};

/// Identifies a machine: 32 bytes chosen by the provider (e.g. a hash of its GPU UUIDs).
pub type MachineId = [u8; 32];
/// Identifies a lease; assigned by the chain in increasing order.
pub type LeaseId = u64;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use codec::{DecodeWithMemTracking, MaxEncodedLen};
	use alloc::vec::Vec;
	use frame_support::{
		dispatch::WithPostDispatchInfo,
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, InspectHold, Mutate, MutateHold},
			tokens::{Fortitude, Precision, Preservation, Restriction},
		},
		CloneNoBound, EqNoBound, PartialEqNoBound, DebugNoBound,
	};
	use frame_system::pallet_prelude::*;
	use sp_runtime::{
		helpers_128bit::multiply_by_rational_with_rounding,
		traits::{CheckedAdd, CheckedMul, One, Saturating, UniqueSaturatedInto, Zero},
		Perbill, Rounding,
	};

	/// The balance type of [`Config::Currency`].
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

	/// A registered machine.
	#[derive(
		Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
	)]
	#[scale_info(skip_type_params(T))]
	#[codec(mel_bound())]
	pub struct Machine<T: Config> {
		/// The provider: holds the bond and receives pay.
		pub owner: T::AccountId,
		/// The key on the machine: sends heartbeats, starts leases and claims pay for the owner.
		pub operator: T::AccountId,
		/// GPU model name as NVML reports it, e.g. `NVIDIA H100 80GB HBM3`.
		pub gpu_model: BoundedVec<u8, T::MaxModelLen>,
		/// Number of GPUs offered: the number of bits set in `gpus_present`.
		pub gpu_count: u32,
		/// Bit `i` set: GPU slot `i` exists on the machine and can be leased.
		pub gpus_present: u64,
		/// Memory of each GPU in MiB.
		pub memory_mib: u32,
		/// Current price per GPU per block for new leases.
		pub price_per_gpu_block: BalanceOf<T>,
		/// Bond held from the owner under [`HoldReason::MachineBond`].
		pub bond: BalanceOf<T>,
		/// Whether the machine accepts new leases.
		pub online: bool,
		/// Bit `i` set: GPU slot `i` belongs to a live lease (always a subset of `gpus_present`).
		pub used_gpus: u64,
		/// Block of the last heartbeat (or of registration).
		pub last_heartbeat: BlockNumberFor<T>,
		/// Bit `i` set: GPU slot `i` was reported unhealthy by the last heartbeat (always a
		/// subset of `gpus_present`). New leases do not get these slots.
		pub unhealthy_gpus: u64,
	}

	/// Where a lease is in its life. Ended leases are removed from storage.
	#[derive(
		Encode, Decode, DecodeWithMemTracking, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
	)]
	pub enum LeaseState {
		/// Escrow held, waiting for the operator to start the workload.
		Pending,
		/// The workload runs; pay accrues while the machine is fresh.
		Running,
	}

	/// Why a lease ended.
	#[derive(
		Encode, Decode, DecodeWithMemTracking, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
	)]
	pub enum LeaseEndReason {
		/// Ran to its end block and was settled.
		Expired,
		/// The customer ended it early.
		Terminated,
		/// The machine stopped heartbeating and the customer reported it.
		Failed,
		/// The customer cancelled it before it started.
		Cancelled,
		/// The operator did not start it within the start window.
		StartTimeout,
		/// The machine's GPU set shrank and no longer holds all of the lease's GPUs.
		GpusRemoved,
	}

	/// A live lease.
	#[derive(
		Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
	)]
	#[scale_info(skip_type_params(T))]
	#[codec(mel_bound())]
	pub struct Lease<T: Config> {
		/// The machine whose GPUs are leased.
		pub machine_id: MachineId,
		/// Who pays.
		pub customer: T::AccountId,
		/// Number of GPUs leased.
		pub gpus: u32,
		/// Which GPU indexes of the machine are leased (bit `i` = GPU `i`).
		pub gpu_mask: u64,
		/// Agreed price per GPU per block (the machine's price at creation).
		pub price_per_gpu_block: BalanceOf<T>,
		/// Share of each payout that goes to the treasury, fixed when the lease was created.
		pub fee: Perbill,
		/// Total blocks bought, extensions included.
		pub duration: BlockNumberFor<T>,
		/// Hash of the workload spec, which travels off chain.
		pub spec_hash: T::Hash,
		/// Pending or running.
		pub state: LeaseState,
		/// Block the lease was created.
		pub created_at: BlockNumberFor<T>,
		/// Block the lease started (zero while pending).
		pub started_at: BlockNumberFor<T>,
		/// Block the lease ends (zero while pending): `started_at + duration`.
		pub ends_at: BlockNumberFor<T>,
		/// Pay has been settled for every block up to and including this one.
		pub accrue_from: BlockNumberFor<T>,
		/// What is still held in escrow for this lease.
		pub escrow: BalanceOf<T>,
		/// Block from which the lease's GPUs are reported unhealthy (zero while healthy). Pay
		/// does not accrue past it.
		pub unhealthy_since: BlockNumberFor<T>,
	}

	/// Funds this pallet holds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A customer's prepayment for a lease.
		#[codec(index = 0)]
		LeaseEscrow,
		/// A provider's bond for a machine.
		#[codec(index = 1)]
		MachineBond,
	}

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	/// Configuration of the pallet.
	#[pallet::config]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency that pays for leases and bonds, with holds.
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ InspectHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;

		/// Receives the protocol fee. Must exist (hold at least the existential deposit).
		#[pallet::constant]
		type Treasury: Get<Self::AccountId>;

		/// Share of every payout that goes to the treasury.
		#[pallet::constant]
		type ProtocolFee: Get<Perbill>;

		/// Bond the owner must hold per GPU of a machine.
		#[pallet::constant]
		type MinBondPerGpu: Get<BalanceOf<Self>>;

		/// Blocks the operator has to start a lease after it was created.
		#[pallet::constant]
		type StartWindow: Get<BlockNumberFor<Self>>;

		/// Blocks after a heartbeat during which the machine still counts as up.
		#[pallet::constant]
		type HeartbeatGrace: Get<BlockNumberFor<Self>>;

		/// Blocks a running lease may stay unhealthy before anyone can end it as failed with
		/// [`Pallet::report_downtime`]. Pay stops at once regardless; the grace gives a GPU
		/// time to recover (a reset after an XID) before the lease is lost.
		#[pallet::constant]
		type UnhealthyGrace: Get<BlockNumberFor<Self>>;

		/// Share of the leased GPUs' bond paid to the customer when a lease fails for downtime.
		#[pallet::constant]
		type DowntimeCompensation: Get<Perbill>;

		/// Most GPUs one machine may offer (at most 64: GPUs are a bit mask).
		#[pallet::constant]
		type MaxGpusPerMachine: Get<u32>;

		/// Most live leases one customer may hold.
		#[pallet::constant]
		type MaxLeasesPerCustomer: Get<u32>;

		/// Longest lease, extensions included, in blocks.
		#[pallet::constant]
		type MaxLeaseDuration: Get<BlockNumberFor<Self>>;

		/// Longest GPU model name in bytes.
		#[pallet::constant]
		type MaxModelLen: Get<u32>;

		/// Weights of this pallet's calls, from its benchmarks.
		type WeightInfo: WeightInfo;
	}

	/// Registered machines by id.
	#[pallet::storage]
	pub type Machines<T: Config> = StorageMap<_, Blake2_128Concat, MachineId, Machine<T>>;

	/// Live leases by id.
	#[pallet::storage]
	pub type Leases<T: Config> = StorageMap<_, Blake2_128Concat, LeaseId, Lease<T>>;

	/// The id the next lease gets.
	#[pallet::storage]
	pub type NextLeaseId<T: Config> = StorageValue<_, LeaseId, ValueQuery>;

	/// Live leases of each machine (each holds at least one GPU, so the GPU count bounds it).
	#[pallet::storage]
	pub type MachineLeases<T: Config> =
		StorageMap<_, Blake2_128Concat, MachineId, BoundedVec<LeaseId, T::MaxGpusPerMachine>, ValueQuery>;

	/// Live leases of each customer.
	#[pallet::storage]
	pub type CustomerLeases<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		BoundedVec<LeaseId, T::MaxLeasesPerCustomer>,
		ValueQuery,
	>;

	/// Events of the pallet: one for every change of state.
	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A machine was registered and its bond held.
		MachineRegistered {
			machine_id: MachineId,
			owner: T::AccountId,
			operator: T::AccountId,
			gpu_count: u32,
			price_per_gpu_block: BalanceOf<T>,
			bond: BalanceOf<T>,
		},
		/// A machine's price for new leases changed.
		MachinePriceChanged { machine_id: MachineId, price_per_gpu_block: BalanceOf<T> },
		/// A machine started or stopped accepting new leases.
		MachineAvailabilityChanged { machine_id: MachineId, online: bool },
		/// More bond was held for a machine.
		MachineBondIncreased { machine_id: MachineId, amount: BalanceOf<T>, bond: BalanceOf<T> },
		/// A machine's GPU set changed; `bond` is its bond afterwards.
		MachineGpusChanged { machine_id: MachineId, gpus_present: u64, gpu_count: u32, bond: BalanceOf<T> },
		/// A machine was removed and its bond released.
		MachineDeregistered { machine_id: MachineId, bond_released: BalanceOf<T> },
		/// The operator reported the machine up. `gap` blocks passed unpaid since it went stale;
		/// `unhealthy_gpus` are the slots reported unhealthy (bit `i` = slot `i`).
		HeartbeatReceived { machine_id: MachineId, gap: BlockNumberFor<T>, unhealthy_gpus: u64 },
		/// A running lease's GPUs turned unhealthy (pay stops) or healthy again (pay resumes).
		LeaseHealthChanged { lease_id: LeaseId, healthy: bool },
		/// A lease was created and its price held in escrow.
		LeaseCreated {
			lease_id: LeaseId,
			machine_id: MachineId,
			customer: T::AccountId,
			gpus: u32,
			gpu_mask: u64,
			price_per_gpu_block: BalanceOf<T>,
			fee: Perbill,
			duration: BlockNumberFor<T>,
			escrow: BalanceOf<T>,
			spec_hash: T::Hash,
		},
		/// The operator started a lease's workload.
		LeaseStarted { lease_id: LeaseId, ends_at: BlockNumberFor<T> },
		/// A customer bought more blocks.
		LeaseExtended {
			lease_id: LeaseId,
			extra_blocks: BlockNumberFor<T>,
			added_escrow: BalanceOf<T>,
			duration: BlockNumberFor<T>,
		},
		/// Accrued pay moved from escrow to the provider, less the fee to the treasury.
		PaymentClaimed {
			lease_id: LeaseId,
			provider: T::AccountId,
			paid: BalanceOf<T>,
			fee: BalanceOf<T>,
			accrued_until: BlockNumberFor<T>,
		},
		/// A lease ended; what was left in escrow went back to the customer.
		LeaseEnded { lease_id: LeaseId, reason: LeaseEndReason, refunded: BalanceOf<T> },
		/// The customer was paid from the provider's bond for a lease failed by downtime.
		DowntimeCompensated { lease_id: LeaseId, customer: T::AccountId, amount: BalanceOf<T> },
	}

	/// Errors of the pallet, named for the condition.
	#[pallet::error]
	pub enum Error<T> {
		/// A machine with this id is already registered.
		MachineAlreadyRegistered,
		/// No machine with this id.
		MachineNotFound,
		/// The caller is not the machine's owner.
		NotMachineOwner,
		/// The caller is neither the machine's operator nor its owner.
		NotMachineOperator,
		/// GPU count is zero or above `MaxGpusPerMachine`.
		InvalidGpuCount,
		/// The GPU model name is empty or longer than `MaxModelLen`.
		InvalidGpuModel,
		/// A price of zero.
		ZeroPrice,
		/// The bond is below `MinBondPerGpu` times the GPU count.
		BondTooLow,
		/// The machine has live leases.
		MachineHasLeases,
		/// The machine does not accept new leases.
		MachineOffline,
		/// Zero GPUs asked for.
		ZeroGpus,
		/// Fewer free GPUs on the machine than asked for.
		NotEnoughFreeGpus,
		/// Duration or extension of zero blocks, or a total above `MaxLeaseDuration`.
		InvalidDuration,
		/// The machine's price is above the most the customer accepts.
		PriceAboveLimit,
		/// An amount does not fit the balance type.
		Overflow,
		/// The account cannot cover the amount to hold and keep its existential deposit.
		InsufficientBalance,
		/// The customer already holds `MaxLeasesPerCustomer` live leases.
		TooManyLeases,
		/// No live lease with this id.
		LeaseNotFound,
		/// The caller is not the lease's customer.
		NotLeaseCustomer,
		/// The lease has already started.
		LeaseAlreadyStarted,
		/// The lease has not started.
		LeaseNotRunning,
		/// The start window has passed.
		StartWindowPassed,
		/// Only the customer may cancel before the start window has passed.
		StartWindowOpen,
		/// The lease has reached its end block.
		LeaseExpired,
		/// The lease has not reached its end block.
		LeaseNotEnded,
		/// Nothing has accrued since the last claim.
		NothingToClaim,
		/// The machine is still heartbeating.
		MachineNotStale,
		/// The machine's owner or operator cannot lease its own machine.
		CustomerIsProvider,
		/// The machine was up until the lease's end block: there is no downtime to report.
		LeaseServed,
		/// Every lease id has been used.
		LeaseIdsExhausted,
		/// The lease would end beyond the largest block number.
		BlockNumberOverflow,
		/// A GPU set that is empty or names a slot at or above `MaxGpusPerMachine`.
		InvalidGpuSet,
		/// The lease's GPUs are unhealthy but not yet for `UnhealthyGrace` blocks.
		UnhealthyGraceOpen,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(T::MaxGpusPerMachine::get() >= 1 && T::MaxGpusPerMachine::get() <= 64);
			assert!(!T::StartWindow::get().is_zero());
			assert!(!T::HeartbeatGrace::get().is_zero());
			assert!(!T::MaxLeaseDuration::get().is_zero());
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Register a machine and hold `MinBondPerGpu * gpu_count` from the caller as its bond.
		///
		/// Origin: signed, the provider, who becomes the owner.
		///
		/// ## Errors
		/// `MachineAlreadyRegistered`, `InvalidGpuCount`, `InvalidGpuModel`, `ZeroPrice`,
		/// `Overflow`, `InsufficientBalance`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_machine())]
		pub fn register_machine(
			origin: OriginFor<T>,
			machine_id: MachineId,
			operator: T::AccountId,
			gpu_model: Vec<u8>,
			gpu_count: u32,
			memory_mib: u32,
			#[pallet::compact] price_per_gpu_block: BalanceOf<T>,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			ensure!(!Machines::<T>::contains_key(machine_id), Error::<T>::MachineAlreadyRegistered);
			ensure!(
				gpu_count >= 1 && gpu_count <= T::MaxGpusPerMachine::get(),
				Error::<T>::InvalidGpuCount
			);
			// A plain Vec in the call, checked here, so a too-long name is a named error at the
			// client rather than an undecodable extrinsic.
			let gpu_model: BoundedVec<u8, T::MaxModelLen> =
				gpu_model.try_into().map_err(|_| Error::<T>::InvalidGpuModel)?;
			ensure!(!gpu_model.is_empty(), Error::<T>::InvalidGpuModel);
			ensure!(!price_per_gpu_block.is_zero(), Error::<T>::ZeroPrice);
			let bond = Self::required_bond(gpu_count)?;
			Self::hold(HoldReason::MachineBond, &owner, bond)?;

			let now = frame_system::Pallet::<T>::block_number();
			Machines::<T>::insert(
				machine_id,
				Machine {
					owner: owner.clone(),
					operator: operator.clone(),
					gpu_model,
					gpu_count,
					gpus_present: Self::low_slots(gpu_count),
					memory_mib,
					price_per_gpu_block,
					bond,
					online: true,
					used_gpus: 0,
					last_heartbeat: now,
					unhealthy_gpus: 0,
				},
			);
			Self::deposit_event(Event::MachineRegistered {
				machine_id,
				owner,
				operator,
				gpu_count,
				price_per_gpu_block,
				bond,
			});
			Ok(())
		}

		/// Change the price per GPU per block for new leases; running leases keep theirs.
		///
		/// Origin: signed, the machine's owner.
		///
		/// ## Errors
		/// `MachineNotFound`, `NotMachineOwner`, `ZeroPrice`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::set_price())]
		pub fn set_price(
			origin: OriginFor<T>,
			machine_id: MachineId,
			#[pallet::compact] price_per_gpu_block: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(!price_per_gpu_block.is_zero(), Error::<T>::ZeroPrice);
			Machines::<T>::try_mutate(machine_id, |m| -> DispatchResult {
				let machine = m.as_mut().ok_or(Error::<T>::MachineNotFound)?;
				ensure!(machine.owner == who, Error::<T>::NotMachineOwner);
				machine.price_per_gpu_block = price_per_gpu_block;
				Ok(())
			})?;
			Self::deposit_event(Event::MachinePriceChanged { machine_id, price_per_gpu_block });
			Ok(())
		}

		/// Accept (`online = true`) or refuse new leases. Taking a machine online requires its bond
		/// to cover `MinBondPerGpu` per GPU again.
		///
		/// Origin: signed, the machine's owner.
		///
		/// ## Errors
		/// `MachineNotFound`, `NotMachineOwner`, `BondTooLow`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::set_online())]
		pub fn set_online(origin: OriginFor<T>, machine_id: MachineId, online: bool) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Machines::<T>::try_mutate(machine_id, |m| -> DispatchResult {
				let machine = m.as_mut().ok_or(Error::<T>::MachineNotFound)?;
				ensure!(machine.owner == who, Error::<T>::NotMachineOwner);
				if online {
					ensure!(machine.bond >= Self::required_bond(machine.gpu_count)?, Error::<T>::BondTooLow);
				}
				machine.online = online;
				Ok(())
			})?;
			Self::deposit_event(Event::MachineAvailabilityChanged { machine_id, online });
			Ok(())
		}

		/// Remove a machine with no live leases and release its bond.
		///
		/// Origin: signed, the machine's owner.
		///
		/// ## Errors
		/// `MachineNotFound`, `NotMachineOwner`, `MachineHasLeases`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::deregister_machine())]
		pub fn deregister_machine(origin: OriginFor<T>, machine_id: MachineId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let machine = Machines::<T>::get(machine_id).ok_or(Error::<T>::MachineNotFound)?;
			ensure!(machine.owner == who, Error::<T>::NotMachineOwner);
			ensure!(MachineLeases::<T>::get(machine_id).is_empty(), Error::<T>::MachineHasLeases);
			// Best effort: the hold may have shrunk from outside; release what is there.
			let released = T::Currency::release(
				&HoldReason::MachineBond.into(),
				&who,
				machine.bond,
				Precision::BestEffort,
			)?;
			Machines::<T>::remove(machine_id);
			MachineLeases::<T>::remove(machine_id);
			Self::deposit_event(Event::MachineDeregistered { machine_id, bond_released: released });
			Ok(())
		}

		/// Hold more of the owner's balance as the machine's bond (e.g. after a penalty).
		///
		/// Origin: signed, the machine's owner.
		///
		/// ## Errors
		/// `MachineNotFound`, `NotMachineOwner`, `Overflow`, `InsufficientBalance`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::increase_bond())]
		pub fn increase_bond(
			origin: OriginFor<T>,
			machine_id: MachineId,
			#[pallet::compact] amount: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut machine = Machines::<T>::get(machine_id).ok_or(Error::<T>::MachineNotFound)?;
			ensure!(machine.owner == who, Error::<T>::NotMachineOwner);
			machine.bond = machine.bond.checked_add(&amount).ok_or(Error::<T>::Overflow)?;
			Self::hold(HoldReason::MachineBond, &who, amount)?;
			let bond = machine.bond;
			Machines::<T>::insert(machine_id, machine);
			Self::deposit_event(Event::MachineBondIncreased { machine_id, amount, bond });
			Ok(())
		}

		/// Report the machine up, with the GPU slots that are unhealthy now (bit `i` = slot `i`;
		/// slots not present are ignored). If the machine had gone stale, its running leases are
		/// first paid up to the old freshness horizon and their checkpoints moved past the gap, so
		/// the gap is never paid. A running lease holding an unhealthy slot stops accruing at this
		/// block; one whose slots are all healthy again resumes from this block.
		///
		/// Origin: signed, the machine's operator or owner.
		///
		/// ## Errors
		/// `MachineNotFound`, `NotMachineOperator`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::heartbeat(T::MaxGpusPerMachine::get()))]
		pub fn heartbeat(
			origin: OriginFor<T>,
			machine_id: MachineId,
			unhealthy_gpus: u64,
		) -> DispatchResultWithPostInfo {
			// A call refused before any lease is settled pays for that, not the worst case.
			let refused = |e: DispatchError| e.with_weight(T::WeightInfo::heartbeat(0));
			let who = ensure_signed(origin).map_err(|e| refused(e.into()))?;
			let mut machine =
				Machines::<T>::get(machine_id).ok_or_else(|| refused(Error::<T>::MachineNotFound.into()))?;
			Self::ensure_operator(&machine, &who).map_err(refused)?;
			let settled = Self::do_heartbeat(machine_id, &mut machine, unhealthy_gpus)?;
			Machines::<T>::insert(machine_id, machine);
			Ok(Some(T::WeightInfo::heartbeat(settled)).into())
		}

		/// Lease `gpus` GPUs of a machine for `duration` blocks at its current price, if that is at
		/// most `max_price_per_gpu_block`. Holds `price * gpus * duration` from the caller.
		///
		/// Origin: signed, the customer.
		///
		/// ## Errors
		/// `MachineNotFound`, `CustomerIsProvider`, `MachineOffline`, `ZeroGpus`,
		/// `NotEnoughFreeGpus`, `InvalidDuration`, `PriceAboveLimit`, `BlockNumberOverflow`,
		/// `Overflow`, `LeaseIdsExhausted`, `TooManyLeases`, `InsufficientBalance`.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::create_lease())]
		pub fn create_lease(
			origin: OriginFor<T>,
			machine_id: MachineId,
			gpus: u32,
			duration: BlockNumberFor<T>,
			#[pallet::compact] max_price_per_gpu_block: BalanceOf<T>,
			spec_hash: T::Hash,
		) -> DispatchResult {
			let customer = ensure_signed(origin)?;
			let mut machine = Machines::<T>::get(machine_id).ok_or(Error::<T>::MachineNotFound)?;
			// A provider leasing its own machine could report its own downtime and move bond to
			// itself at other customers' expense.
			ensure!(
				customer != machine.owner && customer != machine.operator,
				Error::<T>::CustomerIsProvider
			);
			ensure!(machine.online, Error::<T>::MachineOffline);
			ensure!(gpus >= 1, Error::<T>::ZeroGpus);
			ensure!(
				!duration.is_zero() && duration <= T::MaxLeaseDuration::get(),
				Error::<T>::InvalidDuration
			);
			let price = machine.price_per_gpu_block;
			ensure!(price <= max_price_per_gpu_block, Error::<T>::PriceAboveLimit);
			let gpu_mask = Self::pick_free_gpus(&machine, gpus).ok_or(Error::<T>::NotEnoughFreeGpus)?;
			let escrow = Self::cost(price, gpus, duration)?;
			let now = frame_system::Pallet::<T>::block_number();
			// The latest the lease can end (started at the end of the start window) must be a
			// block number, so start and extension never need to saturate.
			Self::latest_end(now, duration)?;

			let lease_id = NextLeaseId::<T>::get();
			let next_id = lease_id.checked_add(1).ok_or(Error::<T>::LeaseIdsExhausted)?;
			ensure!(!Leases::<T>::contains_key(lease_id), Error::<T>::LeaseIdsExhausted);
			CustomerLeases::<T>::try_mutate(&customer, |ids| ids.try_push(lease_id))
				.map_err(|_| Error::<T>::TooManyLeases)?;
			// Cannot fail: each live lease holds at least one of at most MaxGpusPerMachine GPUs.
			MachineLeases::<T>::try_mutate(machine_id, |ids| ids.try_push(lease_id))
				.map_err(|_| Error::<T>::NotEnoughFreeGpus)?;
			Self::hold(HoldReason::LeaseEscrow, &customer, escrow)?;

			let fee = T::ProtocolFee::get();
			machine.used_gpus |= gpu_mask;
			Machines::<T>::insert(machine_id, machine);
			NextLeaseId::<T>::put(next_id);
			Leases::<T>::insert(
				lease_id,
				Lease {
					machine_id,
					customer: customer.clone(),
					gpus,
					gpu_mask,
					price_per_gpu_block: price,
					fee,
					duration,
					spec_hash,
					state: LeaseState::Pending,
					created_at: now,
					started_at: Zero::zero(),
					ends_at: Zero::zero(),
					accrue_from: Zero::zero(),
					escrow,
					unhealthy_since: Zero::zero(),
				},
			);
			Self::deposit_event(Event::LeaseCreated {
				lease_id,
				machine_id,
				customer,
				gpus,
				gpu_mask,
				price_per_gpu_block: price,
				fee,
				duration,
				escrow,
				spec_hash,
			});
			Ok(())
		}

		/// Confirm that the lease's workload runs. Pay accrues from this block; the lease ends at
		/// `now + duration`. Counts as a heartbeat of the machine.
		///
		/// Origin: signed, the machine's operator or owner.
		///
		/// ## Errors
		/// `LeaseNotFound`, `NotMachineOperator`, `LeaseAlreadyStarted`, `StartWindowPassed`.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::start_lease(T::MaxGpusPerMachine::get()))]
		pub fn start_lease(origin: OriginFor<T>, lease_id: LeaseId) -> DispatchResultWithPostInfo {
			// A call refused before any lease is settled pays for that, not the worst case.
			let refused = |e: DispatchError| e.with_weight(T::WeightInfo::start_lease(0));
			let who = ensure_signed(origin).map_err(|e| refused(e.into()))?;
			let lease =
				Leases::<T>::get(lease_id).ok_or_else(|| refused(Error::<T>::LeaseNotFound.into()))?;
			let mut machine = Self::machine_of(&lease).map_err(refused)?;
			Self::ensure_operator(&machine, &who).map_err(refused)?;
			ensure!(lease.state == LeaseState::Pending, refused(Error::<T>::LeaseAlreadyStarted.into()));
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(now <= Self::start_deadline(&lease), refused(Error::<T>::StartWindowPassed.into()));
			let ends_at = now.checked_add(&lease.duration).ok_or_else(|| refused(Error::<T>::BlockNumberOverflow.into()))?;
			// Settle the machine's other leases first if it had gone stale.
			let unhealthy = machine.unhealthy_gpus;
			let settled = Self::do_heartbeat(lease.machine_id, &mut machine, unhealthy)?;
			Machines::<T>::insert(lease.machine_id, machine);

			// A slot that turned unhealthy after the lease was made: started, but not paid.
			let unhealthy = lease.gpu_mask & unhealthy != 0;
			Leases::<T>::mutate(lease_id, |l| {
				if let Some(l) = l {
					l.state = LeaseState::Running;
					l.started_at = now;
					l.ends_at = ends_at;
					l.accrue_from = now;
					if unhealthy {
						l.unhealthy_since = now;
					}
				}
			});
			Self::deposit_event(Event::LeaseStarted { lease_id, ends_at });
			if unhealthy {
				Self::deposit_event(Event::LeaseHealthChanged { lease_id, healthy: false });
			}
			Ok(Some(T::WeightInfo::start_lease(settled)).into())
		}

		/// End a lease that has not started. The provider is paid for the reservation (see
		/// [`Pallet::reservation`]: the blocks the GPUs were held while the machine was up, at
		/// least one, at most the start window) and the rest of the escrow is refunded. The
		/// customer may cancel at any time before the start; anyone may once the start window has
		/// passed (reason `StartTimeout`).
		///
		/// Origin: signed, the customer; or anyone after the start window.
		///
		/// ## Errors
		/// `LeaseNotFound`, `LeaseAlreadyStarted`, `StartWindowOpen`.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::cancel_lease())]
		pub fn cancel_lease(origin: OriginFor<T>, lease_id: LeaseId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let lease = Leases::<T>::get(lease_id).ok_or(Error::<T>::LeaseNotFound)?;
			ensure!(lease.state == LeaseState::Pending, Error::<T>::LeaseAlreadyStarted);
			let now = frame_system::Pallet::<T>::block_number();
			let window_passed = now > Self::start_deadline(&lease);
			ensure!(who == lease.customer || window_passed, Error::<T>::StartWindowOpen);
			let reason =
				if window_passed { LeaseEndReason::StartTimeout } else { LeaseEndReason::Cancelled };
			Self::end_pending_lease(lease_id, lease, now, reason)
		}

		/// Pay the provider what the lease has accrued (fresh blocks since the last checkpoint),
		/// less the protocol fee. Once the lease has reached its end block this also settles it.
		///
		/// Origin: signed, the machine's operator or owner.
		///
		/// ## Errors
		/// `LeaseNotFound`, `NotMachineOperator`, `LeaseNotRunning`, `NothingToClaim`.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::claim_payment())]
		pub fn claim_payment(origin: OriginFor<T>, lease_id: LeaseId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut lease = Leases::<T>::get(lease_id).ok_or(Error::<T>::LeaseNotFound)?;
			let machine = Self::machine_of(&lease)?;
			Self::ensure_operator(&machine, &who)?;
			ensure!(lease.state == LeaseState::Running, Error::<T>::LeaseNotRunning);
			let now = frame_system::Pallet::<T>::block_number();
			let paid = Self::pay_accrued(lease_id, &mut lease, &machine, now)?;
			if now >= lease.ends_at {
				return Self::end_lease(lease_id, lease, LeaseEndReason::Expired);
			}
			ensure!(!paid.is_zero(), Error::<T>::NothingToClaim);
			Leases::<T>::insert(lease_id, lease);
			Ok(())
		}

		/// Buy `extra_blocks` more at the lease's agreed price, held in escrow.
		///
		/// Origin: signed, the lease's customer.
		///
		/// ## Errors
		/// `LeaseNotFound`, `NotLeaseCustomer`, `LeaseExpired`, `InvalidDuration`, `Overflow`,
		/// `InsufficientBalance`.
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::extend_lease())]
		pub fn extend_lease(
			origin: OriginFor<T>,
			lease_id: LeaseId,
			extra_blocks: BlockNumberFor<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut lease = Leases::<T>::get(lease_id).ok_or(Error::<T>::LeaseNotFound)?;
			ensure!(lease.customer == who, Error::<T>::NotLeaseCustomer);
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(
				lease.state == LeaseState::Pending || now < lease.ends_at,
				Error::<T>::LeaseExpired
			);
			let duration =
				lease.duration.checked_add(&extra_blocks).ok_or(Error::<T>::InvalidDuration)?;
			ensure!(
				!extra_blocks.is_zero() && duration <= T::MaxLeaseDuration::get(),
				Error::<T>::InvalidDuration
			);
			if lease.state == LeaseState::Running {
				lease.ends_at =
					lease.started_at.checked_add(&duration).ok_or(Error::<T>::BlockNumberOverflow)?;
			} else {
				Self::latest_end(lease.created_at, duration)?;
			}
			let added_escrow = Self::cost(lease.price_per_gpu_block, lease.gpus, extra_blocks)?;
			lease.escrow = lease.escrow.checked_add(&added_escrow).ok_or(Error::<T>::Overflow)?;
			Self::hold(HoldReason::LeaseEscrow, &who, added_escrow)?;
			lease.duration = duration;
			Leases::<T>::insert(lease_id, lease);
			Self::deposit_event(Event::LeaseExtended { lease_id, extra_blocks, added_escrow, duration });
			Ok(())
		}

		/// End a lease now: what has accrued goes to the provider, the rest back to the customer.
		/// A lease that has not started is cancelled as by [`Pallet::cancel_lease`]; one that has
		/// reached its end block is settled as expired.
		///
		/// Origin: signed, the lease's customer.
		///
		/// ## Errors
		/// `LeaseNotFound`, `NotLeaseCustomer`.
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::terminate_lease())]
		pub fn terminate_lease(origin: OriginFor<T>, lease_id: LeaseId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut lease = Leases::<T>::get(lease_id).ok_or(Error::<T>::LeaseNotFound)?;
			ensure!(lease.customer == who, Error::<T>::NotLeaseCustomer);
			let now = frame_system::Pallet::<T>::block_number();
			if lease.state == LeaseState::Pending {
				let reason = if now > Self::start_deadline(&lease) {
					LeaseEndReason::StartTimeout
				} else {
					LeaseEndReason::Cancelled
				};
				return Self::end_pending_lease(lease_id, lease, now, reason);
			}
			let machine = Self::machine_of(&lease)?;
			Self::pay_accrued(lease_id, &mut lease, &machine, now)?;
			let reason =
				if now >= lease.ends_at { LeaseEndReason::Expired } else { LeaseEndReason::Terminated };
			Self::end_lease(lease_id, lease, reason)
		}

		/// End a running lease that the machine failed: it stopped heartbeating before the lease's
		/// end block (reported by the customer), or the lease's GPUs have been reported unhealthy
		/// for more than `UnhealthyGrace` blocks (reported by anyone: the chain already has the
		/// provider's own word for it). The provider is paid for the blocks served before the
		/// failure; the rest of the escrow is refunded; the customer gets `DowntimeCompensation` of
		/// the bond share of the leased GPUs, rounded down and at most the refund (the unserved part
		/// of the lease), paid from what the bond hold really contains. A machine whose bond falls
		/// below the minimum goes offline.
		///
		/// Origin: signed, the lease's customer; anyone for a lease unhealthy past the grace.
		///
		/// ## Errors
		/// `LeaseNotFound`, `NotLeaseCustomer`, `LeaseNotRunning`, `UnhealthyGraceOpen`,
		/// `LeaseServed` (the machine was up until the end block), `MachineNotStale`.
		#[pallet::call_index(12)]
		#[pallet::weight(T::WeightInfo::report_downtime())]
		pub fn report_downtime(origin: OriginFor<T>, lease_id: LeaseId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut lease = Leases::<T>::get(lease_id).ok_or(Error::<T>::LeaseNotFound)?;
			let mut machine = Self::machine_of(&lease)?;
			let now = frame_system::Pallet::<T>::block_number();
			let unhealthy_failed = lease.state == LeaseState::Running &&
				!lease.unhealthy_since.is_zero() &&
				now > lease.unhealthy_since.saturating_add(T::UnhealthyGrace::get());
			if !unhealthy_failed {
				ensure!(lease.customer == who, Error::<T>::NotLeaseCustomer);
				ensure!(lease.state == LeaseState::Running, Error::<T>::LeaseNotRunning);
				let fresh_until = Self::fresh_until(&machine);
				let stale = now > fresh_until && fresh_until < lease.ends_at;
				ensure!(stale || lease.unhealthy_since.is_zero(), Error::<T>::UnhealthyGraceOpen);
				// Only downtime inside the paid period counts: a lease served to its end has none.
				ensure!(fresh_until < lease.ends_at, Error::<T>::LeaseServed);
				ensure!(now > fresh_until, Error::<T>::MachineNotStale);
			}
			Self::pay_accrued(lease_id, &mut lease, &machine, now)?;

			// bond * gpus / gpu_count, rounded down, in one step (no double rounding).
			let share: BalanceOf<T> = multiply_by_rational_with_rounding(
				machine.bond.unique_saturated_into(),
				lease.gpus.into(),
				machine.gpu_count.max(1).into(),
				Rounding::Down,
			)
			.map(|v| v.unique_saturated_into())
			.unwrap_or_else(Zero::zero);
			let compensation = T::DowntimeCompensation::get().mul_floor(share).min(lease.escrow);
			if !compensation.is_zero() {
				// Best effort and forced: the bond may have shrunk or been frozen from outside;
				// what the hold contains is paid, never more.
				let moved = T::Currency::transfer_on_hold(
					&HoldReason::MachineBond.into(),
					&machine.owner,
					&lease.customer,
					compensation,
					Precision::BestEffort,
					Restriction::Free,
					Fortitude::Force,
				)?;
				machine.bond = machine.bond.saturating_sub(moved);
				if machine.bond < Self::required_bond(machine.gpu_count)? && machine.online {
					machine.online = false;
					Self::deposit_event(Event::MachineAvailabilityChanged {
						machine_id: lease.machine_id,
						online: false,
					});
				}
				Machines::<T>::insert(lease.machine_id, machine);
				Self::deposit_event(Event::DowntimeCompensated {
					lease_id,
					customer: lease.customer.clone(),
					amount: moved,
				});
			}
			Self::end_lease(lease_id, lease, LeaseEndReason::Failed)
		}

		/// Settle a lease that reached its end block: final pay to the provider, the rest refunded,
		/// GPUs freed.
		///
		/// Origin: signed, anyone.
		///
		/// ## Errors
		/// `LeaseNotFound`, `LeaseNotRunning`, `LeaseNotEnded`.
		#[pallet::call_index(13)]
		#[pallet::weight(T::WeightInfo::settle_lease())]
		pub fn settle_lease(origin: OriginFor<T>, lease_id: LeaseId) -> DispatchResult {
			ensure_signed(origin)?;
			let mut lease = Leases::<T>::get(lease_id).ok_or(Error::<T>::LeaseNotFound)?;
			ensure!(lease.state == LeaseState::Running, Error::<T>::LeaseNotRunning);
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(now >= lease.ends_at, Error::<T>::LeaseNotEnded);
			let machine = Self::machine_of(&lease)?;
			Self::pay_accrued(lease_id, &mut lease, &machine, now)?;
			Self::end_lease(lease_id, lease, LeaseEndReason::Expired)
		}

		/// Set the machine's GPU set to what the hardware has (bit `i` = GPU slot `i` present).
		/// Leases holding a slot that is no longer present end with reason `GpusRemoved`: accrued
		/// pay to the provider, the rest refunded, no compensation (the provider told the chain).
		/// The bond follows the GPU count: topped up from the owner when it is below
		/// `MinBondPerGpu` per GPU, and the part above that minimum for the removed GPUs released.
		///
		/// Origin: signed, the machine's operator or owner.
		///
		/// ## Errors
		/// `MachineNotFound`, `NotMachineOperator`, `InvalidGpuSet`, `Overflow`,
		/// `InsufficientBalance` (the owner cannot cover the larger bond).
		#[pallet::call_index(14)]
		#[pallet::weight(T::WeightInfo::update_gpus(T::MaxGpusPerMachine::get()))]
		pub fn update_gpus(
			origin: OriginFor<T>,
			machine_id: MachineId,
			gpus_present: u64,
		) -> DispatchResultWithPostInfo {
			let refused = |e: DispatchError| e.with_weight(T::WeightInfo::update_gpus(0));
			let who = ensure_signed(origin).map_err(|e| refused(e.into()))?;
			let mut machine =
				Machines::<T>::get(machine_id).ok_or_else(|| refused(Error::<T>::MachineNotFound.into()))?;
			Self::ensure_operator(&machine, &who).map_err(refused)?;
			let max = T::MaxGpusPerMachine::get();
			ensure!(
				gpus_present != 0 && (max >= 64 || gpus_present >> max == 0),
				refused(Error::<T>::InvalidGpuSet.into())
			);
			let now = frame_system::Pallet::<T>::block_number();
			let mut ended = 0u32;
			for lease_id in MachineLeases::<T>::get(machine_id) {
				let Some(mut lease) = Leases::<T>::get(lease_id) else { continue };
				if lease.gpu_mask & !gpus_present == 0 {
					continue;
				}
				if lease.state == LeaseState::Running {
					Self::pay_accrued(lease_id, &mut lease, &machine, now)?;
				}
				machine.used_gpus &= !lease.gpu_mask;
				Self::end_lease(lease_id, lease, LeaseEndReason::GpusRemoved)?;
				ended += 1;
			}
			let old_count = machine.gpu_count;
			let gpu_count = gpus_present.count_ones();
			let required = Self::required_bond(gpu_count)?;
			if machine.bond < required {
				let top_up = required.saturating_sub(machine.bond);
				Self::hold(HoldReason::MachineBond, &machine.owner, top_up)?;
				machine.bond = required;
			} else if gpu_count < old_count {
				let removed = Self::required_bond(old_count.saturating_sub(gpu_count))?;
				let excess = machine.bond.saturating_sub(required).min(removed);
				let released = T::Currency::release(
					&HoldReason::MachineBond.into(),
					&machine.owner,
					excess,
					Precision::BestEffort,
				)?;
				machine.bond = machine.bond.saturating_sub(released);
			}
			machine.gpus_present = gpus_present;
			machine.unhealthy_gpus &= gpus_present;
			machine.gpu_count = gpu_count;
			let bond = machine.bond;
			Machines::<T>::insert(machine_id, machine);
			Self::deposit_event(Event::MachineGpusChanged { machine_id, gpus_present, gpu_count, bond });
			Ok(Some(T::WeightInfo::update_gpus(ended)).into())
		}
	}

	impl<T: Config> Pallet<T> {
		/// Last block at which the machine counts as up.
		pub fn fresh_until(machine: &Machine<T>) -> BlockNumberFor<T> {
			machine.last_heartbeat.saturating_add(T::HeartbeatGrace::get())
		}

		/// What `lease` would pay (before the fee) if settled at block `now`, and up to which block:
		/// the blocks after its checkpoint up to `now`, its end, the machine's freshness horizon and
		/// the block its GPUs turned unhealthy, whichever comes first.
		pub fn accrued(
			lease: &Lease<T>,
			machine: &Machine<T>,
			now: BlockNumberFor<T>,
		) -> (BalanceOf<T>, BlockNumberFor<T>) {
			if lease.state != LeaseState::Running {
				return (Zero::zero(), lease.accrue_from);
			}
			let mut until = now.min(lease.ends_at).min(Self::fresh_until(machine));
			if !lease.unhealthy_since.is_zero() {
				until = until.min(lease.unhealthy_since);
			}
			if until <= lease.accrue_from {
				return (Zero::zero(), lease.accrue_from);
			}
			let blocks = until.saturating_sub(lease.accrue_from);
			// Bounded by the escrow, which was computed with checked math for the whole duration.
			let amount = Self::cost(lease.price_per_gpu_block, lease.gpus, blocks)
				.unwrap_or(lease.escrow)
				.min(lease.escrow);
			(amount, until)
		}

		/// The last block at which `lease` (pending) may still be started.
		pub fn start_deadline(lease: &Lease<T>) -> BlockNumberFor<T> {
			// Cannot saturate: `create_lease` checked `latest_end`, which is larger.
			lease.created_at.saturating_add(T::StartWindow::get())
		}

		/// The latest block a lease created at `created_at` for `duration` blocks can end (started
		/// at the end of its start window); `BlockNumberOverflow` if that is not a block number.
		fn latest_end(
			created_at: BlockNumberFor<T>,
			duration: BlockNumberFor<T>,
		) -> Result<BlockNumberFor<T>, DispatchError> {
			created_at
				.checked_add(&T::StartWindow::get())
				.and_then(|b| b.checked_add(&duration))
				.ok_or_else(|| Error::<T>::BlockNumberOverflow.into())
		}

		/// The mask of GPU slots `0..count`.
		fn low_slots(count: u32) -> u64 {
			if count >= 64 { u64::MAX } else { (1u64 << count) - 1 }
		}

		/// What a pending lease pays for its reservation if it ends at `now` without starting:
		/// the blocks from creation while the machine was up, capped at the start window and the
		/// lease's duration, and at least one block if the machine was up when the lease was made
		/// (so that creating and cancelling in one block is not free), at the lease's price.
		/// Returns the amount (at most the escrow) and the block the reservation is paid up to.
		pub fn reservation(
			lease: &Lease<T>,
			machine: &Machine<T>,
			now: BlockNumberFor<T>,
		) -> (BalanceOf<T>, BlockNumberFor<T>) {
			let fresh_until = Self::fresh_until(machine);
			if lease.state != LeaseState::Pending || lease.created_at > fresh_until {
				return (Zero::zero(), lease.created_at);
			}
			let until = now.min(Self::start_deadline(lease)).min(fresh_until);
			let blocks = until
				.saturating_sub(lease.created_at)
				.max(One::one())
				.min(lease.duration);
			let amount = Self::cost(lease.price_per_gpu_block, lease.gpus, blocks)
				.unwrap_or(lease.escrow)
				.min(lease.escrow);
			(amount, until)
		}

		fn required_bond(gpu_count: u32) -> Result<BalanceOf<T>, DispatchError> {
			T::MinBondPerGpu::get()
				.checked_mul(&gpu_count.into())
				.ok_or_else(|| Error::<T>::Overflow.into())
		}

		fn cost(
			price: BalanceOf<T>,
			gpus: u32,
			blocks: BlockNumberFor<T>,
		) -> Result<BalanceOf<T>, DispatchError> {
			let blocks: u32 = TryInto::<u32>::try_into(blocks).map_err(|_| Error::<T>::Overflow)?;
			price
				.checked_mul(&gpus.into())
				.and_then(|p| p.checked_mul(&blocks.into()))
				.ok_or_else(|| Error::<T>::Overflow.into())
		}

		fn hold(reason: HoldReason, who: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
			// Named error instead of the currency's own, and the free balance keeps the
			// existential deposit so holding never reaps the account.
			let spendable = T::Currency::reducible_balance(who, Preservation::Preserve, Fortitude::Polite);
			ensure!(spendable >= amount, Error::<T>::InsufficientBalance);
			T::Currency::hold(&reason.into(), who, amount)
		}

		fn ensure_operator(machine: &Machine<T>, who: &T::AccountId) -> DispatchResult {
			ensure!(*who == machine.operator || *who == machine.owner, Error::<T>::NotMachineOperator);
			Ok(())
		}

		fn machine_of(lease: &Lease<T>) -> Result<Machine<T>, DispatchError> {
			// A machine with live leases cannot be deregistered, so this always exists.
			Machines::<T>::get(lease.machine_id).ok_or_else(|| Error::<T>::MachineNotFound.into())
		}

		/// The lowest `gpus` present, free and healthy GPU slots of the machine, as a mask.
		fn pick_free_gpus(machine: &Machine<T>, gpus: u32) -> Option<u64> {
			let mut mask = 0u64;
			let mut picked = 0u32;
			for i in 0..64u32 {
				if picked == gpus {
					break;
				}
				let slot = 1u64 << i;
				let taken = machine.used_gpus | machine.unhealthy_gpus;
				if machine.gpus_present & slot != 0 && taken & slot == 0 {
					mask |= 1u64 << i;
					picked += 1;
				}
			}
			(picked == gpus).then_some(mask)
		}

		/// Records a heartbeat at the current block with the machine's unhealthy slots. If the
		/// machine had gone stale, first pays each running lease up to the old horizon and moves its
		/// checkpoint to now. A running lease whose health changed is marked: unhealthy from now
		/// (accrual stops; what accrued before stays claimable), or healthy again with its
		/// checkpoint moved to now (the unhealthy blocks are never paid). Returns how many leases
		/// were written (for the weight); only a stale machine or a change of health touches any.
		fn do_heartbeat(
			machine_id: MachineId,
			machine: &mut Machine<T>,
			unhealthy_gpus: u64,
		) -> Result<u32, DispatchError> {
			let now = frame_system::Pallet::<T>::block_number();
			let horizon = Self::fresh_until(machine);
			let unhealthy_gpus = unhealthy_gpus & machine.gpus_present;
			let stale = now > horizon;
			let health_changed = unhealthy_gpus != machine.unhealthy_gpus;
			let mut settled = 0u32;
			let gap = if stale { now.saturating_sub(horizon) } else { Zero::zero() };
			if stale || health_changed {
				for lease_id in MachineLeases::<T>::get(machine_id) {
					let Some(mut lease) = Leases::<T>::get(lease_id) else { continue };
					if lease.state != LeaseState::Running {
						continue;
					}
					let mut written = false;
					if stale {
						Self::pay_accrued(lease_id, &mut lease, machine, horizon)?;
						lease.accrue_from = lease.accrue_from.max(now.min(lease.ends_at));
						written = true;
					}
					let unhealthy = lease.gpu_mask & unhealthy_gpus != 0;
					let was_unhealthy = !lease.unhealthy_since.is_zero();
					if unhealthy && !was_unhealthy && now < lease.ends_at {
						lease.unhealthy_since = now;
						Self::deposit_event(Event::LeaseHealthChanged { lease_id, healthy: false });
						written = true;
					} else if !unhealthy && was_unhealthy {
						// Pay what accrued before the fault, then skip the unhealthy blocks.
						Self::pay_accrued(lease_id, &mut lease, machine, now)?;
						lease.accrue_from = lease.accrue_from.max(now.min(lease.ends_at));
						lease.unhealthy_since = Zero::zero();
						Self::deposit_event(Event::LeaseHealthChanged { lease_id, healthy: true });
						written = true;
					}
					if written {
						Leases::<T>::insert(lease_id, lease);
						settled += 1;
					}
				}
			}
			machine.last_heartbeat = now;
			machine.unhealthy_gpus = unhealthy_gpus;
			Self::deposit_event(Event::HeartbeatReceived { machine_id, gap, unhealthy_gpus });
			Ok(settled)
		}

		/// Pays what `lease` accrued up to `now` to the machine's owner (less the fee) and moves its
		/// checkpoint. The caller writes `lease` back. Returns the amount taken from escrow.
		fn pay_accrued(
			lease_id: LeaseId,
			lease: &mut Lease<T>,
			machine: &Machine<T>,
			now: BlockNumberFor<T>,
		) -> Result<BalanceOf<T>, DispatchError> {
			let (amount, until) = Self::accrued(lease, machine, now);
			Self::pay_from_escrow(lease_id, lease, machine, amount, until)
		}

		/// Moves `amount` of the lease's escrow to the machine's owner, less the lease's fee
		/// (`floor(amount * fee)`) to the treasury, and records the lease paid up to `until`.
		/// Pays from what the customer's escrow hold really contains, ignoring freezes on it: the
		/// funds were committed when the lease was made, and a hold shrunk from outside must not
		/// wedge the lease. Returns the amount taken from the lease's escrow record.
		fn pay_from_escrow(
			lease_id: LeaseId,
			lease: &mut Lease<T>,
			machine: &Machine<T>,
			amount: BalanceOf<T>,
			until: BlockNumberFor<T>,
		) -> Result<BalanceOf<T>, DispatchError> {
			if amount.is_zero() {
				return Ok(amount);
			}
			let reason = HoldReason::LeaseEscrow.into();
			let available = amount.min(T::Currency::balance_on_hold(&reason, &lease.customer));
			let fee = lease.fee.mul_floor(available);
			let move_to = |to: &T::AccountId, value: BalanceOf<T>| -> Result<BalanceOf<T>, DispatchError> {
				if value.is_zero() {
					return Ok(value);
				}
				T::Currency::transfer_on_hold(
					&reason,
					&lease.customer,
					to,
					value,
					Precision::BestEffort,
					Restriction::Free,
					Fortitude::Force,
				)
			};
			let paid = move_to(&machine.owner, available.saturating_sub(fee))?;
			let fee = move_to(&T::Treasury::get(), fee)?;
			lease.escrow = lease.escrow.saturating_sub(amount);
			lease.accrue_from = until;
			Self::deposit_event(Event::PaymentClaimed {
				lease_id,
				provider: machine.owner.clone(),
				paid,
				fee,
				accrued_until: until,
			});
			Ok(amount)
		}

		/// Ends a lease that never started at `now`: pays its reservation, refunds the rest.
		fn end_pending_lease(
			lease_id: LeaseId,
			mut lease: Lease<T>,
			now: BlockNumberFor<T>,
			reason: LeaseEndReason,
		) -> DispatchResult {
			let machine = Self::machine_of(&lease)?;
			let (amount, until) = Self::reservation(&lease, &machine, now);
			Self::pay_from_escrow(lease_id, &mut lease, &machine, amount, until)?;
			Self::end_lease(lease_id, lease, reason)
		}

		/// Refunds the rest of the escrow, frees the GPUs and removes the lease.
		fn end_lease(lease_id: LeaseId, lease: Lease<T>, reason: LeaseEndReason) -> DispatchResult {
			// Best effort: release what the hold really has (it may have shrunk from outside).
			let refunded = if lease.escrow.is_zero() {
				Zero::zero()
			} else {
				T::Currency::release(
					&HoldReason::LeaseEscrow.into(),
					&lease.customer,
					lease.escrow,
					Precision::BestEffort,
				)?
			};
			Machines::<T>::mutate(lease.machine_id, |m| {
				if let Some(m) = m {
					m.used_gpus &= !lease.gpu_mask;
				}
			});
			MachineLeases::<T>::mutate_exists(lease.machine_id, |ids| {
				if let Some(list) = ids {
					list.retain(|id| *id != lease_id);
					if list.is_empty() {
						*ids = None;
					}
				}
			});
			CustomerLeases::<T>::mutate_exists(&lease.customer, |ids| {
				if let Some(list) = ids {
					list.retain(|id| *id != lease_id);
					if list.is_empty() {
						*ids = None;
					}
				}
			});
			Leases::<T>::remove(lease_id);
			Self::deposit_event(Event::LeaseEnded { lease_id, reason, refunded });
			Ok(())
		}

		/// Checks the pallet's invariants over all of its storage (tests and try-runtime only):
		/// escrow held is at most what live leases record (equal unless another pallet moved held
		/// funds), likewise bonds; no GPU belongs to two leases; leased GPUs are present; the lists
		/// per machine and per customer name exactly the live leases and are never empty.
		#[cfg(any(feature = "try-runtime", feature = "std"))]
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			use alloc::collections::btree_map::BTreeMap;
			let mut escrow: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
			let mut masks: BTreeMap<MachineId, u64> = BTreeMap::new();
			let next_id = NextLeaseId::<T>::get();
			for (id, lease) in Leases::<T>::iter() {
				ensure!(id < next_id, "a lease id at or above NextLeaseId");
				let e = escrow.entry(lease.customer.clone()).or_default();
				*e = e.saturating_add(lease.escrow);
				let m = masks.entry(lease.machine_id).or_default();
				ensure!(*m & lease.gpu_mask == 0, "a GPU belongs to two leases");
				ensure!(lease.gpu_mask.count_ones() == lease.gpus, "lease mask and GPU count differ");
				*m |= lease.gpu_mask;
				ensure!(MachineLeases::<T>::get(lease.machine_id).contains(&id), "lease missing from machine list");
				ensure!(CustomerLeases::<T>::get(&lease.customer).contains(&id), "lease missing from customer list");
				if lease.state == LeaseState::Running {
					ensure!(lease.ends_at == lease.started_at.saturating_add(lease.duration), "end differs from start + duration");
				} else {
					ensure!(lease.unhealthy_since.is_zero(), "a pending lease is marked unhealthy");
				}
				ensure!(
					lease.unhealthy_since <= frame_system::Pallet::<T>::block_number(),
					"a lease unhealthy from a future block"
				);
			}
			for (_, ids) in MachineLeases::<T>::iter() {
				ensure!(!ids.is_empty(), "an empty machine lease list is stored");
				ensure!(ids.iter().all(|id| Leases::<T>::contains_key(id)), "a machine lists an ended lease");
			}
			for (_, ids) in CustomerLeases::<T>::iter() {
				ensure!(!ids.is_empty(), "an empty customer lease list is stored");
				ensure!(ids.iter().all(|id| Leases::<T>::contains_key(id)), "a customer lists an ended lease");
			}
			for (customer, held) in escrow.iter() {
				let on_hold = T::Currency::balance_on_hold(&HoldReason::LeaseEscrow.into(), customer);
				ensure!(on_hold <= *held, "more escrow held than live leases record");
			}
			let mut bonds: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
			for (id, machine) in Machines::<T>::iter() {
				ensure!(masks.get(&id).copied().unwrap_or(0) == machine.used_gpus, "used GPUs differ from leases");
				ensure!(machine.used_gpus & !machine.gpus_present == 0, "a leased GPU is not present");
				ensure!(machine.unhealthy_gpus & !machine.gpus_present == 0, "an unhealthy GPU is not present");
				ensure!(machine.gpus_present.count_ones() == machine.gpu_count, "GPU count differs from the GPU set");
				let b = bonds.entry(machine.owner.clone()).or_default();
				*b = b.saturating_add(machine.bond);
			}
			for (owner, bond) in bonds.iter() {
				let on_hold = T::Currency::balance_on_hold(&HoldReason::MachineBond.into(), owner);
				ensure!(on_hold <= *bond, "more bond held than machines record");
			}
			Ok(())
		}
	}
}

extern crate alloc;
