//! The invite decoder (`coop_node::invite`, the one the command and the app use) on
//! arbitrary text: never panics, and what it accepts encodes back to a code that decodes
//! to the same invite.
#![no_main]

use coop_node::invite;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(inv) = invite::Invite::decode(text) {
        let again = invite::Invite::decode(&inv.encode()).expect("an encoded invite decodes");
        assert_eq!(again.encode(), inv.encode());
    }
});
