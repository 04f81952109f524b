//! [`Policy`]: which redirects are followed, how each one rewrites the request,
//! and the limits and credential options that bound a chain.
//!
//! A `Policy` is plain data. The engine ([`crate::Chain`]) reads it; nothing here
//! does I/O.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, StatusCode};
use url::Url;

use crate::engine::hook::{HookName, RedirectHook};
use crate::engine::network::{Network, NetworkGuard};
use crate::PermanentRedirects;

/// The default limit on redirects in one chain: reqwest's number, so that the
/// crate is a drop-in replacement.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

/// The default cap on the bytes of a streamed body kept for replay: 8 MiB.
pub const DEFAULT_MAX_REPLAY_BODY: usize = 8 * 1024 * 1024;

/// The smallest body sent with `Expect: 100-continue` by default (curl's).
const DEFAULT_EXPECT_MIN_BODY: u64 = 1024 * 1024;

/// How long a request with `Expect: 100-continue` waits for the 100 by
/// default (curl's).
const DEFAULT_EXPECT_WAIT: Duration = Duration::from_secs(1);

/// What a redirect status does to the request's method and body.
///
/// `=` below means the method is kept and the body replayed byte for byte;
/// `GET∅` means the request becomes a `GET` with no body, and the body headers
/// are removed (see the crate docs, "Body headers").
///
/// Methods are compared byte-exact: `post` is not `POST`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MethodRule {
    /// Every method is kept (`=`). RFC 9110's rule for 307 and 308, and its
    /// letter for 301 and 302.
    Preserve,
    /// `POST` becomes `GET∅`; every other method is kept. The Fetch standard's
    /// rule for 301 and 302.
    PostToGet,
    /// Every method other than `GET` and `HEAD` becomes `GET∅`; `GET` and `HEAD`
    /// are kept. Fetch's rule for 303, and Go's and OkHttp's for 301 and 302.
    ToGet,
    /// The redirect is not followed: the 3xx response is returned as it is.
    DoNotFollow,
}

/// What happens when an https URL redirects to plain http.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Downgrade {
    /// Fail with [`ErrorKind::InsecureRedirect`](crate::ErrorKind::InsecureRedirect).
    /// A 307 would otherwise replay the body in clear text.
    #[default]
    Refuse,
    /// Follow it. Credentials are still stripped, since the origin changes.
    Allow,
}

/// How an http → https hop on the same host, with default ports (80 → 443),
/// treats credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HttpsUpgrade {
    /// Keep credentials: they were already sent to this host. requests and
    /// httpx do the same.
    #[default]
    KeepCredentials,
    /// Treat the upgrade as any other origin change and strip credentials.
    StripCredentials,
}

/// What happens when a hop must replay a body that cannot be replayed: a
/// stream larger than [`Policy::max_replay_body`], or a stream that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum UnreplayableBody {
    /// Fail with [`ErrorKind::BodyNotReplayable`](crate::ErrorKind::BodyNotReplayable),
    /// carrying the 3xx status, its Location and the history.
    #[default]
    Error,
    /// Return the 3xx response as the final response, as reqwest and Go do.
    ReturnRedirect,
}

/// Redirect statuses whose rule can be set; every other 3xx is never followed.
const RULE_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// Which redirects to follow, how, and how far.
///
/// Start from a preset and adjust it with the builder methods:
///
/// ```
/// use redirect_policy::{MethodRule, Policy};
/// use http::StatusCode;
///
/// // The Fetch standard, but keep POST on 301 like curl's --post301.
/// let policy = Policy::standard()
///     .rule(StatusCode::MOVED_PERMANENTLY, MethodRule::Preserve)
///     .max_redirects(5)
///     .max_replay_body(1024 * 1024);
/// assert_eq!(policy.max_redirects_limit(), 5);
/// ```
///
/// | status | method | `standard` (default) | `strict` | `legacy` |
/// |---|---|---|---|---|
/// | 301, 302 | GET, HEAD | = | = | = |
/// | 301, 302 | POST | GET∅ | = | GET∅ |
/// | 301, 302 | other | = | = | GET∅ |
/// | 303 | GET, HEAD | = | = | = |
/// | 303 | other | GET∅ | GET∅ | GET∅ |
/// | 307, 308 | any | = | = | = |
/// | other 3xx | any | not followed | not followed | not followed |
#[derive(Clone)]
pub struct Policy {
    /// Shared: a policy is cloned for every request (and moved with it), and
    /// a clone is one reference count; the builders copy on write.
    settings: Arc<Settings>,
}

