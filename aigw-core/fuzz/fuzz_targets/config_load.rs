//! Loading an arbitrary document as configuration — the YAML parse, the schema pass that
//! repairs each error to find the next, the line index, validation and the routing
//! compile — ends with a configuration or a list of issues: never a panic, never a loop.
#![no_main]

use aigw_core::config::Config;
use aigw_core::routing::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = Config::from_yaml_str(text, "fuzz.yaml") {
        let _ = Snapshot::compile(&config);
    }
});
