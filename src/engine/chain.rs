//! [`Chain`]: the sans-IO redirect state machine. Request in, response heads
//! in, next request out. It never touches a socket, a clock or a body.

use std::net::IpAddr;

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use url::{Host, Url};

use crate::engine::error::{BoxError, Detail};
use crate::engine::history::{BodyAction, Hop};
use crate::engine::hook::NextRequest;
use crate::engine::network::{self, AddressSpace, NetworkGuard};
use crate::engine::policy::{Downgrade, HttpsUpgrade, MethodRule, UnreplayableBody};
use crate::engine::rules::{self, Location};
use crate::{Error, History, Policy};

/// Whether the transport can send the request body again, told to the chain
/// with each response head.
///
/// A body in memory is always [`BodyReplay::Available`]. A stream is
/// available while every byte sent so far was buffered (see
/// [`Policy::max_replay_body`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyReplay {
    /// The body can be sent again byte for byte (or there is none).
    Available,
    /// The stream was longer than the replay cap, so part of it is gone.
    OverCap,
    /// The stream failed, so it cannot be completed.
    Failed,
}

/// What the transport does after [`Chain::on_response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Send the next request: [`Chain::method`], [`Chain::url`],
    /// [`Chain::headers`], and the body if [`Chain::sends_body`].
    Follow,
    /// The response just fed in is the final one: hand it to the caller.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    None,
    Present,
    Dropped,
}

/// One redirect chain, driven by a transport.
///
/// ```text
///   Chain::new(policy, method, url, headers, has_body)
///        │
///        ▼
///   ┌─► send method()/url()/headers() (+ body if sends_body())
///   │        │
///   │        ▼
///   │   on_response(status, headers, replay) ──► Err(Error)   (history inside)
///   │        │
///   │        ├── Ok(Step::Done)    → the response is final; history() for the record
///   └────────┘ Ok(Step::Follow)    → the chain now holds the next request
/// ```
///
/// All the rules of the crate (method rewrite, body headers, Location,
/// origins and credentials, limits and loops) are applied here and only here.
///
/// ```
/// use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
/// use redirect_policy::{BodyReplay, Chain, Policy, Step};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
/// let url = url::Url::parse("http://api.test/v1/upload").unwrap();
/// let mut chain = Chain::new(Policy::standard(), Method::POST, url, headers, true);
///
/// // The server answers 302: POST becomes GET with no body.
/// let mut response = HeaderMap::new();
/// response.insert(header::LOCATION, HeaderValue::from_static("/v2/upload"));
/// let step = chain.on_response(StatusCode::FOUND, &response, BodyReplay::Available)?;
/// assert_eq!(step, Step::Follow);
/// assert_eq!(chain.method(), Method::GET);
/// assert_eq!(chain.url().as_str(), "http://api.test/v2/upload");
/// assert!(!chain.sends_body());
/// assert!(chain.headers().get(header::CONTENT_TYPE).is_none());
/// # Ok::<(), redirect_policy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Chain {
    policy: Policy,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: BodyState,
    history: History,
    /// The address space the chain's first hop reached: known at once for an
    /// IP literal or a local name, else from the first address a transport
    /// reports ([`Chain::on_peer`]). Unknown counts as public.
    start: Option<AddressSpace>,
    /// Whether a transport has reported the address of any hop yet.
    peer_seen: bool,
    /// When the I/O loop sent the first request (for
    /// [`History::total_elapsed`]); never set in a chain driven by hand.
    started: Option<std::time::Instant>,
}

impl Chain {
    /// Start a chain with the first request. `has_body` says whether it
    /// carries a body (an empty body counts as none).
    ///
    /// With a [`PermanentRedirects`](crate::PermanentRedirects) memory in the
    /// policy, remembered redirects of `url` are applied here at once, so the
    /// first request to send may already be the target.
    #[must_use]
    pub fn new(
        policy: Policy,
        method: Method,
        url: Url,
        headers: HeaderMap,
        has_body: bool,
    ) -> Self {
        let start = match policy.guard() {
            NetworkGuard::Off => None,
            _ => url
                .host()
                .and_then(|host| network::space_of_host(&host))
                .map(|(space, _)| space),
        };
        let mut chain = Self {
            policy,
            method,
            url,
            headers,
            body: if has_body {
                BodyState::Present
            } else {
                BodyState::None
            },
            history: History::default(),
            start,
            peer_seen: false,
            started: None,
        };
        chain.apply_remembered();
        chain
    }

