//! Equivocation across the network: a device that signed two different changes with the
//! same sequence number is detected, the proof reaches every replica (including one that
//! was offline and catches up by sync), and all agree.

use coop_node::{DataDir, LocalNode};
use coop_tests::{addr, community, describe, proposal, start_node, wait_until, DEADLINE, T0};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocation_reaches_every_replica_and_all_agree() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 2);
    let forker = &c.dirs[1];
    let device = forker.device().unwrap().device_id();
    // The forker's data dir, copied (a restored backup): both copies write change n+1.
    let copy = DataDir::new(root.path().join("restored"));
    copy_dir(forker.root(), copy.root());
    let other_branch = {
        let mut n = LocalNode::open(&copy).unwrap();
        let id = n
            .submit(proposal("from the restored copy"), T0 + 50)
            .unwrap();
        n.envelope(&id).unwrap()
    };
    LocalNode::open(forker)
        .unwrap()
        .submit(proposal("from the original"), T0 + 50)
        .unwrap();

    let a = start_node(&c.dirs[0], vec![]).await;
    let b = start_node(forker, vec![addr(&a)]).await;
    // The copy's change arrives at the founder (say, on a USB stick).
    let summary = a.import(vec![other_branch.clone()]).await.unwrap();
    assert_eq!(summary.accepted, 1, "{summary:?}");
    // A third replica that was offline meanwhile catches up.
    let d = start_node(&c.dirs[2], vec![addr(&a)]).await;
    let all = [a.clone(), b.clone(), d.clone()];
    let agreed = wait_until(DEADLINE, || async {
        let Ok(s) = coop_tests::statuses(&all).await else {
            return false;
        };
        s.iter()
            .all(|x| x.forked_devices == vec![device] && x.digest == s[0].digest)
    })
    .await;
    assert!(agreed, "replicas disagree: {}", describe(&all).await);
    for n in &all {
        n.shutdown().await.unwrap();
    }
}
