//! Exact, safe HTTP redirect following for reqwest, with request bodies that
//! survive a 307.
//!
//! When a server answers 3xx, a client must decide what the next request is.
//! This crate decides it by the standards, and then sends it:
//!
//! - it **replays the request body** on 307/308, byte for byte, including
//!   **streaming bodies**, which reqwest cannot replay (it hands back the 307
//!   as if it were the answer);
//! - it downgrades the legacy 301/302/303 to `GET` as the Fetch standard
//!   says, drops the body and its headers, and never brings them back;
//! - it is **safe by default**: credentials never follow a redirect to another
//!   origin, not even on a later hop, and https → http is refused;
//! - it **records every hop** in a [`History`].
//!
//! It is *not* an HTTP client of its own: each hop is re-issued through
//! reqwest or through a tower service. Its core, [`Chain`], is a sans-IO
//! state machine (only `http`, `url` and `bytes`; no async, no reqwest), and
//! one I/O loop drives it for every transport, so the rules, the body
//! guarantees and the errors are the same whichever you pick.
//!
//! # Which adapter
//!
//! | you have | use | feature |
//! |---|---|---|
//! | reqwest code | `Client` in place of `reqwest::Client` | `reqwest` (default) |
//! | a reqwest-middleware stack | `FollowRedirectsMiddleware` | `middleware` |
//! | code that does not run async | `blocking::Client` | `blocking` |
//! | ureq 3 code, or no tokio at all | [`ureq::Agent`] in place of `ureq::Agent` | `ureq` (no tokio, hyper or reqwest) |
//! | an SDK on hyper-util / tower | `FollowRedirectLayer`, `FollowRedirect` | `tower` (no reqwest) |
//! | another transport | drive [`Chain`] yourself | none (`default-features = false`) |
//!
//! For large uploads to endpoints that redirect, the ureq adapter and the
//! tower layer (over HTTP/1.1) send `Expect: 100-continue`, so that a server
//! that redirects receives no body byte and a stream of any size follows;
//! the reqwest paths cannot (see "Uploads and `Expect: 100-continue`").
//!
//! # Quick example
//!
//! ```no_run
//! use redirect_policy::{Client, History, Policy};
//!
//! # async fn run() -> Result<(), redirect_policy::Error> {
//! let client = Client::new(Policy::standard());
//! let response = client
//!     .put("http://localhost:8080/v1/objects/42")
//!     .bearer_auth("secret")
//!     .body(vec![1, 2, 3])
//!     .send()
//!     .await?; // a 307 to /v2/... sends PUT with the same 3 bytes again
//! for hop in response.extensions().get::<History>().into_iter().flatten() {
//!     println!("{} {} -> {} ({:?})", hop.status(), hop.url(), hop.next_url(), hop.body());
//! }
//! # Ok(()) }
//! ```
//!
//! # Redirect semantics
//!
//! `=` keeps the method and replays the body byte for byte (RFC 9110
//! §15.4.8/9). `GET∅` turns the request into a `GET` with no body, and drops
//! the body headers. The presets are values of one per-status rule table
//! ([`Policy::rule`] overrides one status).
//!
//! | status | request method | [`standard`](Policy::standard) (default; Fetch) | [`strict`](Policy::strict) (RFC 9110) | [`legacy`](Policy::legacy) (Go, OkHttp) |
//! |---|---|---|---|---|
//! | 301, 302 | GET, HEAD, QUERY | = | = | = |
//! | 301, 302 | POST | GET∅ | = | GET∅ |
//! | 301, 302 | any other (PUT, DELETE, PATCH, OPTIONS, custom) | = | = | GET∅ |
//! | 303 | GET, HEAD | = | = | = |
//! | 303 | any other | GET∅ | GET∅ | GET∅ |
//! | 307, 308 | any | = | = | = |
//! | 300, 304, 305, 306, other 3xx | any | not followed | not followed | not followed |
//!
//! - Methods are compared byte-exact: `post` is not `POST`.
//! - **QUERY** (RFC 10008) is safe and its body *is* the question: on 301/302 it keeps its
//!   method and body in every preset, `legacy` included (and whatever [`MethodRule`] a 301/302
//!   is given); a 303 turns it into `GET∅` like any method; 307/308 replay it.
//! - Once a hop drops the body, no later hop sends it again, not even a 307.
//! - **Body headers** removed on a switch to `GET∅`: Content-Type,
//!   Content-Length, Content-Encoding, Content-Language, Content-Location,
//!   Transfer-Encoding, Digest, Content-Digest, Repr-Digest, Expect.
//! - **Bodies in memory** (`Bytes`, `String`, `Vec<u8>`, JSON, form) are
//!   replayed by reference count: no hop copies their bytes.
//! - **Streaming bodies** are sent at once, and each chunk is kept for replay
//!   as it goes out, up to [`Policy::max_replay_body`] (default 8 MiB). If the
//!   server answers before reading the whole body, the next hop sends the
//!   kept prefix and then the part of the stream never sent.
//! - A body that **cannot be replayed** (a stream over the cap, or one that
//!   failed) gives [`ErrorKind::BodyNotReplayable`], carrying the 3xx status,
//!   its Location and the history; [`UnreplayableBody::ReturnRedirect`]
//!   returns the 3xx instead. An empty or truncated body is never sent in its
//!   place.
//! - **Location** is resolved against the URL that answered (RFC 3986). A
//!   missing or empty Location returns the 3xx as the final response. Several
//!   Location fields with different values give [`ErrorKind::InvalidLocation`].
//!   Bytes that are not ASCII are percent-encoded (`\xff` → `%FF`). A
//!   Location with no fragment inherits the current one, and the final
//!   response's `url()` reports it.
//! - **Limits**: at most 10 redirects by default ([`ErrorKind::TooManyRedirects`]).
//!   A proven loop (the same method and URL got the same status and Location
//!   again, with no cookie set in between) fails at once with
//!   [`ErrorKind::RedirectLoop`]. A timeout set on the request covers the whole
//!   chain.
//!
//! # Security
//!
//! | rule | default | change it with |
//! |---|---|---|
//! | On a hop to another origin (scheme, host, port), Authorization, Proxy-Authorization, Cookie, Cookie2 and WWW-Authenticate are removed | on | [`Policy::sensitive_header`] adds more (e.g. `X-Api-Key`; reqwest issue 3091); [`Policy::trust_origin`] lets credentials follow to a named origin (curl's `--location-trusted`, scoped) |
//! | Stripping is sticky: once removed, a header stays removed, even back on the first origin (Go issue 70530; reqwest 0.13.5 sends A's credentials to B on an A → B → B chain) | always | — |
//! | http → https on the same host with default ports keeps credentials | on | [`Policy::https_upgrade`]`(HttpsUpgrade::StripCredentials)` |
//! | https → http is refused with [`ErrorKind::InsecureRedirect`] (a 307 would replay the body in clear text) | refused | [`Policy::https_downgrade`]`(Downgrade::Allow)`; credentials are still stripped |
//! | Only http and https are followed; any other scheme is [`ErrorKind::SchemeNotAllowed`] and nothing is sent | always | — |
//! | userinfo in a Location (`http://user:pass@host/`) is removed (curl CVE-2018-1000007 is the class of leak) | always | — |
//! | No Referer is added (reqwest sends the full previous URL; reqwest issue 2522) | always | set one yourself |
//! | A caller-set `Host` header is removed when the host or port changes | always | — |
//! | A redirect never leads to an address space more private than the chain started in ([`ErrorKind::PrivateNetwork`]; see "Server-side request forgery") | on | [`Policy::network_guard`], [`Policy::allow_network`] |
//!
//! Headers that reqwest itself adds to every request (`ClientBuilder::default_headers`)
//! are out of this crate's reach: put credentials on the request.
//!
//! # Server-side request forgery
//!
//! A redirect can point the client anywhere: at `http://169.254.169.254/`
//! (cloud metadata), at `http://127.0.0.1:2375/`, or at a name that resolves
//! to a private address. The network guard is on by default, in every preset
//! and on every adapter. Each address is in an [`AddressSpace`]
//! (`Public < Private < Local`; the Private Network Access model, IPv6 forms
//! that embed an IPv4 address included), and [`Policy::network_guard`] says
//! what a chain may reach:
//!
//! | [`NetworkGuard`] | refused |
//! |---|---|
//! | [`NoEscalation`](NetworkGuard::NoEscalation) (default) | a redirect to a space more private than the chain's first hop reached (public → 127.0.0.1 or 169.254.169.254); internal → internal still works |
//! | [`PublicOnly`](NetworkGuard::PublicOnly) | any hop, the first included, that is not public and globally routable (for URLs someone else gave you) |
//! | [`Off`](NetworkGuard::Off) | nothing |
//!
//! [`Policy::allow_network`] exempts a prefix from both rules. A refusal is
//! [`ErrorKind::PrivateNetwork`], with the refused URL in [`Error::url`] and
//! the history so far; its message names the spaces, the address and the way
//! out. A URL rewritten by the hook, and a remembered permanent redirect, are
//! checked like any other.
//!
//! | the hop's host | guard | guarantee |
//! |---|---|---|
//! | an IP literal (any form the `url` crate normalises: decimal, octal, hex, short, bracketed or mapped IPv6), `localhost`, a metadata name | any | **refused before sending**, in the engine, the same on every transport |
//! | a DNS name | `PublicOnly` with a [`PublicResolver`] | **refused before sending**: the resolved addresses are filtered before connecting (no DNS-rebinding window) |
//! | a DNS name | `NoEscalation` | **response withheld**: the address the response came from is checked (reqwest's `remote_addr`, hyper-util's `HttpInfo`, on ureq the address [`ureq::GuardResolver`] saw), and a refused response is dropped unread |
//! | a DNS name, on a ureq agent built without [`ureq::GuardResolver`] | any | **response withheld**, by a second lookup of the name (a DNS server that changes its answers can slip past it) |
//!
//! `Client::new` and `blocking::Client::new` install a [`PublicResolver`]
//! under `PublicOnly`, and `ureq::Agent::new_with_defaults` a
//! [`ureq::GuardResolver`] (which does the same on ureq); for `Client::from_builder`, `Client::from_reqwest`,
//! the middleware's client and a hyper-util `HttpConnector`, plug it in (see
//! its docs). The default path adds no DNS lookup. Through an HTTP proxy the
//! peer is the proxy: names are resolved there, only the literal rules apply,
//! and an address on another port than the URL's is taken for the proxy's,
//! not the target's ([`Chain::on_peer`]).
//!
//! # Uploads and `Expect: 100-continue`
//!
//! An upload to an endpoint that answers 307 would send its bytes twice:
//! to the server that redirects, until its 307 arrives, and then to the
//! target. With `Expect: 100-continue` ([`Policy::expect_continue`]; on by
//! default for bodies of 1 MiB or more and streams of unknown length, 1 s
//! wait, as curl does) the body waits for the server's 100: a server that
//! redirects answers before a single body byte is sent, and the next hop
//! reads the body from its source, with no replay buffer and no cap.
//!
//! | transport | `Expect: 100-continue` | an early 3xx |
//! |---|---|---|
//! | [`ureq::Agent`] (HTTP/1.1) | sent by the rule; ureq holds the body back, and sends none after a final answer | the replay of the whole body (ureq writes it all before it reads) |
//! | reqwest ([`Client`], the middleware, `blocking`) | never: reqwest 0.13 builds a new `hyper::Request` for each send, without the caller's extensions, so no code above it can see a 100 | the replay of the sent prefix, then the rest of the stream |
//! | the tower layer over HTTP/1.1 ([`FollowRedirect`] on hyper-util's client) | sent by the rule; the body ([`ReplayBody`]) gives hyper nothing until hyper reports the 100 (`hyper::ext::on_informational`) or the wait passes | the replay of the sent prefix, then the rest of the stream |
//! | HTTP/2 | never: a stream is cancelled with `RST_STREAM` at no cost to the connection, and a server's early answer arrives while the body is still flowing | the same replay |
//!
//! A `417 Expectation Failed` sends the request once more without the
//! expectation. [`Policy::no_expect_continue`] turns it off.
//!
//! On the tower layer, a hop answered before its 100 never sends its body,
//! and its connection is closed rather than left half-written: at once when
//! the answer is a 3xx that is followed, a 417, or a response without a
//! body; when it is a final response with a body (a 401 with a message),
//! once the server closes it or, at the latest, thirty waits later (30 s by
//! default), so that you can read that response first (closing sooner would
//! cut it short). A hyper-util client set to HTTP/2 (`http2_only`, or ALPN)
//! carries no version on the request, so the layer cannot tell before the
//! send: the first qualifying uploads through a new service carry the
//! header (legal, and ignored, in HTTP/2), but their bodies go at once
//! (hyper's HTTP/2 client drops the 1xx callback as it sends the head,
//! which tells the layer that no 100 will be reported), and the service,
//! with its clones, sends no expectation from its first HTTP/2 answer on.
//! For a client you know speaks HTTP/2, set [`Policy::no_expect_continue`],
//! or the request's version to HTTP/2. The layer hears the 100 through
//! hyper's `on_informational` callback on the request: on a request it
//! holds back, a callback of yours (for a `103 Early Hints`, say) is
//! replaced (hyper keeps one, and gives no way to call the one before).
//!
//! A server that answers 307 to the head and resets the connection at once
//! (an RST, not a close) is followed on the tower layer; ureq 3.5 loses that
//! 307 (it reads once more while it awaits the 100, and the reset fails the
//! read), so on the ureq adapter the upload fails with
//! [`ErrorKind::Request`]: nothing was uploaded, nothing short sent.
//!
//! # Tracing: a span per hop
//!
//! With feature `tracing` (a default), every request a chain sends is a
//! span of its own, `redirect_policy.hop`, a child of the chain's span
//! `redirect_policy.follow`, on every adapter. The fields follow
//! OpenTelemetry's stable HTTP client conventions, so that
//! `tracing-opentelemetry` exports each hop as a `CLIENT` span with no code
//! of yours (`cargo run --example otel` prints them as a tree):
//!
//! | field | value |
//! |---|---|
//! | `otel.kind`, `otel.name` | `client`; the method |
//! | `http.request.method`, `server.address`, `server.port` | the hop's request |
//! | `url.full` | the hop's URL without userinfo or fragment; the values of `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`, `AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature` and of [`Policy::redact_query_parameter`]'s names are `REDACTED` |
//! | `http.request.resend_count` | 1, 2, … on every request after the first (also a re-send after an HTTP/2 refusal); absent on the first |
//! | `http.response.status_code`, `network.protocol.version`, `network.peer.address`, `network.peer.port` | the answer |
//! | `error.type`, `otel.status_code` | where the chain failed at this hop: the [`ErrorKind`] (`TooManyRedirects`, `Request`, …); for a final 4xx or 5xx, the status code |
//! | `redirect_policy.body_action`, `redirect_policy.stripped_headers`, `redirect_policy.remembered` | what the redirect before this request did to it (header names only, never values) |
//! | `redirect_policy.body_bytes_sent`, `redirect_policy.replayed_bytes`, `redirect_policy.elapsed_us` | what it cost, as in [`Hop`] |
//!
//! The chain's span keeps the caller's view: method, first URL (no query),
//! and at its end `http.response.status_code` and `redirect_policy.hops`.
//! Both spans are at `INFO`. Nobody listening costs nothing but a level
//! check: no span is built and `url.full` is never formatted (BENCHMARKS.md
//! §8 has the instruction counts).
//!
//! The same figures are in the [`History`] whether or not anybody traces:
//! [`Hop::elapsed`], [`Hop::body_bytes_sent`], [`Hop::replayed_bytes`],
//! [`Hop::remote_addr`] and [`History::total_elapsed`].
//!
//! **reqwest-tracing.** Register its `TracingMiddleware` *after*
//! [`FollowRedirectsMiddleware`]: it then runs once per hop, inside our hop
//! span, and gives one span per hop. Our [`ResendCount`] is in the
//! `Extensions` it is given, for a span backend that records
//! `http.request.resend_count` (`tests/spans.rs` has one):
//!
//! ```no_run
//! # #[cfg(feature = "middleware")]
//! # fn build(inner: reqwest::Client) -> reqwest_middleware::ClientWithMiddleware {
//! use redirect_policy::{FollowRedirectsMiddleware, Policy};
//! # struct TracingMiddleware;
//! # impl TracingMiddleware { fn default() -> Self { Self } }
//! # #[async_trait::async_trait]
//! # impl reqwest_middleware::Middleware for TracingMiddleware {
//! #     async fn handle(&self, req: reqwest::Request, ext: &mut http::Extensions,
//! #         next: reqwest_middleware::Next<'_>) -> reqwest_middleware::Result<reqwest::Response> {
//! #         next.run(req, ext).await
//! #     }
//! # }
//! reqwest_middleware::ClientBuilder::new(inner)
//!     .with(FollowRedirectsMiddleware::new(Policy::standard()))
//!     .with(TracingMiddleware::default()) // reqwest_tracing::TracingMiddleware
//!     .build()
//! # }
//! ```
//!
//! **What lies below is out of reach.** hyper-util 0.1 logs its
//! connection-pool key at `DEBUG` (and `TRACE`), and for a URL with
//! userinfo (`https://user:password@host/`) that key includes the password;
//! no field of ours ever does. Keep credentials out of URLs: send them in
//! headers (`basic_auth`, `bearer_auth`, an `Authorization` header), which
//! no span shows and which a redirect to another origin strips.
//!
//! # Features
//!
//! | feature | default | what it gives |
//! |---|---|---|
//! | `reqwest` | yes | the `Client` adapter; without it, only the sans-IO engine ([`Chain`]) |
//! | `rustls` | yes | reqwest's rustls TLS (implies `reqwest`) |
//! | `native-tls` | no | reqwest's native-tls (implies `reqwest`) |
//! | `tracing` | yes | a `redirect_policy.follow` span per chain and a `redirect_policy.hop` span per request sent, by OpenTelemetry's HTTP client conventions (see "Tracing"); a debug event per redirect |
//! | `middleware` | no | `FollowRedirectsMiddleware` for reqwest-middleware 0.5 |
//! | `blocking` | no | `blocking::Client`, for code that does not run async |
//! | `http2` | no | reqwest's HTTP/2 (replays, early 3xx and the rules are tested over h2 too); turns on `h2` |
//! | `h2` | no | a hop that an HTTP/2 server refused unprocessed is sent again once (see [Faults](#faults-what-is-sent-again)); a tower stack on h2c turns it on by hand |
//! | `tower` | no | `FollowRedirectLayer` and `FollowRedirect` for hyper-util and tower; `ReplayBody<B>` over any `http_body::Body` (no reqwest, not all of tower) |
//! | `spill` | no | `Policy::spill_to_disk`: a streamed body's replay buffer spills to a private temporary file (unnamed, mode 0600, in `Policy::spill_dir` or the temp directory) past a threshold, so bodies larger than memory can follow a 307 |
//! | `json`, `form`, `query`, `multipart` | no | `RequestBuilder::json`, `form`, `query`, `multipart` (reqwest's, forwarded; a multipart form is a stream, teed and replayed) |
//! | `cookies`, `gzip`, `brotli`, `zstd`, `deflate`, `stream`, `charset`, `hickory-dns`, `socks`, `system-proxy` | no | reqwest's features of those names, forwarded (with `cookies`, each hop gets the jar's cookies for its own URL; `hickory-dns` needs Rust 1.88, as its hickory-resolver 0.26 does) |
//!
//! Opt-in behaviour that needs no feature: the redirect hook
//! ([`Policy::hook`], for re-signing a request for its new host) and the
//! memory of permanent redirects ([`Policy::permanent_redirects`]).
//!
//! # Faults: what is sent again
//!
//! A hop is sent again only when the server provably did not process it,
//! and then once, from its first byte, out of the replay buffer (streams
//! too, while the buffer holds them):
//!
//! - HTTP/2 `RST_STREAM(REFUSED_STREAM)` (RFC 9113 §8.7): sent again once
//!   (feature `h2`), whatever the method. reqwest alone retries only bodies
//!   in memory.
//! - A `GOAWAY(NO_ERROR)` whose last-stream-id is below the hop's stream:
//!   an idempotent hop is sent again once; a `POST` or `PATCH` fails, since
//!   hyper reports the same error for some requests the server processed.
//!   (reqwest's default retry re-sends any request in memory on it;
//!   [`Client::new`] turns that retry off.)
//! - HTTP/1.1, a pooled connection found closed before the hop was
//!   written: hyper-util sends it on a fresh connection itself.
//! - Anything else (a close or reset once the hop was written, a `GOAWAY`
//!   with an error code, a stream past [`Policy::max_replay_body`]):
//!   [`ErrorKind::Request`] with the [`History`] so far. The server may have
//!   acted on the hop; retry idempotent requests yourself.
//!
//! # MSRV and versioning
//!
//! The MSRV is Rust 1.85, the same as reqwest 0.13 (feature `hickory-dns` alone needs 1.88,
//! as reqwest's hickory-resolver does). CI checks it without a second
//! toolchain, so what is checked is declarations, not a build with 1.85: no
//! normal or build dependency, in the committed lock or in a fresh
//! MSRV-aware resolution, declares a higher `rust-version` (one that
//! declares none counts by its edition alone), and clippy's
//! `incompatible_msrv` lint finds no newer std item in the crate's own code.
//! CI also builds the crate with the minimal versions of its direct
//! dependencies.
//! reqwest is a public
//! dependency (its `Request`, `Response` and `ClientBuilder` appear in this
//! API), so a move to a new reqwest minor version (0.14) is a breaking
//! release of this crate.
#![doc = ""]
#![doc = include_str!("../docs/from-reqwest.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

