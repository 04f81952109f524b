//! [`PermanentRedirects`]: an opt-in memory of 301 and 308 targets, so that a
//! later request to the same URL goes straight to the target.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::StatusCode;
use url::Url;

/// A bounded, shared memory of permanent redirects (301 and 308 only: a
/// temporary redirect is not canonical, so 302, 303 and 307 are never kept).
///
/// Give it to a policy with [`Policy::permanent_redirects`](crate::Policy::permanent_redirects).
/// Clones share one memory. When a request's URL is remembered, the chain
/// applies the remembered redirect at once, with all the usual rules
/// (method rewrite, credential stripping), records it in the history as a
/// hop with [`Hop::is_remembered`](crate::Hop::is_remembered), and saves the
/// round trip.
///
/// Entries expire after `max_age`; beyond `capacity`, the least recently used
/// goes (eviction scans the entries: keep `capacity` in the hundreds).
#[derive(Clone)]
pub struct PermanentRedirects {
    inner: Arc<Mutex<Memory>>,
}

struct Memory {
    capacity: usize,
    max_age: Duration,
    tick: u64,
    entries: HashMap<String, Entry>,
}

struct Entry {
    status: StatusCode,
    target: Url,
    stored: Instant,
    used: u64,
}

impl fmt::Debug for PermanentRedirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let memory = self.lock();
        f.debug_struct("PermanentRedirects")
            .field("capacity", &memory.capacity)
            .field("max_age", &memory.max_age)
            .field("len", &memory.entries.len())
            .finish()
    }
}

impl PermanentRedirects {
    /// A memory of at most `capacity` redirects, each kept at most `max_age`.
    #[must_use]
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Memory {
                capacity,
                max_age,
                tick: 0,
                entries: HashMap::new(),
            })),
        }
    }

    /// How many redirects are remembered now (expired ones included until
    /// they are next looked up or evicted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget everything.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // The map stays consistent across a panic elsewhere; go on with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The remembered redirect for `url`, if any and fresh.
    pub(crate) fn lookup(&self, url: &Url) -> Option<(StatusCode, Url)> {
        let mut memory = self.lock();
        let key = key(url);
        let max_age = memory.max_age;
        memory.tick += 1;
        let tick = memory.tick;
        match memory.entries.get_mut(key) {
            Some(entry) if entry.stored.elapsed() <= max_age => {
                entry.used = tick;
                Some((entry.status, entry.target.clone()))
            }
            Some(_) => {
                memory.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remember a followed 301 or 308; other statuses are ignored.
    pub(crate) fn remember(&self, status: StatusCode, from: &Url, target: &Url) {
        if !matches!(status.as_u16(), 301 | 308) {
            return;
        }
        let mut memory = self.lock();
        if memory.capacity == 0 {
            return;
        }
        memory.tick += 1;
        let tick = memory.tick;
        let key = key(from).to_owned();
        if !memory.entries.contains_key(&key) && memory.entries.len() >= memory.capacity {
            let oldest = memory
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                memory.entries.remove(&oldest);
            }
        }
        memory.entries.insert(
            key,
            Entry {
                status,
                target: target.clone(),
                stored: Instant::now(),
                used: tick,
            },
        );
    }
}

/// The URL without its fragment: fragments never reach the server.
fn key(url: &Url) -> &str {
    let s = url.as_str();
    s.split_once('#').map_or(s, |(before, _)| before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn only_permanent_statuses_are_kept() {
        let memory = PermanentRedirects::new(8, Duration::from_secs(60));
        for status in [302, 303, 307] {
            memory.remember(
                StatusCode::from_u16(status).unwrap(),
                &url("http://a/x"),
                &url("http://a/y"),
            );
        }
        assert!(memory.is_empty());
        memory.remember(
            StatusCode::MOVED_PERMANENTLY,
            &url("http://a/x"),
            &url("http://a/y"),
        );
        let (status, target) = memory.lookup(&url("http://a/x#frag")).unwrap();
        assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(target.as_str(), "http://a/y");
    }

    #[test]
    fn least_recently_used_goes_first() {
        let memory = PermanentRedirects::new(2, Duration::from_secs(60));
        let t = url("http://t/");
        memory.remember(StatusCode::PERMANENT_REDIRECT, &url("http://a/1"), &t);
        memory.remember(StatusCode::PERMANENT_REDIRECT, &url("http://a/2"), &t);
        assert!(memory.lookup(&url("http://a/1")).is_some());
        memory.remember(StatusCode::PERMANENT_REDIRECT, &url("http://a/3"), &t);
        assert_eq!(memory.len(), 2);
        assert!(
            memory.lookup(&url("http://a/2")).is_none(),
            "2 was least recently used"
        );
        assert!(memory.lookup(&url("http://a/1")).is_some());
    }

    #[test]
    fn entries_expire() {
        let memory = PermanentRedirects::new(2, Duration::ZERO);
        memory.remember(
            StatusCode::PERMANENT_REDIRECT,
            &url("http://a/1"),
            &url("http://t/"),
        );
        std::thread::sleep(Duration::from_millis(2));
        assert!(memory.lookup(&url("http://a/1")).is_none());
        assert!(memory.is_empty());
    }
}