/// What a [`Policy`] holds.
#[derive(Clone)]
struct Settings {
    /// Rules for 301, 302, 303, 307, 308, in that order.
    rules: [MethodRule; 5],
    max_redirects: usize,
    max_replay_body: usize,
    downgrade: Downgrade,
    https_upgrade: HttpsUpgrade,
    unreplayable: UnreplayableBody,
    sensitive: Vec<HeaderName>,
    trusted: Vec<Origin>,
    hook: Option<Arc<dyn RedirectHook>>,
    permanent: Option<PermanentRedirects>,
    spill_after: Option<usize>,
    /// Where spill files go; `None`: `std::env::temp_dir()`.
    #[cfg(feature = "spill")]
    spill_dir: Option<Arc<std::path::Path>>,
    guard: NetworkGuard,
    allowed: Vec<Network>,
    /// Query parameters whose values spans never show, besides the
    /// conventions' list.
    redacted_query: Vec<Box<str>>,
    /// `Expect: 100-continue` for bodies of at least this many bytes (and
    /// streams of unknown length), waiting this long for the 100; `None`:
    /// never.
    expect: Option<(u64, Duration)>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("rules", &self.settings.rules)
            .field("max_redirects", &self.settings.max_redirects)
            .field("max_replay_body", &self.settings.max_replay_body)
            .field("downgrade", &self.settings.downgrade)
            .field("https_upgrade", &self.settings.https_upgrade)
            .field("unreplayable", &self.settings.unreplayable)
            .field("sensitive", &self.settings.sensitive)
            .field("trusted", &self.settings.trusted)
            .field("hook", &self.settings.hook.as_ref().map(|_| HookName))
            .field("permanent", &self.settings.permanent)
            .field("spill_after", &self.settings.spill_after)
            .field("spill_dir", &self.spill_dir_field())
            .field("network_guard", &self.settings.guard)
            .field("redacted_query_parameters", &self.settings.redacted_query)
            .field("expect_continue", &self.settings.expect)
            .field(
                "allowed_networks",
                &self
                    .settings
                    .allowed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Policy {
    /// [`Policy::standard`].
    fn default() -> Self {
        Self::standard()
    }
}

impl Policy {
    fn with_rules(rules: [MethodRule; 5]) -> Self {
        let settings = Settings {
            rules,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_replay_body: DEFAULT_MAX_REPLAY_BODY,
            downgrade: Downgrade::default(),
            https_upgrade: HttpsUpgrade::default(),
            unreplayable: UnreplayableBody::default(),
            sensitive: Vec::new(),
            trusted: Vec::new(),
            hook: None,
            permanent: None,
            spill_after: None,
            #[cfg(feature = "spill")]
            spill_dir: None,
            guard: NetworkGuard::default(),
            allowed: Vec::new(),
            redacted_query: Vec::new(),
            expect: Some((DEFAULT_EXPECT_MIN_BODY, DEFAULT_EXPECT_WAIT)),
        };
        Self {
            settings: Arc::new(settings),
        }
    }

    /// The settings, to change (copied first if another policy shares them).
    fn set(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    /// The Fetch standard, and the default: 301 and 302 turn `POST` into
    /// `GET∅`, 303 turns everything but `GET`/`HEAD` into `GET∅`, and 307 and
    /// 308 keep the method and replay the body.
    #[must_use]
    pub fn standard() -> Self {
        use MethodRule::{PostToGet, Preserve, ToGet};
        Self::with_rules([PostToGet, PostToGet, ToGet, Preserve, Preserve])
    }

    /// RFC 9110 to the letter: only 303 changes the method.
    #[must_use]
    pub fn strict() -> Self {
        use MethodRule::{Preserve, ToGet};
        Self::with_rules([Preserve, Preserve, ToGet, Preserve, Preserve])
    }

    /// Go's net/http and OkHttp: 301, 302 and 303 turn everything but
    /// `GET`/`HEAD` into `GET∅`.
    #[must_use]
    pub fn legacy() -> Self {
        use MethodRule::{Preserve, ToGet};
        Self::with_rules([ToGet, ToGet, ToGet, Preserve, Preserve])
    }

    /// Follow nothing: every 3xx is returned as it is, like
    /// `reqwest::redirect::Policy::none()`.
    #[must_use]
    pub fn none() -> Self {
        Self::with_rules([MethodRule::DoNotFollow; 5])
    }

    /// Set the rule for one redirect status, overriding the preset.
    ///
    /// Only 301, 302, 303, 307 and 308 have rules; for any other status this
    /// call changes nothing, and that status is never followed.
    #[must_use]
    pub fn rule(mut self, status: StatusCode, rule: MethodRule) -> Self {
        if let Some(i) = rule_index(status) {
            self.set().rules[i] = rule;
        }
        self
    }

    /// The maximum number of redirects one chain follows (default 10).
    /// One more gives [`ErrorKind::TooManyRedirects`](crate::ErrorKind::TooManyRedirects).
    #[must_use]
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.set().max_redirects = max;
        self
    }

    /// The maximum number of bytes of a *streamed* body kept for replay
    /// (default 8 MiB). `0` turns buffering off. Bodies already in memory are
    /// always replayable and are not counted.
    #[must_use]
    pub fn max_replay_body(mut self, bytes: usize) -> Self {
        self.set().max_replay_body = bytes;
        self
    }

    /// What to do on https → http (default: [`Downgrade::Refuse`]).
    #[must_use]
    pub fn https_downgrade(mut self, downgrade: Downgrade) -> Self {
        self.set().downgrade = downgrade;
        self
    }

    /// How an http → https hop on the same host treats credentials (default:
    /// [`HttpsUpgrade::KeepCredentials`]).
    #[must_use]
    pub fn https_upgrade(mut self, upgrade: HttpsUpgrade) -> Self {
        self.set().https_upgrade = upgrade;
        self
    }

    /// What to do when a hop needs a body that cannot be replayed (default:
    /// [`UnreplayableBody::Error`]).
    #[must_use]
    pub fn unreplayable_body(mut self, on: UnreplayableBody) -> Self {
        self.set().unreplayable = on;
        self
    }

    /// Declare one more header sensitive: it is stripped on an origin change,
    /// like `Authorization`. For example `X-Api-Key`.
    #[must_use]
    pub fn sensitive_header(mut self, name: HeaderName) -> Self {
        if !self.settings.sensitive.contains(&name) {
            self.set().sensitive.push(name);
        }
        self
    }

    /// Which addresses the hops of a chain may reach (server-side request
    /// forgery through redirects): [`NetworkGuard::NoEscalation`] by default,
    /// in every preset. See the crate docs, "Server-side request forgery".
    ///
    /// ```
    /// use redirect_policy::{NetworkGuard, Policy};
    ///
    /// // A webhook sender: every hop, the first one too, must be public.
    /// let policy = Policy::standard().network_guard(NetworkGuard::PublicOnly);
    /// assert_eq!(policy.guard(), NetworkGuard::PublicOnly);
    /// ```
    #[must_use]
    pub fn network_guard(mut self, guard: NetworkGuard) -> Self {
        self.set().guard = guard;
        self
    }

    /// Exempt the prefix `addr/prefix_len` from the network guard, under
    /// both [`NetworkGuard::NoEscalation`] and [`NetworkGuard::PublicOnly`]:
    /// for example an internal API range that public servers may redirect
    /// to, or the address of a proxy. A `prefix_len` past the address's
    /// width (32 or 128) counts as the whole address.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr};
    /// use redirect_policy::Policy;
    ///
    /// let policy = Policy::standard().allow_network(IpAddr::V4(Ipv4Addr::new(10, 20, 0, 0)), 16);
    /// assert_eq!(policy.allowed_networks().len(), 1);
    /// ```
    #[must_use]
    pub fn allow_network(mut self, addr: std::net::IpAddr, prefix_len: u8) -> Self {
        let network = Network::new(addr, prefix_len);
        if !self.settings.allowed.contains(&network) {
            self.set().allowed.push(network);
        }
        self
    }

    /// The network guard set with [`Policy::network_guard`].
    #[must_use]
    pub fn guard(&self) -> NetworkGuard {
        self.settings.guard
    }

    /// The prefixes exempted with [`Policy::allow_network`], as
    /// `(address, prefix length)`.
    #[must_use]
    pub fn allowed_networks(&self) -> Vec<(std::net::IpAddr, u8)> {
        self.settings.allowed.iter().map(|n| n.parts()).collect()
    }

    /// Send a body of at least `min_body` bytes, and a stream of unknown
    /// length, with `Expect: 100-continue` (RFC 9110 §10.1.1), where the
    /// transport can hold a body back: the ureq adapter and the tower layer
    /// over HTTP/1.1. The body waits for
    /// the server's `100 Continue`. A server that redirects answers the 3xx
    /// first, and nothing is uploaded to it: the next hop sends the whole
    /// body from its source, past [`Policy::max_replay_body`] too. A final
    /// answer first (a 401, a 413) is returned with nothing uploaded. A
    /// server that never answers 100 gets the body after `wait`, as curl
    /// does; a `417 Expectation Failed` sends the request once more without
    /// the expectation. A hop that follows a redirect asks again by the same
    /// rule.
    ///
    /// The default is curl's: bodies of 1 MiB or more and streams of unknown
    /// length, with a 1 s wait. A server that supports the mechanism (hyper,
    /// nginx, Apache, S3) answers 100 at once, so it costs one round trip
    /// before the body (BENCHMARKS.md §9 for ureq, §10 for the tower layer); below 1 MiB that round trip
    /// weighs more than what a redirected upload would send twice.
    ///
    /// HTTP/2 and the reqwest paths do not send it (see the crate docs,
    /// "Uploads and `Expect: 100-continue`"): there an early 3xx is answered
    /// by the replay of the sent prefix and the rest.
    ///
    /// ```
    /// use std::time::Duration;
    /// use redirect_policy::Policy;
    ///
    /// let policy = Policy::standard().expect_continue(64 * 1024, Duration::from_millis(500));
    /// assert_eq!(
    ///     policy.expect_continue_threshold(),
    ///     Some((64 * 1024, Duration::from_millis(500)))
    /// );
    /// ```
    #[must_use]
    pub fn expect_continue(mut self, min_body: u64, wait: Duration) -> Self {
        self.set().expect = Some((min_body, wait));
        self
    }

    /// Never send `Expect: 100-continue`.
    #[must_use]
    pub fn no_expect_continue(mut self) -> Self {
        self.set().expect = None;
        self
    }

    /// The smallest body sent with `Expect: 100-continue` and how long the
    /// 100 is waited for ([`Policy::expect_continue`]); `None` when it is
    /// never sent.
    #[must_use]
    pub fn expect_continue_threshold(&self) -> Option<(u64, Duration)> {
        self.settings.expect
    }

    /// How long to wait for a 100 before sending a body of `len` bytes
    /// (`None`: unknown), or `None` if it goes without the expectation. An
    /// empty body never has one.
    #[cfg_attr(
        not(any(feature = "reqwest", feature = "tower", feature = "ureq")),
        allow(dead_code)
    )] // for the I/O loop
    pub(crate) fn expect_wait(&self, len: Option<u64>) -> Option<Duration> {
        let (min_body, wait) = self.settings.expect?;
        match len {
            Some(0) => None,
            Some(len) if len < min_body => None,
            _ => Some(wait),
        }
    }