// .ci/run builds this with `--cfg redirect_policy_msrv_canary` and requires clippy to
// refuse it: `Vec::pop_if` is from Rust 1.86, newer than rust-version, so the lint that
// guards the MSRV claim for the crate's own code is shown to run and to fail.
#[cfg(redirect_policy_msrv_canary)]
#[allow(dead_code)] // compiled only for that check
fn msrv_canary(bytes: &mut Vec<u8>) -> Option<u8> {
    bytes.pop_if(|b| *b == 0)
}

// The architecture, one folder each: the rules (no async, no I/O), the bytes,
// the one I/O loop, and the transports that only translate.
mod engine;

#[cfg(any(feature = "reqwest", feature = "tower", feature = "ureq"))]
pub(crate) mod body;
#[cfg(any(feature = "reqwest", feature = "tower", feature = "ureq"))]
mod follow;
#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(any(feature = "reqwest", feature = "tower"))]
mod resolve;
#[cfg(feature = "tower")]
mod tower;
#[cfg(feature = "ureq")]
#[cfg_attr(docsrs, doc(cfg(feature = "ureq")))]
pub mod ureq;

pub use engine::chain::{BodyReplay, Chain, Step};
pub use engine::error::{BoxError, Error, ErrorKind};
pub use engine::history::{BodyAction, History, Hop, ResendCount};
pub use engine::hook::{HookAction, HookFuture, NextRequest, Redirect, RedirectHook};
pub use engine::network::{AddressSpace, NetworkGuard};
pub use engine::permanent::PermanentRedirects;
pub use engine::policy::{
    Downgrade, HttpsUpgrade, MethodRule, Policy, UnreplayableBody, DEFAULT_MAX_REDIRECTS,
    DEFAULT_MAX_REPLAY_BODY,
};

#[cfg(any(feature = "reqwest", feature = "tower", feature = "ureq"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "reqwest", feature = "tower", feature = "ureq")))
)]
pub use body::ReplayBody;

#[cfg(any(feature = "reqwest", feature = "tower"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "reqwest", feature = "tower"))))]
pub use resolve::{PublicResolver, SystemResolver};

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use crate::reqwest::client::{Client, RequestBuilder};

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub use crate::reqwest::blocking;

#[cfg(feature = "middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "middleware")))]
pub use crate::reqwest::middleware::FollowRedirectsMiddleware;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use crate::tower::{FollowRedirect, FollowRedirectFuture, FollowRedirectLayer};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod assertions {
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        send_sync::<crate::Policy>();
        send_sync::<crate::Chain>();
        send_sync::<crate::History>();
        send_sync::<crate::Error>();
        #[cfg(feature = "reqwest")]
        send_sync::<crate::Client>();
        #[cfg(any(feature = "reqwest", feature = "tower"))]
        send_sync::<crate::ReplayBody<http_body_util::Full<bytes::Bytes>>>();
        #[cfg(feature = "tower")]
        send_sync::<crate::FollowRedirectLayer>();
    }
}