    /// Apply remembered permanent redirects. One that would fail (a loop, the
    /// limit, a rule changed since) is simply not taken: the server answers
    /// for itself then.
    fn apply_remembered(&mut self) {
        // A hook must see every 3xx, with its headers: a remembered one has
        // none, so with a hook the server is asked every time.
        if self.policy.redirect_hook().is_some() {
            return;
        }
        let Some(memory) = self.policy.permanent_memory().cloned() else {
            return;
        };
        while let Some((status, target)) = memory.lookup(&self.url) {
            let Ok(location) = HeaderValue::from_str(target.as_str()) else {
                return;
            };
            let mut headers = HeaderMap::new();
            headers.insert(header::LOCATION, location);
            match self.step(status, &headers, BodyReplay::Available, true) {
                Ok(Step::Follow) => {}
                Ok(_) | Err(_) => return,
            }
        }
    }

    /// The request the chain would send now, as a hook sees it. Transports
    /// that run their own hooks edit it and hand it back with
    /// [`Chain::apply_edits`].
    #[must_use]
    pub fn next_request(&self) -> NextRequest {
        NextRequest {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            sends_body: self.sends_body(),
        }
    }

    /// Take a hook's edits of the next request. Its URL must still be http or
    /// https, and may not go from https to http unless the policy allows it;
    /// its headers are taken as they are (headers the hook leaves in place go
    /// to the URL it chose).
    pub fn apply_edits(&mut self, next: NextRequest) -> Result<(), Error> {
        if !matches!(next.url.scheme(), "http" | "https") {
            let scheme = next.url.scheme().to_owned();
            return Err(self
                .error(Detail::SchemeNotAllowed { scheme })
                .with_url(next.url));
        }
        let from_https = self
            .history
            .last()
            .map_or(self.url.scheme(), |hop| hop.url.scheme())
            == "https";
        if from_https && next.url.scheme() == "http" && self.policy.downgrade() == Downgrade::Refuse
        {
            return Err(self.error(Detail::InsecureRedirect).with_url(next.url));
        }
        if next.url != self.url {
            if let Some(detail) = self.refusal(&next.url, false) {
                return Err(self.error(detail).with_url(next.url));
            }
        }
        self.headers = next.headers;
        if next.url != self.url {
            self.history.set_last_next(next.url.clone());
            self.url = next.url;
        }
        Ok(())
    }

    /// Why the network guard refuses to send a request to `url`, where its
    /// host alone tells (an IP literal, a local or metadata name); `None`
    /// where it lets it go, or where only the address a name resolves to can
    /// tell ([`Chain::on_peer`]). `first`: the chain's first hop, which only
    /// [`NetworkGuard::PublicOnly`] checks.
    fn refusal(&self, url: &Url, first: bool) -> Option<Detail> {
        let guard = self.policy.guard();
        if guard == NetworkGuard::Off {
            return None;
        }
        let (space, ip) = network::space_of_host(&url.host()?)?;
        if ip.is_some_and(|ip| self.policy.is_allowed(ip)) {
            return None;
        }
        let addr = || {
            ip.map_or_else(
                || url.host_str().unwrap_or_default().to_owned(),
                |ip| ip.to_string(),
            )
        };
        match guard {
            NetworkGuard::PublicOnly => {
                let global = ip.map_or(space == AddressSpace::Public, network::is_global);
                (!global).then(|| Detail::NotPublic {
                    to: network::words(space),
                    addr: addr(),
                })
            }
            _ if first => None,
            _ => {
                let from = self.start.unwrap_or(AddressSpace::Public);
                (space > from).then(|| Detail::Escalation {
                    from,
                    to: space,
                    addr: addr(),
                })
            }
        }
    }

    /// For transports, before the first request is sent: under
    /// [`NetworkGuard::PublicOnly`], a first URL whose host is an IP literal
    /// that is not public and global, or a local name, is refused
    /// ([`ErrorKind::PrivateNetwork`](crate::ErrorKind::PrivateNetwork)).
    pub fn check_first_hop(&self) -> Result<(), Error> {
        match self.refusal(&self.url, true) {
            None => Ok(()),
            Some(detail) => Err(self.error(detail).with_url(self.url.clone())),
        }
    }

