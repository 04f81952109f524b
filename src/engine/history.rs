//! [`History`] and [`Hop`]: the record of every redirect a chain followed.

use http::{HeaderName, Method, StatusCode};
use url::Url;

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
    pub(crate) next_method: Method,
    pub(crate) body: BodyAction,
    pub(crate) stripped: Vec<HeaderName>,
    pub(crate) remembered: bool,
    /// The 3xx set a cookie (so a repeat of it does not prove a loop).
    pub(crate) set_cookie: bool,
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
        &self.next_method
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

    pub(crate) fn push(&mut self, hop: Hop) {
        self.hops.push(hop);
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
