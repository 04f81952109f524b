//! [`History`] and [`Hop`]: the record of every redirect a chain followed.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, Method, StatusCode};
use url::Url;

/// What sending one request cost, as the I/O loop measured it (none in a
/// chain driven by hand: the engine does no I/O and reads no clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct HopCost {
    /// From the start of the send to the response head.
    pub(crate) elapsed: Duration,
    /// Body bytes handed to the transport before the answer.
    pub(crate) body_bytes_sent: u64,
    /// The part of them that came from the replay buffer.
    pub(crate) replayed_bytes: u64,
    /// The address the response came from, where the transport knows it.
    pub(crate) remote_addr: Option<SocketAddr>,
}

/// How many requests of its chain were sent before this one: 1 on the
/// first redirected request, 2 on the next, and so on; a request sent again
/// after an HTTP/2 refusal counts too. It is OpenTelemetry's
/// `http.request.resend_count`.
///
/// The middleware and the ureq adapter put it in the extensions of every
/// request after the first (the first carries none: [`ResendCount::of`]
/// reads that as 0), where the code below the redirect loop sees each hop:
/// a reqwest-middleware middleware registered after
/// [`FollowRedirectsMiddleware`](crate::FollowRedirectsMiddleware) (in the
/// `Extensions` it is given), a ureq middleware. Elsewhere the hop spans
/// carry it (`http.request.resend_count`): reqwest's own `Client` drops
/// request extensions, and the tower layer leaves a hop's extensions as the
/// caller's (inserting one would allocate the extensions' map on every hop,
/// measured at 1 % of a hop).
///
/// ```
/// use redirect_policy::ResendCount;
///
/// let mut extensions = http::Extensions::new();
/// assert_eq!(ResendCount::of(&extensions), 0);
/// extensions.insert(ResendCount::new(2));
/// assert_eq!(ResendCount::of(&extensions), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResendCount(u32);

impl ResendCount {
    /// A count of `n` requests sent before.
    #[must_use]
    pub fn new(n: u32) -> Self {
        Self(n)
    }

    /// The number of requests of the chain sent before this one.
    #[must_use]
    pub fn get(&self) -> u32 {
        self.0
    }

    /// The count in `extensions`: 0 where there is none (the first request).
    #[must_use]
    pub fn of(extensions: &http::Extensions) -> u32 {
        extensions.get::<Self>().map_or(0, Self::get)
    }
}

/// What a hop did with the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyAction {
    /// The body was sent again, byte for byte.
    Replayed,
    /// The body was dropped (the request became `GET∅`), or had been dropped
    /// by an earlier hop.
    Dropped,
    /// There was no body to send.
    None,
}

/// One followed redirect: the 3xx that was answered and the request it led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    pub(crate) status: StatusCode,
    pub(crate) url: Url,
    pub(crate) next: Url,
    pub(crate) method: Method,
    /// The next request is a `GET` (else it keeps `method`): a `Method`
    /// less in every hop (see `History::push` for why size matters).
    pub(crate) to_get: bool,
    pub(crate) body: BodyAction,
    pub(crate) stripped: Vec<HeaderName>,
    pub(crate) remembered: bool,
    /// The 3xx set a cookie (so a repeat of it does not prove a loop).
    pub(crate) set_cookie: bool,
    /// What the request that got the 3xx cost, where an I/O loop measured
    /// it.
    pub(crate) cost: HopCost,
}

impl Hop {
    /// The redirect status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The URL that answered with the redirect.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The resolved URL of the next request (its Location).
    #[must_use]
    pub fn next_url(&self) -> &Url {
        &self.next
    }

    /// The method of the request that got the redirect.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The method of the next request.
    #[must_use]
    pub fn next_method(&self) -> &Method {
        static GET: Method = Method::GET;
        if self.to_get {
            &GET
        } else {
            &self.method
        }
    }

    /// What the next request does with the body.
    #[must_use]
    pub fn body(&self) -> BodyAction {
        self.body
    }

    /// The names (never the values) of the headers removed on this hop:
    /// credentials on an origin change, body headers on a switch to `GET∅`.
    #[must_use]
    pub fn stripped_headers(&self) -> &[HeaderName] {
        &self.stripped
    }

    /// True when this hop came from a [`PermanentRedirects`](crate::PermanentRedirects)
    /// memory: no request was sent for it.
    #[must_use]
    pub fn is_remembered(&self) -> bool {
        self.remembered
    }

