//! [`Sessions`]: the dashboard's logins, in memory.
//!
//! A login (`POST /login` with a token the API accepts) opens a session: 32 random bytes from
//! the kernel, sent to the browser once as the cookie's value (hex) and kept here only as
//! their SHA-256 digest with an absolute expiry. A lookup hashes the presented value first, so
//! the map's lookup time says nothing about a valid id, and a copy of this process's memory
//! holds no usable cookie. Sessions end at their expiry, at `POST /logout`, or when the server
//! restarts (they are not stored). The map is capped: past the cap, the session that expires
//! first is dropped.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "runbook_session";

/// Open sessions: the digest of each id and when it expires.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    cap: usize,
    live: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Sessions {
    /// Sessions that last `ttl`, at most `cap` at a time.
    #[must_use]
    pub fn new(ttl: Duration, cap: usize) -> Sessions {
        Sessions {
            ttl,
            cap: cap.max(1),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lasts.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Open a session at `now`: its id, 64 hex digits, for the cookie.
    ///
    /// # Errors
    /// When the kernel's random source cannot be read.
    pub fn open(&self, now: Instant) -> std::io::Result<String> {
        let id = random_hex(32)?;
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|_, until| *until > now);
        while live.len() >= self.cap {
            let Some(first) = live
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| *k)
            else {
                break;
            };
            live.remove(&first);
        }
        live.insert(digest(&id), now + self.ttl);
        Ok(id)
    }

    /// Whether `id` is a session open at `now`.
    #[must_use]
    pub fn check(&self, id: &str, now: Instant) -> bool {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.get(&digest(id)).is_some_and(|until| *until > now)
    }

    /// End session `id` (nothing when there is none).
    pub fn close(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&digest(id));
    }
}

/// `n` random bytes from the kernel, as hex: a session id, a page's script nonce.
///
/// # Errors
/// When the kernel's random source cannot be read.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The session id in a request's `Cookie` headers, if any.
#[must_use]
pub fn from_cookies(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// The `Set-Cookie` value that gives the browser session `id` for `ttl`.
#[must_use]
pub fn set_cookie(id: &str, ttl: Duration) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        ttl.as_secs()
    )
}

/// The `Set-Cookie` value that makes the browser forget its session.
#[must_use]
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lasts_until_its_expiry_or_its_close() {
        let s = Sessions::new(Duration::from_secs(60), 10);
        let t = Instant::now();
        let id = s.open(t).unwrap();
        assert_eq!(id.len(), 64);
        assert!(s.check(&id, t + Duration::from_secs(59)));
        assert!(!s.check(&id, t + Duration::from_secs(60)), "expired");
        assert!(!s.check("0".repeat(64).as_str(), t), "never opened");
        let other = s.open(t).unwrap();
        assert_ne!(id, other, "ids are random");
        s.close(&other);
        assert!(!s.check(&other, t));
        assert!(s.check(&id, t), "closing one leaves the others");
    }

    #[test]
    fn past_the_cap_the_session_expiring_first_goes() {
        let s = Sessions::new(Duration::from_secs(60), 2);
        let t = Instant::now();
        let first = s.open(t).unwrap();
        let second = s.open(t + Duration::from_secs(1)).unwrap();
        let third = s.open(t + Duration::from_secs(2)).unwrap();
        assert!(!s.check(&first, t + Duration::from_secs(3)));
        assert!(s.check(&second, t + Duration::from_secs(3)));
        assert!(s.check(&third, t + Duration::from_secs(3)));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_set_http_only_strict() {
        let mut h = axum::http::HeaderMap::new();
        h.append("cookie", "a=1; runbook_session=abc ; b=2".parse().unwrap());
        assert_eq!(from_cookies(&h), Some("abc"));
        assert_eq!(from_cookies(&axum::http::HeaderMap::new()), None);
        let c = set_cookie("abc", Duration::from_secs(8 * 3600));
        assert_eq!(
            c,
            "runbook_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=28800"
        );
        assert!(clear_cookie().ends_with("Max-Age=0"));
    }
}
