//! `coop_node::bundle::decode` (a `/coop/sync/2` batch) on arbitrary bytes: never panics,
//! never allocates past its caps, and what it accepts is one envelope per signature that
//! re-decodes and goes through the gate without a panic.
//!
//! Input: one byte `k`, then `k` 64-byte signatures (fewer when the input is short), then
//! the bundle.
#![no_main]

use coop_model::{CommunityId, Envelope, Ledger};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: quiet_automerge_panics(), |data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let sig_len = (k as usize * 64).min(rest.len() / 64 * 64);
    let (signatures, bundle) = rest.split_at(sig_len);
    let community = CommunityId([7; 32]);
    if let Ok(envs) = coop_node::bundle::decode(&community, bundle, signatures) {
        assert_eq!(envs.len(), signatures.len() / 64);
        for e in &envs {
            let again = Envelope::decode(&e.encode()).expect("a decoded change re-decodes");
            assert_eq!(&again, e);
        }
        let mut ledger = Ledger::new(community);
        let _ = ledger.ingest(envs);
    }
});

/// automerge 0.12 panics on some malformed input; the decoder and the gate catch those
/// panics on purpose (`catch_unwind`). libFuzzer's hook aborts on every panic, caught or
/// not: let automerge's through, abort on the rest (see `envelope_decode.rs`).
fn quiet_automerge_panics() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .location()
            .is_some_and(|l| l.file().contains("automerge") || l.file().contains("hexane"))
        {
            return;
        }
        abort(info);
    }));
}