    /// Show the value of the query parameter `name` (any case) as
    /// `REDACTED` in the `url.full` of every hop's span, as is done for the
    /// OpenTelemetry conventions' list (`X-Amz-Signature`,
    /// `X-Amz-Credential`, `X-Amz-Security-Token`, `AWSAccessKeyId`,
    /// `Signature`, `sig`, `X-Goog-Signature`). Other query values are
    /// shown, as the conventions say.
    ///
    /// ```
    /// use redirect_policy::Policy;
    ///
    /// let policy = Policy::standard().redact_query_parameter("api_key");
    /// assert_eq!(&*policy.redacted_query_parameters()[0], "api_key");
    /// ```
    #[must_use]
    pub fn redact_query_parameter(mut self, name: impl Into<String>) -> Self {
        let name: Box<str> = name.into().into_boxed_str();
        if !self
            .settings
            .redacted_query
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&name))
        {
            self.set().redacted_query.push(name);
        }
        self
    }

    /// The query parameters added with [`Policy::redact_query_parameter`].
    #[must_use]
    pub fn redacted_query_parameters(&self) -> &[Box<str>] {
        &self.settings.redacted_query
    }

    /// Whether `ip` is in a prefix exempted with [`Policy::allow_network`].
    pub(crate) fn is_allowed(&self, ip: std::net::IpAddr) -> bool {
        self.settings.allowed.iter().any(|n| n.contains(ip))
    }

    /// Trust an origin: credentials may follow a redirect to it. This is
    /// curl's `--location-trusted`, scoped to named origins. Only the URL's
    /// scheme, host and port count.
    #[must_use]
    pub fn trust_origin(mut self, url: &Url) -> Self {
        let origin = Origin::of(url);
        if !self.settings.trusted.contains(&origin) {
            self.set().trusted.push(origin);
        }
        self
    }

    /// Run `hook` on every redirect before it is followed: it sees the 3xx
    /// head and the proposed next request, and may edit it, stop, or fail.
    /// See [`RedirectHook`].
    #[must_use]
    pub fn hook(mut self, hook: impl RedirectHook + 'static) -> Self {
        self.set().hook = Some(Arc::new(hook));
        self
    }

    /// Remember 301 and 308 targets in `memory`, so that later requests to
    /// the same URL go straight to the target (opt-in). Clones of the memory
    /// are shared, so one memory can serve many clients and policies.
    ///
    /// With a [`hook`](Policy::hook) set, remembered redirects are not
    /// applied (they are still recorded): the hook must see every 3xx and
    /// its headers, which a remembered redirect does not have.
    #[must_use]
    pub fn permanent_redirects(mut self, memory: PermanentRedirects) -> Self {
        self.set().permanent = Some(memory);
        self
    }

    /// Keep at most `threshold` bytes of a streamed body in memory; past
    /// that, the replay buffer spills to a temporary file (removed when the
    /// chain ends, fails or is cancelled). [`Policy::max_replay_body`] still
    /// bounds the total, so raise it too for bodies larger than memory.
    #[cfg(feature = "spill")]
    #[cfg_attr(docsrs, doc(cfg(feature = "spill")))]
    #[must_use]
    pub fn spill_to_disk(mut self, threshold: usize) -> Self {
        self.set().spill_after = Some(threshold);
        self
    }

    /// The directory spill files go to, instead of `std::env::temp_dir()`.
    /// The file is private there as anywhere: created unlinked (or under an
    /// unpredictable name unlinked at once) with mode 0600, so a directory
    /// other users can write to is safe too; one of your own avoids sharing
    /// the temp directory's disk with other programs.
    #[cfg(feature = "spill")]
    #[cfg_attr(docsrs, doc(cfg(feature = "spill")))]
    #[must_use]
    pub fn spill_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.set().spill_dir = Some(Arc::from(dir.into().into_boxed_path()));
        self
    }

    /// The directory set by [`Policy::spill_dir`], if any.
    #[cfg(feature = "spill")]
    #[cfg_attr(docsrs, doc(cfg(feature = "spill")))]
    #[must_use]
    pub fn spill_directory(&self) -> Option<&std::path::Path> {
        self.settings.spill_dir.as_deref()
    }

    #[cfg(feature = "spill")]
    pub(crate) fn spill_dir_arc(&self) -> Option<Arc<std::path::Path>> {
        self.settings.spill_dir.clone()
    }

    #[cfg(feature = "spill")]
    fn spill_dir_field(&self) -> Option<&std::path::Path> {
        self.settings.spill_dir.as_deref()
    }

    #[cfg(not(feature = "spill"))]
    #[allow(clippy::unused_self)] // the same call with or without the feature
    fn spill_dir_field(&self) -> Option<&std::path::Path> {
        None
    }

    /// The in-memory threshold set by [`Policy::spill_to_disk`].
    #[cfg(feature = "spill")]
    #[cfg_attr(docsrs, doc(cfg(feature = "spill")))]
    #[must_use]
    pub fn spill_threshold(&self) -> Option<usize> {
        self.settings.spill_after
    }

    /// The rule for `status`; [`MethodRule::DoNotFollow`] for statuses that
    /// have none.
    #[must_use]
    pub fn rule_for(&self, status: StatusCode) -> MethodRule {
        rule_index(status).map_or(MethodRule::DoNotFollow, |i| self.settings.rules[i])
    }

    /// The redirect limit set by [`Policy::max_redirects`].
    #[must_use]
    pub fn max_redirects_limit(&self) -> usize {
        self.settings.max_redirects
    }

    /// The replay cap set by [`Policy::max_replay_body`].
    #[must_use]
    pub fn max_replay_body_limit(&self) -> usize {
        self.settings.max_replay_body
    }

    /// The https → http setting.
    #[must_use]
    pub fn downgrade(&self) -> Downgrade {
        self.settings.downgrade
    }

    /// The http → https setting.
    #[must_use]
    pub fn upgrade(&self) -> HttpsUpgrade {
        self.settings.https_upgrade
    }

    /// The unreplayable-body setting.
    #[must_use]
    pub fn on_unreplayable_body(&self) -> UnreplayableBody {
        self.settings.unreplayable
    }

    /// Headers declared sensitive with [`Policy::sensitive_header`].
    #[must_use]
    pub fn sensitive_headers(&self) -> &[HeaderName] {
        &self.settings.sensitive
    }

    /// The hook set with [`Policy::hook`].
    #[must_use]
    pub fn redirect_hook(&self) -> Option<&dyn RedirectHook> {
        self.settings.hook.as_deref()
    }

    /// The memory set with [`Policy::permanent_redirects`].
    #[must_use]
    pub fn permanent_memory(&self) -> Option<&PermanentRedirects> {
        self.settings.permanent.as_ref()
    }

    pub(crate) fn is_trusted(&self, url: &Url) -> bool {
        !self.settings.trusted.is_empty() && self.settings.trusted.iter().any(|o| o.matches(url))
    }
}