    /// For transports: the address that the response to the current request
    /// came from, fed in before its head ([`Chain::on_response`]), final or
    /// not. The network guard checks it: the first one reported tells where
    /// the chain starts (for a host that is a name); under
    /// [`NetworkGuard::NoEscalation`] a later one may be no more private,
    /// under [`NetworkGuard::PublicOnly`] every one must be public and
    /// global. A refusal is an
    /// [`ErrorKind::PrivateNetwork`](crate::ErrorKind::PrivateNetwork) error,
    /// and the transport drops the response unread.
    ///
    /// An address that cannot be the host's is a proxy's, and is not
    /// checked: one on another port than the URL's, or other than the URL's
    /// IP literal. (A proxy on the target's own port counts as the target:
    /// exempt its address with [`Policy::allow_network`].)
    pub fn on_peer(&mut self, peer: std::net::SocketAddr) -> Result<(), Error> {
        let guard = self.policy.guard();
        let literal = match self.url.host() {
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if guard == NetworkGuard::Off
            || Some(peer.port()) != self.url.port_or_known_default()
            || literal.is_some_and(|literal| literal != peer.ip())
        {
            return Ok(());
        }
        if literal.is_some() {
            // The URL's own address: checked before it was sent
            // (`Chain::refusal`, `Chain::check_first_hop`); and a literal
            // first hop's space was known from the start.
            self.peer_seen = true;
            return Ok(());
        }
        let ip = peer.ip();
        let space = AddressSpace::of(ip);
        let first = !std::mem::replace(&mut self.peer_seen, true);
        if first && self.start.is_none() {
            self.start = Some(space);
        }
        if self.policy.is_allowed(ip) {
            return Ok(());
        }
        let detail = match guard {
            NetworkGuard::PublicOnly if !network::is_global(ip) => Detail::NotPublic {
                to: network::words(space),
                addr: ip.to_string(),
            },
            NetworkGuard::NoEscalation if !first => {
                let from = self.start.unwrap_or(AddressSpace::Public);
                if space <= from {
                    return Ok(());
                }
                Detail::Escalation {
                    from,
                    to: space,
                    addr: ip.to_string(),
                }
            }
            _ => return Ok(()),
        };
        Err(self.error(detail).with_url(self.url.clone()))
    }

    /// The method of the request to send, borrowed.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))] // for the span
    pub(crate) fn method_ref(&self) -> &Method {
        &self.method
    }

    /// The method of the request to send.
    #[must_use]
    pub fn method(&self) -> Method {
        self.method.clone()
    }

    /// The URL of the request to send. It may carry a fragment, which is
    /// never sent on the wire but belongs to the final URL.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The headers of the request to send.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to edit before sending (for example to re-sign a request).
    /// Headers the chain already stripped stay stripped unless you add them
    /// back yourself.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Whether the request to send carries the original body.
    #[must_use]
    pub fn sends_body(&self) -> bool {
        self.body == BodyState::Present
    }

    /// The policy this chain follows.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The redirects followed so far.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The history, taking it out of the chain.
    #[must_use]
    pub fn into_history(self) -> History {
        self.history
    }

    /// An error of this chain: it carries the history so far.
    pub(crate) fn error(&self, detail: Detail) -> Error {
        let mut history = self.history.clone();
        if let Some(started) = self.started {
            history.set_total(started.elapsed());
        }
        Error::new(detail).with_history(history)
    }

    /// For the I/O loop: when the chain's first request was sent.
    #[cfg_attr(
        not(any(feature = "reqwest", feature = "tower", feature = "ureq")),
        allow(dead_code)
    )] // for the I/O loop
    pub(crate) fn set_started(&mut self, at: std::time::Instant) {
        self.started = Some(at);
    }

    /// For the I/O loop: what the request that got the last hop's 3xx cost.
    #[cfg_attr(
        not(any(feature = "reqwest", feature = "tower", feature = "ureq")),
        allow(dead_code)
    )] // for the I/O loop
    pub(crate) fn set_last_cost(&mut self, cost: crate::engine::history::HopCost) {
        self.history.set_last_cost(cost);
    }

    /// For the I/O loop: the history at the final response, whose head came
    /// at `at`.
    #[cfg_attr(
        not(any(feature = "reqwest", feature = "tower", feature = "ureq")),
        allow(dead_code)
    )] // for the I/O loop
    pub(crate) fn finish_at(mut self, at: std::time::Instant) -> History {
        if let Some(started) = self.started {
            self.history
                .set_total(at.saturating_duration_since(started));
        }
        self.history
    }

    /// For transports: an [`ErrorKind::Request`](crate::ErrorKind::Request)
    /// error for the current request, with the history so far and `source`
    /// (the transport's own error) as its source.
    ///
    /// A source that says a [`PublicResolver`](crate::PublicResolver) refused
    /// every address of the host gives
    /// [`ErrorKind::PrivateNetwork`](crate::ErrorKind::PrivateNetwork)
    /// instead: nothing was sent.
    #[must_use]
    pub fn request_error(&self, source: impl Into<BoxError>) -> Error {
        let source = source.into();
        if let Some(name) = network::NotPublicName::in_chain(source.as_ref()) {
            let detail = Detail::NotPublic {
                to: network::words(name.space()),
                addr: name.describe(),
            };
            return self.error(detail).with_url(self.url.clone());
        }
        self.error(Detail::Request(source))
            .with_url(self.url.clone())
    }

    /// For transports: an [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)
    /// error for the current request, with the history so far.
    #[must_use]
    pub fn timeout_error(&self, source: Option<BoxError>) -> Error {
        self.error(Detail::Timeout(source))
            .with_url(self.url.clone())
    }

    /// Feed the head of the response to the current request, and say whether
    /// the transport may use the body again. The answer is the next step, or
    /// an error that carries the history.
    pub fn on_response(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        replay: BodyReplay,
    ) -> Result<Step, Error> {
        self.step(status, headers, replay, false)
    }

    /// The Location of a redirect, resolved and checked: `None` when there is
    /// none to follow.
    fn target<'h>(
        &self,
        status: StatusCode,
        headers: &'h HeaderMap,
    ) -> Result<Option<(&'h HeaderValue, Url)>, Error> {
        let raw = match rules::location(headers) {
            Location::Missing => return Ok(None),
            Location::One(raw) => raw,
            Location::Conflicting => {
                let first = headers.get(header::LOCATION).map(detached);
                return Err(self
                    .error(Detail::ConflictingLocations)
                    .with_redirect(status, first)
                    .with_url(self.url.clone()));
            }
        };
        let fail = |detail: Detail, url: &Url| {
            self.error(detail)
                .with_redirect(status, Some(detached(raw)))
                .with_url(url.clone())
        };
        let next = rules::resolve(&self.url, raw.as_bytes())
            .map_err(|e| fail(Detail::UnparsableLocation(e), &self.url))?;
        if next.as_str().len() > rules::MAX_URL_LEN {
            let len = next.as_str().len();
            let max = rules::MAX_URL_LEN;
            return Err(fail(Detail::LocationTooLong { len, max }, &self.url));
        }
        if !matches!(next.scheme(), "http" | "https") {
            let scheme = next.scheme().to_owned();
            return Err(fail(Detail::SchemeNotAllowed { scheme }, &next));
        }
        if self.url.scheme() == "https"
            && next.scheme() == "http"
            && self.policy.downgrade() == Downgrade::Refuse
        {
            return Err(fail(Detail::InsecureRedirect, &next));
        }
        Ok(Some((raw, next)))
    }

    fn step(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        replay: BodyReplay,
        remembered: bool,
    ) -> Result<Step, Error> {
        let rule = self.policy.rule_for(status);
        if rule == MethodRule::DoNotFollow {
            return Ok(Step::Done);
        }
        let Some((raw, next)) = self.target(status, headers)? else {
            return Ok(Step::Done);
        };
        let fail = |chain: &Self, detail: Detail, url: &Url| {
            chain
                .error(detail)
                .with_redirect(status, Some(detached(raw)))
                .with_url(url.clone())
        };

        let switch = rules::switches_to_get(rule, status, &self.method);
        let body = match (self.body, switch) {
            (BodyState::None, _) => BodyAction::None,
            (BodyState::Dropped, _) | (BodyState::Present, true) => BodyAction::Dropped,
            (BodyState::Present, false) => BodyAction::Replayed,
        };
        if body == BodyAction::Replayed && replay != BodyReplay::Available {
            if self.policy.on_unreplayable_body() == UnreplayableBody::ReturnRedirect {
                return Ok(Step::Done);
            }
            let detail = match replay {
                BodyReplay::OverCap => Detail::BodyOverCap {
                    cap: self.policy.max_replay_body_limit(),
                },
                _ => Detail::BodyFailed,
            };
            return Err(fail(self, detail, &next));
        }

        if self.is_loop(status, &next, headers) {
            return Err(fail(self, Detail::RedirectLoop, &next));
        }
        if self.history.len() >= self.policy.max_redirects_limit() {
            let max = self.policy.max_redirects_limit();
            return Err(fail(self, Detail::TooManyRedirects { max }, &next));
        }
        if let Some(detail) = self.refusal(&next, false) {
            return Err(fail(self, detail, &next));
        }

        let mut stripped = Vec::new();
        let next_method = if switch {
            rules::remove_headers(&mut self.headers, &rules::BODY_HEADERS, &mut stripped);
            Method::GET
        } else {
            self.method.clone()
        };
        if self.strips_credentials(&next) {
            rules::remove_headers(&mut self.headers, &rules::CREDENTIAL_HEADERS, &mut stripped);
            let sensitive = self.policy.sensitive_headers();
            rules::remove_headers(&mut self.headers, sensitive, &mut stripped);
        }
        if rules::authority_changes(&self.url, &next) {
            rules::remove_headers(&mut self.headers, [&header::HOST], &mut stripped);
        }

        let previous_url = std::mem::replace(&mut self.url, next);
        let previous_method = std::mem::replace(&mut self.method, next_method);
        if body == BodyAction::Dropped {
            self.body = BodyState::Dropped;
        }
        self.history.push(Hop {
            status,
            url: previous_url,
            next: self.url.clone(),
            method: previous_method,
            to_get: switch,
            body,
            stripped,
            remembered,
            set_cookie: headers.contains_key(header::SET_COOKIE),
            cost: crate::engine::history::HopCost::default(),
        });
        if !remembered {
            if let Some(memory) = self.policy.permanent_memory() {
                if let Some(hop) = self.history.last() {
                    memory.remember(status, &hop.url, &hop.next);
                }
            }
        }
        Ok(Step::Follow)
    }

    /// Credentials go on a hop to another origin, except to a trusted origin
    /// and (by default) on an http → https upgrade of the same host.
    fn strips_credentials(&self, next: &Url) -> bool {
        if rules::same_origin(&self.url, next) || self.policy.is_trusted(next) {
            return false;
        }
        !(self.policy.upgrade() == HttpsUpgrade::KeepCredentials
            && rules::is_https_upgrade(&self.url, next))
    }

    /// A proven loop: an earlier hop had the same method and URL, got the same
    /// status and Location, and no 3xx from then on (this one included) set a
    /// cookie.
    fn is_loop(&self, status: StatusCode, next: &Url, headers: &HeaderMap) -> bool {
        if headers.contains_key(header::SET_COOKIE) {
            return false;
        }
        let Some(start) = self.history.iter().rposition(|hop| {
            hop.status == status
                && hop.method == self.method
                && hop.url == self.url
                && hop.next == *next
        }) else {
            return false;
        };
        !self.history.hops()[start..]
            .iter()
            .any(|hop| hop.set_cookie)
    }
}

