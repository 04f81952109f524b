//! A seeded chaos soak (issue "Faults under load"): redirect chains through
//! two fault-injecting proxies (two origins) in front of one checking
//! server, over the reqwest `Client` and the tower layer, HTTP/1.1 and h2c.
//!
//! Everything is derived from one seed: each request's plan (method, body,
//! hops, early answers) from `(seed, id)`, and each proxied connection's
//! fault from `(seed, proxy, connection number)`. The server checks every
//! byte of every hop's body against the pattern at its offset, so a
//! truncated, empty, duplicated or reordered body shows at the hop where it
//! happened, even when a later 303 hides it from the final echo.
#![allow(dead_code)] // the soak test and the soak example each use their part
#![allow(unreachable_pub)] // a test helper module: `pub` is for its users, not an API
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

pub mod proxy;
pub mod run;
pub mod server;

use http::Method;

/// `SplitMix64`: small, seedable, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A stream for one thing of one seed: `(seed, what, which)`.
    pub fn of(seed: u64, what: u64, which: u64) -> Self {
        let mut rng = Rng(seed ^ what.wrapping_mul(0xA076_1D64_78BD_642F) ^ which.rotate_left(29));
        rng.next();
        rng
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// In `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// The body's byte at `offset`: position-dependent, so that a lost,
/// duplicated or reordered chunk shows (the tests' `support::pattern`).
pub fn pattern_byte(offset: u64) -> u8 {
    u8::try_from((offset * 31 + offset / 251) % 251).unwrap()
}

pub fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64).map(pattern_byte).collect()
}

/// How a request's body is given to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Memory,
    /// A stream of `chunk`-byte pieces, `pause_ms` apart.
    Stream {
        chunk: usize,
        pause_ms: u64,
    },
}

/// One redirect of a plan.
#[derive(Clone, Copy, Debug)]
pub struct Redirect {
    pub status: u16,
    /// To the other origin (proxy).
    pub cross: bool,
    /// Answer after this many body bytes, reading the rest afterwards.
    pub early: Option<u64>,
}

/// What one request of the soak does, derived from `(seed, id)`.
#[derive(Clone, Debug)]
pub struct Plan {
    pub method: Method,
    pub len: usize,
    pub source: Source,
    pub redirects: Vec<Redirect>,
    /// Replay buffer to disk past 64 KiB.
    pub spill: bool,
}

impl Plan {
    pub fn of(seed: u64, id: u64) -> Self {
        let mut rng = Rng::of(seed, 1, id);
        let method = if rng.percent(55) {
            Method::POST
        } else {
            Method::PUT
        };
        let len = match rng.below(100) {
            0..=9 => 0,
            10..=54 => rng.range(1, 16 << 10),
            55..=89 => rng.range(16 << 10, 256 << 10),
            _ => rng.range(256 << 10, 3 << 20),
        };
        let len = usize::try_from(len).unwrap();
        let source = if rng.percent(50) {
            Source::Memory
        } else {
            let chunk = usize::try_from(rng.range(4 << 10, 64 << 10)).unwrap();
            let pause_ms = if rng.percent(20) { rng.range(1, 3) } else { 0 };
            Source::Stream { chunk, pause_ms }
        };
        let hops = rng.range(1, 6);
        let redirects = (1..hops)
            .map(|_| {
                let status =
                    [307, 308, 307, 308, 302, 303, 301][usize::try_from(rng.below(7)).unwrap()];
                let cross = rng.percent(30);
                let early = (len > 0 && matches!(status, 307 | 308) && rng.percent(25))
                    .then(|| rng.below(len as u64));
                Redirect {
                    status,
                    cross,
                    early,
                }
            })
            .collect();
        let spill = rng.percent(10);
        Plan {
            method,
            len,
            source,
            redirects,
            spill,
        }
    }

    /// The method and whether the body is sent, at hop `hop` (0: the first
    /// request), under `Policy::standard()`: the spec's §1 table.
    pub fn expected(&self, hop: usize) -> (Method, bool) {
        let mut method = self.method.clone();
        let mut body = true;
        for redirect in self.redirects.iter().take(hop) {
            let keeps = match redirect.status {
                307 | 308 => true,
                303 => method == Method::GET || method == Method::HEAD,
                _ => method != Method::POST,
            };
            if !keeps {
                method = Method::GET;
                body = false;
            }
        }
        (method, body)
    }
}
