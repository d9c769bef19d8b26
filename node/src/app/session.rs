//! Who may use the app: the one-time login token in the data dir, the sessions it buys,
//! and each session's CSRF token.
//!
//! `coop ui` (or [`issue_login_token`]) writes a fresh random token to
//! `<data dir>/app.token` (mode 0600, so only the node's owner can read it) and prints the
//! URL `http://127.0.0.1:<port>/login?token=…`. The node reads the file when that URL is
//! opened, compares in constant time, deletes the file (the token is good once) and answers
//! with an HttpOnly, SameSite=Strict session cookie. At most [`MAX_SESSIONS`] sessions are
//! held (the oldest goes first), each for [`SESSION_TTL_SECS`] from its login.
//!
//! Sessions survive a restart of the node: `<data dir>/app.sessions` (mode 0600, written
//! atomically) holds one line per session, the SHA-256 of its id and when it expires, never
//! the id itself, so the file opens no session to whoever reads it. A session's CSRF token
//! is derived from its id (a hash under its own label), so nothing else needs keeping.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::datadir::DataDir;
use crate::error::NodeError;

/// Most sessions held at once; a new login past it ends the oldest session.
pub const MAX_SESSIONS: usize = 64;
/// The session cookie's name.
pub const COOKIE: &str = "coop_session";
/// How long a session lasts from its login: 30 days.
pub const SESSION_TTL_SECS: i64 = 30 * 86_400;

/// The sessions' file in a data dir.
pub fn sessions_path(dir: &DataDir) -> PathBuf {
    dir.root().join("app.sessions")
}

/// The login token's file in a data dir.
pub fn token_path(dir: &DataDir) -> PathBuf {
    dir.root().join("app.token")
}

/// Writes a fresh one-time login token (mode 0600) and returns it. A token not yet used is
/// replaced.
pub fn issue_login_token(dir: &DataDir) -> Result<String, NodeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let token = random_hex();
    let path = token_path(dir);
    let tmp = path.with_extension("token.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| NodeError::io(&tmp, e))?;
    f.write_all(token.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| NodeError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| NodeError::io(&path, e))?;
    Ok(token)
}

/// 32 random bytes, hex.
fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Equality that takes the same time wherever the inputs differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One logged-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) csrf: String,
}

impl Session {
    fn of(id: String) -> Session {
        let csrf = hex::encode(Sha256::digest(format!("coop app csrf\0{id}").as_bytes()));
        Session { id, csrf }
    }
}

/// What is kept of a session: the hash of its id and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    hash: String,
    expires: i64,
}

fn hash_of(id: &str) -> String {
    hex::encode(Sha256::digest(format!("coop app session\0{id}").as_bytes()))
}

/// The sessions of a node: in memory, and in the data dir when opened with one.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<VecDeque<Held>>,
    /// Where they are kept (`None`: in memory only).
    file: Option<PathBuf>,
}

impl Sessions {
    /// The sessions kept in `dir` that have not expired at `now`; none when the file is
    /// missing or unreadable (a damaged line is skipped: its browser logs in again).
    pub(crate) fn open(dir: &DataDir, now: i64) -> Sessions {
        let file = sessions_path(dir);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let mut open: VecDeque<Held> = text
            .lines()
            .filter_map(|l| {
                let (hash, expires) = l.trim().split_once(' ')?;
                let expires: i64 = expires.parse().ok()?;
                let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
                (ok && expires > now && expires <= now + SESSION_TTL_SECS).then(|| Held {
                    hash: hash.to_string(),
                    expires,
                })
            })
            .collect();
        while open.len() > MAX_SESSIONS {
            open.pop_front();
        }
        Sessions {
            open: Mutex::new(open),
            file: Some(file),
        }
    }