/// A copy of a header value that owns its bytes: a transport's header values
/// may share a whole read buffer, which an error should not keep alive.
fn detached(value: &HeaderValue) -> HeaderValue {
    HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::Downgrade;
    use crate::{BodyAction, ErrorKind};

    /// Drives a chain with no I/O: a request, then response heads.
    struct Scenario {
        chain: Chain,
    }

    impl Scenario {
        fn new(policy: Policy, method: &str, url: &str) -> Self {
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("authorization", "Bearer a"),
                ("cookie", "s=1"),
                ("proxy-authorization", "Basic p"),
                ("x-api-key", "k"),
                ("content-type", "text/plain"),
                ("expect", "100-continue"),
                ("x-trace", "t"),
            ] {
                headers.insert(
                    http::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let url = Url::parse(url).unwrap();
            Self {
                chain: Chain::new(policy, method, url, headers, true),
            }
        }

        fn respond(&mut self, status: u16, location: &str) -> Result<Step, Error> {
            self.respond_with(status, &[("location", location)], BodyReplay::Available)
        }

        fn respond_with(
            &mut self,
            status: u16,
            headers: &[(&'static str, &str)],
            replay: BodyReplay,
        ) -> Result<Step, Error> {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(
                    http::HeaderName::from_static(name),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            self.chain
                .on_response(StatusCode::from_u16(status).unwrap(), &map, replay)
        }

        fn has(&self, name: &str) -> bool {
            self.chain.headers().contains_key(name)
        }
    }

    #[test]
    fn spec_table_at_the_engine() {
        let methods = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FROB", "post", "QUERY",
        ];
        for (name, policy) in [
            ("standard", Policy::standard()),
            ("strict", Policy::strict()),
            ("legacy", Policy::legacy()),
        ] {
            for status in [301u16, 302, 303, 307, 308] {
                for method in methods {
                    let mut s = Scenario::new(policy.clone(), method, "http://a.test/x");
                    assert_eq!(s.respond(status, "/y").unwrap(), Step::Follow);
                    let get_or_head = method == "GET" || method == "HEAD";
                    let keeps = match (name, status) {
                        (_, 307 | 308) | ("strict", 301 | 302) => true,
                        // QUERY's body is the question: kept on 301/302 in every preset.
                        (_, 301 | 302) if method == "QUERY" => true,
                        (_, 303) | ("legacy", 301 | 302) => get_or_head,
                        _ => method != "POST",
                    };
                    let case = format!("{name} {status} {method}");
                    assert_eq!(s.chain.sends_body(), keeps, "{case}");
                    assert_eq!(s.has("content-type"), keeps, "{case}");
                    assert_eq!(s.has("expect"), keeps, "{case}");
                    assert!(s.has("x-trace"), "{case}");
                    let want = if keeps { method } else { "GET" };
                    assert_eq!(s.chain.method().as_str(), want, "{case}");
                }
            }
        }
    }

    #[test]
    fn dropped_body_stays_dropped() {
        let mut s = Scenario::new(Policy::standard(), "POST", "http://a.test/1");
        s.respond(303, "/2").unwrap();
        s.respond(307, "/3").unwrap();
        s.respond(308, "/4").unwrap();
        assert!(!s.chain.sends_body());
        assert_eq!(s.chain.method(), Method::GET);
        let actions: Vec<_> = s.chain.history().iter().map(Hop::body).collect();
        assert_eq!(actions, [BodyAction::Dropped; 3]);
    }

    #[test]
    fn unreplayable_body() {
        let mut s = Scenario::new(Policy::standard(), "PUT", "http://a.test/1");
        let err = s
            .respond_with(307, &[("location", "/2")], BodyReplay::OverCap)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyNotReplayable);
        assert_eq!(err.status(), Some(StatusCode::TEMPORARY_REDIRECT));

        let policy = Policy::standard().unreplayable_body(UnreplayableBody::ReturnRedirect);
        let mut s = Scenario::new(policy, "PUT", "http://a.test/1");
        let step = s.respond_with(307, &[("location", "/2")], BodyReplay::Failed);
        assert_eq!(step.unwrap(), Step::Done);

        // A hop that drops the body does not need it.
        let mut s = Scenario::new(Policy::standard(), "POST", "http://a.test/1");
        let step = s.respond_with(303, &[("location", "/2")], BodyReplay::OverCap);
        assert_eq!(step.unwrap(), Step::Follow);
    }

    #[test]
    fn credentials_are_stripped_on_origin_change_and_never_return() {
        let policy =
            Policy::standard().sensitive_header(http::HeaderName::from_static("x-api-key"));
        let mut s = Scenario::new(policy, "GET", "http://a.test/1");
        s.respond(302, "/2").unwrap();
        assert!(s.has("authorization") && s.has("cookie") && s.has("x-api-key"));
        s.respond(302, "http://b.test/3").unwrap();
        for name in [
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-api-key",
        ] {
            assert!(!s.has(name), "{name}");
        }
        s.respond(302, "http://a.test/4").unwrap();
        assert!(!s.has("authorization"), "sticky: not restored on A");
        let stripped = s.chain.history().hops()[1].stripped_headers().to_vec();
        assert_eq!(stripped.len(), 4, "{stripped:?}");
        assert!(s.has("x-trace"));
    }

    #[test]
    fn origin_rules() {
        // (from, to, policy, credentials kept)
        let trusted = Policy::standard().trust_origin(&Url::parse("https://t.test").unwrap());
        let strip_upgrade = Policy::standard().https_upgrade(HttpsUpgrade::StripCredentials);
        let cases = [
            (
                "http://a.test/",
                "http://a.test:80/x",
                Policy::standard(),
                true,
            ),
            (
                "http://a.test/",
                "http://a.test:81/x",
                Policy::standard(),
                false,
            ),
            (
                "http://a.test/",
                "https://a.test/x",
                Policy::standard(),
                true,
            ),
            (
                "http://a.test:8080/",
                "https://a.test/x",
                Policy::standard(),
                false,
            ),
            ("http://a.test/", "https://a.test/x", strip_upgrade, false),
            ("http://a.test/", "https://t.test/x", trusted.clone(), true),
            ("http://a.test/", "http://t.test/x", trusted, false),
            (
                "http://a.test/",
                "http://sub.a.test/x",
                Policy::standard(),
                false,
            ),
        ];
        for (from, to, policy, kept) in cases {
            let mut s = Scenario::new(policy, "GET", from);
            s.respond(307, to).unwrap();
            assert_eq!(s.has("authorization"), kept, "{from} -> {to}");
            assert_eq!(s.has("cookie"), kept, "{from} -> {to}");
        }
    }

    #[test]
    fn https_to_http() {
        let mut s = Scenario::new(Policy::standard(), "POST", "https://a.test/");
        let err = s.respond(307, "http://a.test/").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InsecureRedirect);
        assert!(s.chain.history().is_empty());

        let allow = Policy::standard().https_downgrade(Downgrade::Allow);
        let mut s = Scenario::new(allow, "POST", "https://a.test/");
        assert_eq!(s.respond(307, "http://a.test/").unwrap(), Step::Follow);
        assert!(!s.has("authorization"), "credentials still stripped");
    }

    #[test]
    fn hook_edits_obey_scheme_and_downgrade_rules() {
        let mut s = Scenario::new(Policy::standard(), "GET", "https://a.test/");
        s.respond(307, "/next").unwrap();
        let mut next = s.chain.next_request();
        next.set_url(Url::parse("http://a.test/clear").unwrap());
        let err = s.chain.apply_edits(next).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InsecureRedirect);
        let mut next = s.chain.next_request();
        next.set_url(Url::parse("ftp://a.test/").unwrap());
        assert_eq!(
            s.chain.apply_edits(next).unwrap_err().kind(),
            ErrorKind::SchemeNotAllowed
        );
        let mut next = s.chain.next_request();
        next.set_url(Url::parse("https://b.test/other").unwrap());
        s.chain.apply_edits(next).unwrap();
        assert_eq!(s.chain.url().as_str(), "https://b.test/other");
        assert_eq!(
            s.chain.history().last().unwrap().next_url().as_str(),
            "https://b.test/other"
        );
    }

    #[test]
    fn caller_host_header_goes_when_the_host_changes() {
        let mut s = Scenario::new(Policy::standard(), "GET", "http://a.test/");
        s.chain
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("a.test"));
        s.respond(302, "/same").unwrap();
        assert!(s.has("host"));
        s.respond(302, "http://b.test/").unwrap();
        assert!(!s.has("host"));
    }

    #[test]
    fn loops_fail_fast_unless_a_cookie_is_set() {
        let mut s = Scenario::new(Policy::standard(), "GET", "http://a.test/1");
        s.respond(302, "/2").unwrap();
        s.respond(302, "/1").unwrap();
        let err = s.respond(302, "/2").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RedirectLoop);
        assert_eq!(err.history().len(), 2);

        let mut s = Scenario::new(
            Policy::standard().max_redirects(5),
            "GET",
            "http://a.test/login",
        );
        for _ in 0..5 {
            let step = s.respond_with(
                302,
                &[("location", "/login"), ("set-cookie", "step=1")],
                BodyReplay::Available,
            );
            assert_eq!(step.unwrap(), Step::Follow);
        }
        let err = s
            .respond_with(
                302,
                &[("location", "/login"), ("set-cookie", "step=1")],
                BodyReplay::Available,
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
        assert_eq!(err.history().len(), 5);
    }

    #[test]
    fn locations() {
        let mut s = Scenario::new(Policy::standard(), "GET", "http://a.test/1");
        assert_eq!(
            s.respond_with(302, &[], BodyReplay::Available).unwrap(),
            Step::Done
        );
        assert_eq!(s.respond(302, "").unwrap(), Step::Done);
        let err = s
            .respond_with(
                302,
                &[("location", "/a"), ("location", "/b")],
                BodyReplay::Available,
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidLocation);
        for scheme in ["file:///x", "data:,x", "javascript:x", "ftp://a.test/"] {
            let err = s.respond(302, scheme).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::SchemeNotAllowed, "{scheme}");
        }
        assert!(s.chain.history().is_empty(), "no hop was followed");
    }

    #[test]
    fn max_redirects_zero_fails_on_the_first_redirect() {
        let mut s = Scenario::new(
            Policy::standard().max_redirects(0),
            "GET",
            "http://a.test/1",
        );
        let err = s.respond(301, "/2").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
        assert_eq!(err.location().unwrap(), "/2");
    }

    fn guarded(guard: NetworkGuard, url: &str) -> Scenario {
        Scenario::new(Policy::standard().network_guard(guard), "POST", url)
    }

    fn peer(text: &str) -> std::net::SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn no_escalation_refuses_a_more_private_literal_before_sending() {
        for target in [
            "http://127.0.0.1/admin",
            "http://10.0.0.5/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0:6379/",
            "http://localhost/",
            "http://metadata.google.internal/",
            "http://2130706433/",
        ] {
            let mut s = guarded(NetworkGuard::NoEscalation, "http://93.184.215.14/start");
            let err = s.respond(307, target).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PrivateNetwork, "{target}");
            assert_eq!(
                err.url().unwrap().as_str(),
                Url::parse(target).unwrap().as_str()
            );
            let message = err.to_string();
            assert!(message.contains("from a public address"), "{message}");
            assert!(message.contains("Policy::allow_network"), "{message}");
            assert!(message.contains("NetworkGuard::Off"), "{message}");
            assert!(err.history().is_empty(), "{target}: nothing was followed");
        }
        let mut s = guarded(NetworkGuard::NoEscalation, "http://93.184.215.14/start");
        let err = s.respond(302, "http://169.254.169.254/").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "redirect from a public address to a private one (169.254.169.254) refused; \
                 allow it with Policy::allow_network, or turn the guard off with NetworkGuard::Off"
            ),
            "{err}"
        );
    }

    #[test]
    fn no_escalation_follows_within_a_space_and_to_public() {
        for (from, to) in [
            ("http://10.0.0.5/", "http://10.1.2.3/"),
            ("http://10.0.0.5/", "http://192.168.0.9/"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:9090/"),
            ("http://127.0.0.1/", "http://10.0.0.5/"),
            ("http://localhost/", "http://[::1]/"),
            ("http://10.0.0.5/", "http://93.184.215.14/"),
        ] {
            let mut s = guarded(NetworkGuard::NoEscalation, from);
            assert_eq!(s.respond(307, to).unwrap(), Step::Follow, "{from} -> {to}");
        }
        // A private start may not go on to the local host.
        let mut s = guarded(NetworkGuard::NoEscalation, "http://10.0.0.5/");
        assert_eq!(
            s.respond(307, "http://127.0.0.1/").unwrap_err().kind(),
            ErrorKind::PrivateNetwork
        );
        // ... unless the local network is exempt.
        let policy = Policy::standard().allow_network("127.0.0.0".parse().unwrap(), 8);
        let mut s = Scenario::new(policy, "GET", "http://10.0.0.5/");
        assert_eq!(s.respond(307, "http://127.0.0.1/").unwrap(), Step::Follow);
    }

    #[test]
    fn a_named_start_is_where_its_first_answer_came_from() {
        // Unknown (no address reported): public, so a literal is refused.
        let mut s = guarded(NetworkGuard::NoEscalation, "http://api.internal/");
        assert!(s.respond(307, "http://10.0.0.5/").is_err());
        // The first answer came from a private address: private to private.
        let mut s = guarded(NetworkGuard::NoEscalation, "http://api.internal/");
        s.chain.on_peer(peer("10.9.9.9:80")).unwrap();
        assert_eq!(s.respond(307, "http://10.0.0.5/").unwrap(), Step::Follow);
        // A public first answer: a later name answered from 10.x is withheld.
        let mut s = guarded(NetworkGuard::NoEscalation, "http://example.com/");
        s.chain.on_peer(peer("93.184.215.14:80")).unwrap();
        assert_eq!(
            s.respond(307, "http://evil.example/").unwrap(),
            Step::Follow
        );
        let err = s.chain.on_peer(peer("10.0.0.5:80")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PrivateNetwork);
        assert_eq!(err.url().unwrap().as_str(), "http://evil.example/");
        assert_eq!(err.history().len(), 1);
        // An address on another port is a proxy's: not the target's.
        let mut s = guarded(NetworkGuard::NoEscalation, "http://example.com/");
        s.chain.on_peer(peer("93.184.215.14:80")).unwrap();
        s.respond(307, "http://other.example/").unwrap();
        s.chain.on_peer(peer("10.0.0.1:3128")).unwrap();
    }

    #[test]
    fn public_only_checks_every_hop_the_first_included() {
        let s = guarded(NetworkGuard::PublicOnly, "http://10.0.0.5/");
        let err = s.chain.check_first_hop().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PrivateNetwork);
        assert!(err.to_string().contains("PublicOnly"), "{err}");
        let s = guarded(NetworkGuard::PublicOnly, "http://203.0.113.5/");
        assert!(s.chain.check_first_hop().is_err(), "documentation range");
        let s = guarded(NetworkGuard::PublicOnly, "http://example.com/");
        s.chain.check_first_hop().unwrap();
        let mut s = guarded(NetworkGuard::PublicOnly, "http://example.com/");
        assert!(s.chain.on_peer(peer("10.0.0.5:80")).is_err());
        let mut s = guarded(NetworkGuard::PublicOnly, "http://93.184.215.14/");
        s.chain.check_first_hop().unwrap();
        assert!(s.respond(307, "http://198.18.0.1/").is_err());
        // Exempt: allowed, first hop and later.
        let policy = Policy::standard()
            .network_guard(NetworkGuard::PublicOnly)
            .allow_network("203.0.113.0".parse().unwrap(), 24);
        let mut s = Scenario::new(policy, "GET", "http://203.0.113.5/");
        s.chain.check_first_hop().unwrap();
        s.chain.on_peer(peer("203.0.113.5:80")).unwrap();
        assert_eq!(s.respond(307, "http://203.0.113.9/").unwrap(), Step::Follow);
        assert!(s.respond(307, "http://10.0.0.5/").is_err());
    }

    #[test]
    fn off_refuses_nothing_and_no_escalation_never_refuses_the_first_hop() {
        let mut s = guarded(NetworkGuard::Off, "http://93.184.215.14/");
        s.chain.check_first_hop().unwrap();
        assert_eq!(s.respond(307, "http://127.0.0.1/").unwrap(), Step::Follow);
        let mut s = guarded(NetworkGuard::NoEscalation, "http://127.0.0.1/");
        s.chain.check_first_hop().unwrap();
        s.chain.on_peer(peer("127.0.0.1:80")).unwrap();
    }

    #[test]
    fn a_hook_edit_and_a_remembered_target_are_checked_too() {
        let mut s = guarded(NetworkGuard::NoEscalation, "http://93.184.215.14/");
        s.respond(307, "http://93.184.215.15/").unwrap();
        let mut next = s.chain.next_request();
        next.url = Url::parse("http://169.254.169.254/").unwrap();
        let err = s.chain.apply_edits(next).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PrivateNetwork);
        // A remembered redirect into a private address is not taken: the
        // server is asked again (and its answer checked as any other).
        let memory = crate::PermanentRedirects::new(16, std::time::Duration::from_secs(60));
        let url = Url::parse("http://93.184.215.14/old").unwrap();
        memory.remember(
            StatusCode::PERMANENT_REDIRECT,
            &url,
            &Url::parse("http://10.0.0.5/new").unwrap(),
        );
        let policy = Policy::standard().permanent_redirects(memory);
        let chain = Chain::new(policy, Method::GET, url.clone(), HeaderMap::new(), false);
        assert_eq!(chain.url(), &url);
        assert!(chain.history().is_empty());
    }
}
