//! Writes the dev chain's raw chain spec (genesis storage as hex key/value pairs, `:code`
//! included) to stdout or a file. Chopsticks boots from it; it cannot build genesis itself.

use gridlease_runtime::genesis::dev_genesis_storage;
use std::{fmt::Write as _, io::Write as _};

fn hex(bytes: &[u8]) -> String {
	let mut s = String::with_capacity(2 + bytes.len() * 2);
	s.push_str("0x");
	for b in bytes {
		let _ = write!(s, "{b:02x}");
	}
	s
}

fn main() {
	let now_ms = std::time::SystemTime::now()
		.duration_since(std::time::UNIX_EPOCH)
		.map(|d| d.as_millis() as u64)
		.unwrap_or(0);
	let storage = match dev_genesis_storage(now_ms) {
		Ok(s) => s,
		Err(e) => {
			eprintln!("cannot build genesis: {e}");
			std::process::exit(1);
		},
	};
	let top: serde_json::Map<String, serde_json::Value> =
		storage.top.iter().map(|(k, v)| (hex(k), serde_json::Value::String(hex(v)))).collect();
	let spec = serde_json::json!({
		"name": "Gridlease Dev",
		"id": "gridlease_dev",
		"chainType": "Development",
		"bootNodes": [],
		"telemetryEndpoints": null,
		"protocolId": "gridlease",
		"properties": { "ss58Format": 42, "tokenDecimals": 12, "tokenSymbol": "GLT" },
		"codeSubstitutes": {},
		"genesis": { "raw": { "top": top, "childrenDefault": {} } }
	});
	let text = serde_json::to_string_pretty(&spec).expect("json");
	match std::env::args().nth(1) {
		Some(path) => std::fs::write(&path, text).expect("write chain spec"),
		None => std::io::stdout().write_all(text.as_bytes()).expect("write stdout"),
	}
}