    /// Consumes the data dir's login token if `offered` is it, and opens a session that
    /// lasts until `now` + [`SESSION_TTL_SECS`].
    pub(crate) fn login(&self, dir: &DataDir, offered: &str, now: i64) -> Option<Session> {
        let path = token_path(dir);
        let held = std::fs::read_to_string(&path).ok()?;
        if !same(held.trim(), offered) {
            return None;
        }
        // Good once: a link left in a history or a log opens nothing later.
        if std::fs::remove_file(&path).is_err() {
            return None;
        }
        let s = Session::of(random_hex());
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|h| h.expires > now);
        if open.len() >= MAX_SESSIONS {
            open.pop_front();
        }
        open.push_back(Held {
            hash: hash_of(&s.id),
            expires: now + SESSION_TTL_SECS,
        });
        if let Err(e) = self.save(&open) {
            // The session still works until the node stops.
            tracing::warn!(error = %e, "could not keep the app's sessions");
        }
        Some(s)
    }

    /// Writes the held sessions atomically, readable by the owner only.
    fn save(&self, open: &VecDeque<Held>) -> Result<(), NodeError> {
        use std::os::unix::fs::OpenOptionsExt;
        let Some(path) = &self.file else {
            return Ok(());
        };
        let text: String = open
            .iter()
            .map(|h| format!("{} {}\n", h.hash, h.expires))
            .collect();
        let tmp = path.with_extension("sessions.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| NodeError::io(&tmp, e))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| NodeError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| NodeError::io(path, e))
    }

    /// The session a request's `Cookie` header names, if it has not expired at `now`.
    pub(crate) fn find(&self, cookie_header: &str, now: i64) -> Option<Session> {
        let id = cookie_header
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v.trim())?;
        let hash = hash_of(id);
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.iter()
            .any(|h| h.expires > now && same(&h.hash, &hash))
            .then(|| Session::of(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_token_is_good_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let sessions = Sessions::default();
        assert!(sessions.login(&dir, "nothing issued", 0).is_none());
        let t = issue_login_token(&dir).unwrap();
        let mode = std::fs::metadata(token_path(&dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(sessions.login(&dir, &t[..63], 0).is_none());
        assert!(sessions.login(&dir, "0", 0).is_none());
        let s = sessions.login(&dir, &t, 0).expect("the token logs in");
        assert!(sessions.login(&dir, &t, 0).is_none(), "a second use");
        let found = sessions
            .find(&format!("a=b; {COOKIE}={}; c=d", s.id), 1)
            .unwrap();
        assert_eq!(found.csrf, s.csrf);
        assert!(sessions.find(&format!("{COOKIE}=ff"), 1).is_none());
    }

    #[test]
    fn sessions_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let sessions = Sessions::default();
        let mut first = None;
        for _ in 0..=MAX_SESSIONS {
            let t = issue_login_token(&dir).unwrap();
            let s = sessions.login(&dir, &t, 0).unwrap();
            first.get_or_insert(s);
        }
        let first = first.unwrap();
        assert!(sessions
            .find(&format!("{COOKIE}={}", first.id), 1)
            .is_none());
        assert_eq!(sessions.open.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn sessions_outlive_the_node_but_not_their_expiry_and_the_file_opens_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let now = 1_800_000_000;
        let sessions = Sessions::open(&dir, now);
        let t = issue_login_token(&dir).unwrap();
        let s = sessions.login(&dir, &t, now).unwrap();
        let cookie = format!("{COOKIE}={}", s.id);
        drop(sessions);

        // What is kept: hashes, not ids, readable by the owner only.
        let path = sessions_path(&dir);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&s.id));
        assert!(!text.contains(&s.csrf));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // A node started again knows the session, with the same CSRF token.
        let again = Sessions::open(&dir, now + 60);
        let found = again.find(&cookie, now + 60).expect("still logged in");
        assert_eq!(found.csrf, s.csrf);
        // Until it expires; a node started after that has forgotten it.
        assert!(again.find(&cookie, now + SESSION_TTL_SECS).is_none());
        let late = Sessions::open(&dir, now + SESSION_TTL_SECS + 1);
        assert!(late.find(&cookie, now + 61).is_none());
        // A damaged file opens no session and is no error.
        std::fs::write(&path, "garbage\nff 12\n").unwrap();
        assert!(Sessions::open(&dir, now).find(&cookie, now).is_none());
    }
}
