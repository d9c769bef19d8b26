//! Links the soak can cut and heal: every node dials every other through its own TCP proxy
//! on 127.0.0.1 (one per ordered pair), so a link between two nodes is the pair of proxies
//! between them. Cutting a link closes the connections it carries and refuses new ones until
//! it is healed. Nodes listen on fixed ports and know each other only by proxy addresses.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// At most this many connections carried by one proxy at once (more are refused).
const MAX_CARRIED: usize = 16;

/// Counters over every proxy.
#[derive(Debug, Default)]
pub(crate) struct LinkStats {
    /// Connections carried (accepted and forwarded).
    pub(crate) carried: AtomicU64,
    /// Connections closed by a cut while carrying traffic.
    pub(crate) severed: AtomicU64,
    /// Connections refused because their link was cut.
    pub(crate) refused: AtomicU64,
}

/// One direction of a link: `from` dials `to` through `listen`.
struct Proxy {
    listen: SocketAddr,
    cut: Arc<AtomicBool>,
    open: Carried,
    accept: Option<JoinHandle<()>>,
}

/// The connections a proxy carries, by number: both of their sockets.
type Carried = Arc<Mutex<HashMap<u64, [TcpStream; 2]>>>;

/// Every proxy between `n` nodes listening on `ports`.
pub(crate) struct Links {
    n: usize,
    /// `proxies[from * n + to]`, None on the diagonal.
    proxies: Vec<Option<Proxy>>,
    stop: Arc<AtomicBool>,
    /// Totals over every proxy.
    pub(crate) stats: Arc<LinkStats>,
}

/// Copies `from` to `to` until either ends, then closes both and forgets connection `id`.
fn pump(mut from: TcpStream, mut to: TcpStream, id: u64, open: Carried) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                if to.write_all(&buf[..k]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
    open.lock().unwrap().remove(&id);
}

impl Links {
    /// Starts a proxy for every ordered pair of the nodes listening on `ports`.
    pub(crate) fn start(ports: &[u16]) -> Links {
        let n = ports.len();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(LinkStats::default());
        let mut proxies = Vec::with_capacity(n * n);
        for from in 0..n {
            for (to, port) in ports.iter().enumerate() {
                if from == to {
                    proxies.push(None);
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
                let listen = listener.local_addr().unwrap();
                let target = SocketAddr::from(([127, 0, 0, 1], *port));
                let cut = Arc::new(AtomicBool::new(false));
                let open: Carried = Arc::default();
                let accept = {
                    let (cut, open, stop, stats) =
                        (cut.clone(), open.clone(), stop.clone(), stats.clone());
                    std::thread::spawn(move || {
                        let mut next = 0u64;
                        for conn in listener.incoming() {
                            if stop.load(Ordering::SeqCst) {
                                break;
                            }
                            let Ok(inbound) = conn else { continue };
                            let full = open.lock().unwrap().len() >= MAX_CARRIED;
                            if cut.load(Ordering::SeqCst) || full {
                                stats.refused.fetch_add(1, Ordering::Relaxed);
                                let _ = inbound.shutdown(Shutdown::Both);
                                continue;
                            }
                            // A node being restarted refuses, as a dead host would.
                            let Ok(outbound) =
                                TcpStream::connect_timeout(&target, Duration::from_secs(5))
                            else {
                                let _ = inbound.shutdown(Shutdown::Both);
                                continue;
                            };
                            let clones = (
                                inbound.try_clone(),
                                outbound.try_clone(),
                                inbound.try_clone(),
                                outbound.try_clone(),
                            );
                            let (Ok(i2), Ok(o2), Ok(i3), Ok(o3)) = clones else {
                                continue;
                            };
                            next += 1;
                            let id = next;
                            open.lock().unwrap().insert(id, [i3, o3]);
                            // A cut between the check above and the insert: close it now.
                            if cut.load(Ordering::SeqCst) {
                                let _ = inbound.shutdown(Shutdown::Both);
                                let _ = outbound.shutdown(Shutdown::Both);
                            }
                            stats.carried.fetch_add(1, Ordering::Relaxed);
                            let o = open.clone();
                            std::thread::spawn(move || pump(inbound, outbound, id, o));
                            let o = open.clone();
                            std::thread::spawn(move || pump(o2, i2, id, o));
                        }
                    })
                };
                proxies.push(Some(Proxy {
                    listen,
                    cut,
                    open,
                    accept: Some(accept),
                }));
            }
        }
        Links {
            n,
            proxies,
            stop,
            stats,
        }
    }

    fn proxy(&self, from: usize, to: usize) -> &Proxy {
        self.proxies[from * self.n + to]
            .as_ref()
            .expect("no self link")
    }

    /// The addresses node `from` dials the others at (through its proxies).
    pub(crate) fn peers_of(&self, from: usize) -> Vec<String> {
        (0..self.n)
            .filter(|to| *to != from)
            .map(|to| {
                let a = self.proxy(from, to).listen;
                format!("/ip4/{}/tcp/{}", a.ip(), a.port())
            })
            .collect()
    }

    /// Cuts or heals the link between `a` and `b`, both directions.
    fn set(&self, a: usize, b: usize, cut: bool) {
        for (from, to) in [(a, b), (b, a)] {
            let p = self.proxy(from, to);
            p.cut.store(cut, Ordering::SeqCst);
            if cut {
                for (_, [i, o]) in p.open.lock().unwrap().drain() {
                    let _ = i.shutdown(Shutdown::Both);
                    let _ = o.shutdown(Shutdown::Both);
                    self.stats.severed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Splits the nodes in two: every link between `side` and the rest is cut.
    pub(crate) fn partition(&self, side: &[usize]) {
        for a in side {
            for b in (0..self.n).filter(|b| !side.contains(b)) {
                self.set(*a, b, true);
            }
        }
    }

    /// Heals every link.
    pub(crate) fn heal(&self) {
        for a in 0..self.n {
            for b in a + 1..self.n {
                self.set(a, b, false);
            }
        }
    }
}

impl Drop for Links {
    /// Stops every proxy and closes what they carry.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for p in self.proxies.iter_mut().flatten() {
            for (_, [i, o]) in p.open.lock().unwrap().drain() {
                let _ = i.shutdown(Shutdown::Both);
                let _ = o.shutdown(Shutdown::Both);
            }
            // Wake the accept loop so it sees the stop flag.
            let _ = TcpStream::connect_timeout(&p.listen, Duration::from_secs(1));
            if let Some(h) = p.accept.take() {
                let _ = h.join();
            }
        }
    }
}
