#!/usr/bin/env node
// Writes the dev chain's raw chain spec from the runtime's wasm alone, no native runtime needed:
//   node chain-spec-from-wasm.cjs RUNTIME.wasm OUT.json
// It executes the runtime's own genesis builder inside the wasm (GenesisBuilder_get_preset for
// the "development" preset, then GenesisBuilder_build_state) with Chopsticks' wasm executor, and adds
// what chain/runtime/src/genesis.rs `dev_genesis_storage` adds: `:code`, Timestamp::Now and
// Aura::CurrentSlot from the current time. The result equals the native writer's
// (chain/runtime/src/bin/chain_spec.rs) on every key but those two time keys; tests/chain proves it.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');

// Chopsticks' node_modules (chain/scripts/setup-toolchain.sh installs it into the cache).
const cache = process.env.GRIDLEASE_CACHE || path.join(os.homedir(), '.cache', 'gridlease');
const req = createRequire(path.join(cache, 'chopsticks', 'node_modules', '_'));
const executor = req('@acala-network/chopsticks-executor'); // loads its own wasm synchronously
const { u8aToHex, hexToU8a, compactAddLength, compactStripLength, u8aConcat, u8aToString, u8aToBigInt,
  stringToU8a, bnToU8a } = req('@polkadot/util');
const { xxhashAsU8a } = req('@polkadot/util-crypto');

// Calls one runtime API on empty storage; returns the SCALE result and the storage it wrote.
async function call(wasm, method, argsHex) {
  const empty = async () => undefined;
  const r = await executor.run_task(
    { id: 0, wasm, calls: [[method, [argsHex]]], mockSignatureHost: 0,
      allowUnresolvedImports: false, runtimeLogLevel: 0, storageProofSize: 0 },
    { getStorage: empty, getNextKey: empty, offchainGetStorage: empty,
      offchainTimestamp: async () => Date.now(), offchainRandomSeed: async () => '0x' + '00'.repeat(32),
      offchainSubmitTransaction: async () => false });
  if (r.Error) throw new Error(`${method}: ${r.Error}`);
  return { result: hexToU8a(r.Call.result), storageDiff: r.Call.storageDiff };
}

// twox128(pallet) ++ twox128(item): the key of a FRAME StorageValue.
const storageValueKey = (pallet, item) =>
  u8aToHex(u8aConcat(xxhashAsU8a(pallet, 128), xxhashAsU8a(item, 128)));

async function main() {
  const [wasmPath, outPath] = process.argv.slice(2);
  if (!wasmPath || !outPath) throw new Error('usage: chain-spec-from-wasm.cjs RUNTIME.wasm OUT.json');
  const t0 = process.hrtime.bigint();
  const code = fs.readFileSync(wasmPath);
  const wasm = u8aToHex(code);

  // 1. The dev chain's config, from the runtime itself (genesis.rs, the one definition):
  // get_preset(Some("development")) -> Option<Vec<u8>>, the whole RuntimeGenesisConfig as JSON.
  const id = u8aConcat([1], compactAddLength(stringToU8a('development')));
  const preset = (await call(wasm, 'GenesisBuilder_get_preset', u8aToHex(id))).result;
  if (preset[0] !== 1) throw new Error('the runtime has no "development" genesis preset');
  const config = compactStripLength(preset.subarray(1))[1]; // the Vec<u8> after Some

  // 2. Build the genesis storage inside the wasm: build_state(Vec<u8>) -> Result<(), String>.
  const built = await call(wasm, 'GenesisBuilder_build_state', u8aToHex(compactAddLength(config)));
  if (built.result[0] !== 0) throw new Error(`build_state: ${u8aToString(compactStripLength(built.result.subarray(1))[1])}`);
  const top = {};
  for (const [k, v] of built.storageDiff) if (v !== null) top[k] = v;

  // 3. What dev_genesis_storage adds: the clock at the current slot (Chopsticks derives block 1's
  // timestamp and slot from these), and the wasm itself as :code.
  const slotMs = u8aToBigInt((await call(wasm, 'AuraApi_slot_duration', '0x')).result); // SLOT_DURATION, u64
  const slot = BigInt(Date.now()) / slotMs;
  top[storageValueKey('Timestamp', 'Now')] = u8aToHex(bnToU8a(slot * slotMs, { bitLength: 64 }));
  top[storageValueKey('Aura', 'CurrentSlot')] = u8aToHex(bnToU8a(slot, { bitLength: 64 }));
  top['0x3a636f6465'] = wasm; // well_known_keys::CODE = ":code"

  // The same JSON as chain_spec.rs writes (keys sorted as its BTreeMap-backed serde_json does).
  const sorted = Object.fromEntries(Object.keys(top).sort().map((k) => [k, top[k]]));
  const spec = {
    bootNodes: [], chainType: 'Development', codeSubstitutes: {},
    genesis: { raw: { childrenDefault: {}, top: sorted } },
    id: 'gridlease_dev', name: 'Gridlease Dev',
    properties: { ss58Format: 42, tokenDecimals: 12, tokenSymbol: 'GLT' },
    protocolId: 'gridlease', telemetryEndpoints: null,
  };
  fs.writeFileSync(outPath, JSON.stringify(spec, null, 2));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.error(`==> genesis from the wasm: ${Object.keys(top).length} keys in ${ms.toFixed(0)} ms`);
}

main().then(() => process.exit(0), (e) => { console.error(`chain-spec-from-wasm: ${e.message}`); process.exit(1); });