fn rule_index(status: StatusCode) -> Option<usize> {
    RULE_STATUSES.iter().position(|&s| s == status.as_u16())
}

/// (scheme, host, port) with the default port made explicit.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: Option<String>,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &Url) -> Self {
        Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str().map(str::to_owned),
            port: url.port_or_known_default(),
        }
    }

    fn matches(&self, url: &Url) -> bool {
        self.scheme == url.scheme()
            && self.host.as_deref() == url.host_str()
            && self.port == url.port_or_known_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_spec_table() {
        use MethodRule::{DoNotFollow, PostToGet, Preserve, ToGet};
        let rows: [(u16, [MethodRule; 4]); 8] = [
            (301, [PostToGet, Preserve, ToGet, DoNotFollow]),
            (302, [PostToGet, Preserve, ToGet, DoNotFollow]),
            (303, [ToGet, ToGet, ToGet, DoNotFollow]),
            (307, [Preserve, Preserve, Preserve, DoNotFollow]),
            (308, [Preserve, Preserve, Preserve, DoNotFollow]),
            (300, [DoNotFollow; 4]),
            (304, [DoNotFollow; 4]),
            (305, [DoNotFollow; 4]),
        ];
        let presets = [
            Policy::standard(),
            Policy::strict(),
            Policy::legacy(),
            Policy::none(),
        ];
        for (status, expected) in rows {
            let status = StatusCode::from_u16(status).unwrap();
            for (policy, want) in presets.iter().zip(expected) {
                assert_eq!(policy.rule_for(status), want, "{status} {policy:?}");
            }
        }
    }

    #[test]
    fn rule_override_touches_one_status_only() {
        let p = Policy::standard().rule(StatusCode::FOUND, MethodRule::Preserve);
        assert_eq!(p.rule_for(StatusCode::FOUND), MethodRule::Preserve);
        assert_eq!(
            p.rule_for(StatusCode::MOVED_PERMANENTLY),
            MethodRule::PostToGet
        );
        let p = p.rule(StatusCode::MULTIPLE_CHOICES, MethodRule::Preserve);
        assert_eq!(
            p.rule_for(StatusCode::MULTIPLE_CHOICES),
            MethodRule::DoNotFollow
        );
    }

    #[test]
    fn trusted_origins_use_default_ports() {
        let p = Policy::standard().trust_origin(&Url::parse("https://api.example/x").unwrap());
        assert!(p.is_trusted(&Url::parse("https://api.example:443/other").unwrap()));
        assert!(!p.is_trusted(&Url::parse("http://api.example/").unwrap()));
        assert!(!p.is_trusted(&Url::parse("https://api.example:8443/").unwrap()));
    }
}
