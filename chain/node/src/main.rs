//! `gridlease-node`: a Substrate node for the Gridlease runtime.
//!
//! Aura produces a block per slot (the runtime's 1 s), GRANDPA finalizes them (more than 2/3 of
//! the validators' votes), JSON-RPC serves substrate-interface and polkadot.js, and ParityDB keeps
//! the chain on disk (`--base-path`). `gridlease-node --help` lists the commands; `chain/README.md`
//! says how to run a dev chain, a three-validator local network, or a network of your own.

mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() -> polkadot_sdk::sc_cli::Result<()> {
	command::run()
}
