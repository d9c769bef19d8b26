//! Helpers: run the real `coop` binary against per-test data dirs, parse its output, wait
//! on conditions with generous deadlines, and keep `coop up` children that die with the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: the suite must pass on a loaded 2-core machine.
pub(crate) const DEADLINE: Duration = Duration::from_secs(120);

/// The result of one `coop` run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and returns self.
    #[track_caller]
    pub(crate) fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the given exit code and returns self.
    #[track_caller]
    pub(crate) fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Stdout as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Asserts a refusal: exit 1, one line on stderr starting with `start` (e.g.
    /// `refused: over_budget`), nothing on stdout.
    #[track_caller]
    pub(crate) fn refused(self, start: &str) -> Run {
        let r = self.code(1);
        assert!(r.stderr.starts_with(start), "stderr: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "stderr: {}", r.stderr);
        assert!(r.stdout.is_empty(), "stdout: {}", r.stdout);
        r
    }
}

/// The `coop` binary with a clean environment.
pub(crate) fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coop"));
    c.env_remove("COOP_DATA_DIR")
        .env_remove("RUST_LOG")
        .env_remove("COOP_NOW");
    c
}

/// Runs `coop --data-dir DIR args...` claiming the time `now` (Unix seconds, `COOP_NOW`):
/// for getting past a voting window or a deadline without waiting for it.
pub(crate) fn coop_at(dir: &Path, now: i64, args: &[&str]) -> Run {
    let out = command()
        .env("COOP_NOW", now.to_string())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run coop");
    Run::from(out)
}

/// Runs `coop --data-dir DIR args...`.
pub(crate) fn coop(dir: &Path, args: &[&str]) -> Run {
    let out = command()
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run coop");
    Run::from(out)
}

/// Runs `coop --json --data-dir DIR args...`, asserts success, returns the JSON.
#[track_caller]
pub(crate) fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    coop(dir, &all).ok().json()
}

/// A string field of a JSON value.
#[track_caller]
pub(crate) fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
        .to_string()
}

/// An integer field of a JSON value.
#[track_caller]
pub(crate) fn i(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer {key:?} in {v}"))
}

/// How many changes a data dir holds (to show a refused command wrote nothing).
pub(crate) fn changes(dir: &Path) -> i64 {
    i(&json(dir, &["status"]), "changes")
}

/// Polls `f` until it yields a value; panics with `what` at the deadline.
#[track_caller]
pub(crate) fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A temporary world of data dirs, one per member.
pub(crate) struct World {
    tmp: tempfile::TempDir,
}

impl World {
    pub(crate) fn new() -> World {
        World {
            tmp: tempfile::Builder::new()
                .prefix("coop-e2e-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// The data dir of a member (not created).
    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name.to_lowercase())
    }

    /// A file path inside the world.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `coop init --name NAME`; returns the data dir.
    pub(crate) fn init(&self, name: &str) -> PathBuf {
        let dir = self.dir(name);
        coop(&dir, &["init", "--name", name]).ok();
        dir
    }

    /// Alice founds a community (extra `coop found` arguments allowed).
    pub(crate) fn found(&self, extra: &[&str]) -> PathBuf {
        let alice = self.init("Alice");
        let mut args = vec!["found", "--community", "Maple Street"];
        args.extend_from_slice(extra);
        coop(&alice, &args).ok();
        alice
    }

    /// Copies every change of `from` into `to` with a sync file (they never connect).
    pub(crate) fn carry(&self, from: &Path, to: &Path) {
        let file = self.file("carry.coopsync");
        coop(from, &["sync", "export", file.to_str().unwrap()]).ok();
        coop(to, &["sync", "import", file.to_str().unwrap()]).ok();
    }

    /// A newcomer joins with the founder's invite and is vouched for, over sync files.
    pub(crate) fn admit(&self, founder: &Path, name: &str) -> PathBuf {
        let dir = self.init(name);
        let code = coop(founder, &["invite"]).ok().stdout;
        coop(&dir, &["join", code.trim()]).ok();
        self.carry(&dir, founder);
        coop(founder, &["vouch", name]).ok();
        self.carry(founder, &dir);
        dir
    }

    /// Alice founds (with `extra`), Bob is admitted.
    pub(crate) fn two(&self, extra: &[&str]) -> (PathBuf, PathBuf) {
        let alice = self.found(extra);
        let bob = self.admit(&alice, "Bob");
        (alice, bob)
    }
}

/// A `coop up` child, killed when dropped. Its stdout is collected as it comes.
pub(crate) struct Up {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
    out: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Up {
    /// Starts `coop up` on 127.0.0.1 without mDNS and waits for its ready line (printed
    /// once the API socket answers).
    pub(crate) fn start(dir: &Path, peers: &[&str]) -> Up {
        let mut c = command();
        c.arg("--data-dir")
            .arg(dir)
            .args(["up", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
            .args(["--sync-interval", "1", "--stop-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for p in peers {
            c.args(["--peer", p]);
        }
        let mut child = c.spawn().expect("spawn coop up");
        let out = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let reader = {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            })
        };
        let mut up = Up {
            child,
            dir: dir.to_path_buf(),
            out,
            reader: Some(reader),
        };
        wait_until("coop up to serve its API socket", || {
            if let Ok(Some(status)) = up.child.try_wait() {
                panic!("coop up exited early: {status}");
            }
            up.output().contains("listening on").then_some(())
        });
        up
    }

    /// What the node printed on stdout so far (all of it once it exited).
    pub(crate) fn output(&mut self) -> String {
        if let Ok(Some(_)) = self.child.try_wait() {
            if let Some(r) = self.reader.take() {
                let _ = r.join();
            }
        }
        self.out.lock().unwrap().clone()
    }

    /// The node's listen addresses (with /p2p/).
    pub(crate) fn listen(&self) -> Vec<String> {
        json(&self.dir, &["status"])["listen"]
            .as_array()
            .expect("listen")
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
