//! Quick probe of ingest and derivation cost (not a benchmark harness).
use coop_model::record;
use std::time::Instant;

use coop_model::*;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let founder = IdentityKey::from_seed([1; 32]);
    let fdev = DeviceKey::from_seed([2; 32]);
    let (mut l, _) = Ledger::found(&founder, &fdev, "probe", "f", Params::default(), 0).unwrap();
    let c = l.community();
    let mut members = vec![(founder.member_id(), fdev.clone())];
    for i in 0..20u8 {
        let id = IdentityKey::from_seed([10 + i; 32]);
        let dev = DeviceKey::from_seed([100 + i; 32]);
        let rec = Record::from(record::Join {
            member: id.member_id(),
            cert: id.certify(&c, &dev.device_id()),
            display_name: format!("m{i}"),
        });
        l.author(&dev, rec, 1).unwrap();
        l.author(
            &fdev,
            Record::Vouch(record::Vouch {
                member: id.member_id(),
            }),
            2,
        )
        .unwrap();
        members.push((id.member_id(), dev));
    }
    let t = Instant::now();
    let mut k = 0usize;
    while l.len() < n {
        let (a, da) = &members[k % members.len()];
        let (b, _) = &members[(k + 1) % members.len()];
        let _ = a;
        let r = Record::Attest(record::Attest {
            to: *b,
            minutes: coop_model::Minutes(30),
            service: "help".into(),
            category: "general".into(),
            date: Day(20_000),
        });
        l.author(da, r, 3).unwrap();
        k += 1;
    }
    println!("author {} changes: {:?}", l.len(), t.elapsed());
    let envs: Vec<Envelope> = l.envelopes().collect();
    let t = Instant::now();
    let mut fresh = Ledger::new(c);
    fresh.set_verify_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let out = fresh.ingest(envs.clone());
    println!(
        "ingest {} (accepted {}, rejected {}): {:?}",
        envs.len(),
        out.accepted.len(),
        out.rejected.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let s = fresh.state().clone();
    println!(
        "derive: {:?} (counted {}, refused {})",
        t.elapsed(),
        s.counted,
        s.refused
    );
    let t = Instant::now();
    let mut fresh2 = Ledger::new(c);
    let _ = fresh2.ingest_trusted(envs.clone());
    println!("ingest trusted: {:?}", t.elapsed());
    let t = Instant::now();
    let _ = fresh.derive_from_scratch();
    println!("derive from scratch: {:?}", t.elapsed());
}