    /// How long the request that got this redirect took, from the start of
    /// its send to its response head (zero for a remembered hop, which sent
    /// nothing).
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.cost.elapsed
    }

    /// The body bytes that request put on the wire before its answer came:
    /// the whole body, or the prefix a server read before it answered early,
    /// or none when the body waited for a `100 Continue` that the answer
    /// came before. Counted as they are handed to the transport (for a body
    /// in memory, its length).
    #[must_use]
    pub fn body_bytes_sent(&self) -> u64 {
        self.cost.body_bytes_sent
    }

    /// The part of [`Hop::body_bytes_sent`] that was sent again from the
    /// replay buffer: 0 on the chain's first request; on a request that
    /// replays the body, what came out of the buffer (the rest of a stream
    /// comes from its source).
    #[must_use]
    pub fn replayed_bytes(&self) -> u64 {
        self.cost.replayed_bytes
    }

    /// The address the redirect came from, where the transport reports it
    /// (reqwest, hyper-util; on ureq, the address the network guard saw).
    #[must_use]
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.cost.remote_addr
    }
}

/// Every redirect a chain followed, in order.
///
/// The [`Client`](crate::Client) puts it in the final response's
/// extensions, and every [`Error`](crate::Error) carries it:
///
/// ```no_run
/// # async fn run(client: redirect_policy::Client) -> Result<(), redirect_policy::Error> {
/// let response = client.get("http://localhost:8080/old").send().await?;
/// if let Some(history) = response.extensions().get::<redirect_policy::History>() {
///     for hop in history {
///         println!("{} {} -> {}", hop.status(), hop.url(), hop.next_url());
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    hops: Vec<Hop>,
    total: Duration,
}

impl History {
    /// The number of redirects followed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.hops.len()
    }

    /// True when no redirect was followed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// The hops, oldest first.
    pub fn iter(&self) -> std::slice::Iter<'_, Hop> {
        self.hops.iter()
    }

    /// The most recent hop.
    #[must_use]
    pub fn last(&self) -> Option<&Hop> {
        self.hops.last()
    }

    /// The hops as a slice.
    #[must_use]
    pub fn hops(&self) -> &[Hop] {
        &self.hops
    }

    /// How long the whole chain took, from the start of its first send to
    /// the head of its final response (or to its error), redirects, drains
    /// and hooks included. Zero for a chain driven by hand.
    #[must_use]
    pub fn total_elapsed(&self) -> Duration {
        self.total
    }

    pub(crate) fn push(&mut self, hop: Hop) {
        // Room for three at first (most chains have one to three
        // redirects): a first allocation for four (`Vec`'s default) would
        // pass the 1032 bytes that glibc malloc serves from its per-thread
        // cache (measured: a hop then cost ~0.4k instructions more).
        if self.hops.capacity() == 0 {
            self.hops.reserve_exact(3);
        }
        self.hops.push(hop);
    }

    pub(crate) fn set_total(&mut self, total: Duration) {
        self.total = total;
    }

    /// What the last hop's request cost.
    #[cfg_attr(
        not(any(feature = "reqwest", feature = "tower", feature = "ureq")),
        allow(dead_code)
    )] // for the I/O loop
    pub(crate) fn set_last_cost(&mut self, cost: HopCost) {
        if let Some(hop) = self.hops.last_mut() {
            hop.cost = cost;
        }
    }

    /// A hook sent the last hop somewhere else: record where.
    pub(crate) fn set_last_next(&mut self, next: Url) {
        if let Some(hop) = self.hops.last_mut() {
            hop.next = next;
        }
    }
}

impl<'a> IntoIterator for &'a History {
    type Item = &'a Hop;
    type IntoIter = std::slice::Iter<'a, Hop>;

    fn into_iter(self) -> Self::IntoIter {
        self.hops.iter()
    }
}

impl IntoIterator for History {
    type Item = Hop;
    type IntoIter = std::vec::IntoIter<Hop>;

    fn into_iter(self) -> Self::IntoIter {
        self.hops.into_iter()
    }
}

#[cfg(test)]
mod tests {
    /// A history's first allocation (room for three hops) stays within the
    /// 1032 bytes that glibc malloc serves from its per-thread cache: past
    /// it, every redirected chain paid malloc's slow path.
    #[test]
    fn a_history_of_three_hops_fits_mallocs_small_size_cache() {
        let size = 3 * std::mem::size_of::<super::Hop>();
        assert!(size <= 1032, "three hops are {size} bytes");
        let mut history = super::History::default();
        history.hops.reserve_exact(3);
        assert_eq!(history.hops.capacity(), 3);
    }
}
