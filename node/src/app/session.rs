//! Who may use the app: the one-time login token in the data dir, the sessions it buys,
//! and each session's CSRF token.
//!
//! `coop ui` (or [`issue_login_token`]) writes a fresh random token to
//! `<data dir>/app.token` (mode 0600, so only the node's owner can read it) and prints the
//! URL `http://127.0.0.1:<port>/login?token=…`. The node reads the file when that URL is
//! opened, compares in constant time, deletes the file (the token is good once) and answers
//! with an HttpOnly, SameSite=Strict session cookie. Sessions live in memory, at most
//! [`MAX_SESSIONS`] (the oldest goes first), until the node stops.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use rand::RngCore;

use crate::datadir::DataDir;
use crate::error::NodeError;

/// Most sessions held at once; a new login past it ends the oldest session.
pub const MAX_SESSIONS: usize = 64;
/// The session cookie's name.
pub const COOKIE: &str = "coop_session";

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

/// The sessions of a running node.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<VecDeque<Session>>,
}

impl Sessions {
    /// Consumes the data dir's login token if `offered` is it, and opens a session.
    pub(crate) fn login(&self, dir: &DataDir, offered: &str) -> Option<Session> {
        let path = token_path(dir);
        let held = std::fs::read_to_string(&path).ok()?;
        if !same(held.trim(), offered) {
            return None;
        }
        // Good once: a link left in a history or a log opens nothing later.
        if std::fs::remove_file(&path).is_err() {
            return None;
        }
        let s = Session {
            id: random_hex(),
            csrf: random_hex(),
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= MAX_SESSIONS {
            open.pop_front();
        }
        open.push_back(s.clone());
        Some(s)
    }

    /// The session a request's `Cookie` header names.
    pub(crate) fn find(&self, cookie_header: &str) -> Option<Session> {
        let id = cookie_header
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v.trim())?;
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.iter().find(|s| same(&s.id, id)).cloned()
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
        assert!(sessions.login(&dir, "nothing issued").is_none());
        let t = issue_login_token(&dir).unwrap();
        let mode = std::fs::metadata(token_path(&dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(sessions.login(&dir, &t[..63]).is_none());
        assert!(sessions.login(&dir, "0").is_none());
        let s = sessions.login(&dir, &t).expect("the token logs in");
        assert!(sessions.login(&dir, &t).is_none(), "a second use");
        let found = sessions
            .find(&format!("a=b; {COOKIE}={}; c=d", s.id))
            .unwrap();
        assert_eq!(found.csrf, s.csrf);
        assert!(sessions.find(&format!("{COOKIE}=ff")).is_none());
    }

    #[test]
    fn sessions_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let sessions = Sessions::default();
        let mut first = None;
        for _ in 0..=MAX_SESSIONS {
            let t = issue_login_token(&dir).unwrap();
            let s = sessions.login(&dir, &t).unwrap();
            first.get_or_insert(s);
        }
        let first = first.unwrap();
        assert!(sessions.find(&format!("{COOKIE}={}", first.id)).is_none());
        assert_eq!(sessions.open.lock().unwrap().len(), MAX_SESSIONS);
    }
}
