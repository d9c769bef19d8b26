//! The sync-file reader (`cli/src/syncfile.rs`, included as is) on arbitrary bytes: never
//! panics nor over-allocates, and what it accepts writes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../cli/src/syncfile.rs"]
mod syncfile;

fuzz_target!(|data: &[u8]| {
    if let Ok((community, envelopes)) = syncfile::read(data) {
        let mut out = Vec::new();
        syncfile::write(&mut out, &community, &envelopes).expect("write to memory");
        assert_eq!(out, data, "an accepted file writes back identically");
    }
});
