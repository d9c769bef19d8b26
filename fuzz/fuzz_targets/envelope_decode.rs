//! `Envelope::decode` on arbitrary bytes: never panics, and what it accepts re-encodes to
//! bytes that decode to the same envelope.
#![no_main]

use coop_model::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::decode(data) {
        let again = Envelope::decode(&env.encode()).expect("a decoded envelope re-decodes");
        assert_eq!(again, env);
        let _ = env.record_id();
    }
});
