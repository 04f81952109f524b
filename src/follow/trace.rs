//! One hop as the loop watches it: when it was sent, what it cost, and (with
//! feature `tracing`) its span, by OpenTelemetry's HTTP client conventions:
//! one `CLIENT` span per request that goes over the wire, a child of the
//! chain's span.
//!
//! Nothing here is paid for by a chain nobody listens to beyond two reads of
//! the clock: a span that no subscriber wants is never built, and its fields
//! (`url.full` above all) are never formatted.

use std::time::Instant;

use crate::body::Replay;
use crate::engine::history::HopCost;
use crate::ErrorKind;

use super::{Answer, Lazy};

/// One request of the chain, from its send to its answer.
pub(crate) struct HopTrace {
    started: Instant,
    /// Boxed, and only when someone listens: the loop's state stays small
    /// (a span is 40 bytes).
    #[cfg(feature = "tracing")]
    span: Option<Box<tracing::Span>>,
}

impl HopTrace {
    /// The request `lazy` holds now, about to be sent after `resend` others;
    /// its span is a child of the current one (the chain's).
    #[inline]
    pub(crate) fn begin(
        #[allow(unused_variables)] lazy: &Lazy,
        #[allow(unused_variables)] resend: u32,
    ) -> Self {
        Self {
            started: Instant::now(),
            #[cfg(feature = "tracing")]
            span: if tracing::level_enabled!(tracing::Level::INFO) {
                spans::hop(lazy, resend, None)
            } else {
                None
            },
        }
    }

    /// The same, with the chain's span as the parent (for a first hop sent
    /// outside the chain's future: the tower layer's).
    #[cfg(feature = "tower")]
    pub(crate) fn begin_under(
        #[allow(unused_variables)] lazy: &Lazy,
        #[cfg(feature = "tracing")] chain: &tracing::Span,
    ) -> Self {
        Self {
            started: Instant::now(),
            #[cfg(feature = "tracing")]
            span: spans::hop(lazy, 0, Some(chain)),
        }
    }

    /// When the chain's first request was sent (this one's, for the first).
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Run `f` in the hop's span (the transport's own spans and events are
    /// then its children).
    #[inline]
    pub(crate) fn in_span<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        let _entered = self.span.as_ref().map(|span| span.enter());
        f()
    }

    /// The hop's span, where someone listens.
    #[cfg(feature = "tracing")]
    pub(crate) fn span(&self) -> Option<&tracing::Span> {
        self.span.as_deref()
    }

    /// The response head came: the instant, returned. Its span (where
    /// someone listens) gets the answer and the figures. `again`: not the
    /// chain's first send; `has_body`: it was sent with the body.
    pub(crate) fn answered<B>(
        &self,
        #[allow(unused_variables)] response: &impl Answer,
        #[allow(unused_variables)] body: &Replay<B>,
        #[allow(unused_variables)] again: bool,
        #[allow(unused_variables)] has_body: bool,
    ) -> Instant {
        let now = Instant::now();
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.span {
            let figures = self.cost(now, body, again, has_body, response.remote_addr());
            spans::answered(span, response, &figures);
        }
        now
    }

    /// What the hop cost, its head having come at `head_at` (the body's
    /// counts are frozen once a 3xx paused it).
    pub(crate) fn cost<B>(
        &self,
        head_at: Instant,
        body: &Replay<B>,
        again: bool,
        has_body: bool,
        remote_addr: Option<std::net::SocketAddr>,
    ) -> HopCost {
        let (body_bytes_sent, replayed_bytes) = body.hop_figures(has_body, again);
        HopCost {
            elapsed: head_at.saturating_duration_since(self.started),
            body_bytes_sent,
            replayed_bytes,
            remote_addr,
        }
    }

    /// The chain failed while this hop was the current one.
    pub(crate) fn failed(&self, #[allow(unused_variables)] kind: Option<ErrorKind>) {
        #[cfg(feature = "tracing")]
        if let (Some(kind), Some(span)) = (kind, &self.span) {
            spans::failed(span, kind);
        }
    }
}

#[cfg(feature = "tracing")]
pub(crate) mod spans {
    //! The spans and their fields.

    use std::fmt;

    use http::Uri;
    use tracing::field::{display, Empty};
    use url::Url;

    use super::super::{Answer, Lazy};
    use crate::engine::history::HopCost;
    use crate::{ErrorKind, Policy};

    /// The query parameters whose values `url.full` never shows (the
    /// conventions' list: presigned URLs of S3, Azure, Google Cloud).
    pub(crate) const REDACTED_QUERY: [&str; 7] = [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "AWSAccessKeyId",
        "Signature",
        "sig",
        "X-Goog-Signature",
    ];

    /// A hop's span. `resend`: requests of the chain sent before it.
    pub(crate) fn hop(
        lazy: &Lazy,
        resend: u32,
        parent: Option<&tracing::Span>,
    ) -> Option<Box<tracing::Span>> {
        // No subscriber at INFO: nothing is built or formatted.
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return None;
        }
        let method = lazy.method().as_str();
        let (host, port, full) = match lazy {
            Lazy::Ready(chain) => (
                chain.url().host_str().unwrap_or_default().to_owned(),
                chain.url().port_or_known_default(),
                Full::Url(chain.url(), chain.policy()),
            ),
            Lazy::Later(parts) => (
                parts.uri.host().unwrap_or_default().to_owned(),
                super::super::port_of(&parts.uri),
                Full::Uri(&parts.uri, &parts.policy),
            ),
        };
        macro_rules! hop_span {
            ($($parent:tt)*) => {
                tracing::info_span!(
                    $($parent)*
                    "redirect_policy.hop",
                    otel.name = method,
                    otel.kind = "client",
                    otel.status_code = Empty,
                    http.request.method = method,
                    server.address = host.as_str(),
                    server.port = port,
                    url.full = %full,
                    http.request.resend_count = Empty,
                    network.protocol.version = Empty,
                    network.peer.address = Empty,
                    network.peer.port = Empty,
                    http.response.status_code = Empty,
                    "error.type" = Empty,
                    redirect_policy.body_action = Empty,
                    redirect_policy.stripped_headers = Empty,
                    redirect_policy.remembered = Empty,
                    redirect_policy.body_bytes_sent = Empty,
                    redirect_policy.replayed_bytes = Empty,
                    redirect_policy.elapsed_us = Empty,
                )
            };
        }
        let span = if let Some(parent) = parent {
            hop_span!(parent: parent,)
        } else {
            hop_span!()
        };
        if span.is_disabled() {
            return None;
        }
        if resend > 0 {
            span.record("http.request.resend_count", resend);
        }
        // The redirect this request comes from: what it did to the request.
        if let Lazy::Ready(chain) = lazy {
            if let Some(last) = chain.history().last() {
                let stripped = Names(last.stripped_headers());
                span.record(
                    "redirect_policy.body_action",
                    tracing::field::debug(last.body()),
                );
                span.record("redirect_policy.stripped_headers", display(stripped));
                span.record("redirect_policy.remembered", last.is_remembered());
            }
        }
        Some(Box::new(span))
    }

    /// The response head: status, protocol, peer and the hop's figures; a
    /// final 4xx or 5xx is an error, with its status as the type.
    pub(crate) fn answered(span: &tracing::Span, response: &impl Answer, cost: &HopCost) {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        span.record("network.protocol.version", version(response.version()));
        if let Some(peer) = cost.remote_addr {
            span.record("network.peer.address", display(peer.ip()));
            span.record("network.peer.port", peer.port());
        }
        span.record("redirect_policy.body_bytes_sent", cost.body_bytes_sent);
        span.record("redirect_policy.replayed_bytes", cost.replayed_bytes);
        span.record(
            "redirect_policy.elapsed_us",
            u64::try_from(cost.elapsed.as_micros()).unwrap_or(u64::MAX),
        );
        if status.is_client_error() || status.is_server_error() {
            span.record("error.type", status.as_str());
            span.record("otel.status_code", "ERROR");
        }
    }

    /// The chain failed at this hop.
    pub(crate) fn failed(span: &tracing::Span, kind: ErrorKind) {
        span.record("error.type", tracing::field::debug(kind));
        span.record("otel.status_code", "ERROR");
    }

    /// The chain's span, at its end: the final status and the hops followed.
    pub(crate) fn chain_done(status: http::StatusCode, hops: usize) {
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return;
        }
        let span = tracing::Span::current();
        span.record("http.response.status_code", status.as_u16());
        span.record("redirect_policy.hops", hops);
    }

    /// `network.protocol.version` as the conventions write it.
    fn version(version: http::Version) -> &'static str {
        match version {
            http::Version::HTTP_09 => "0.9",
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_3 => "3",
            _ => "1.1",
        }
    }

    /// Header names, comma-separated.
    struct Names<'a>(&'a [http::HeaderName]);

    impl fmt::Display for Names<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (i, name) in self.0.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                f.write_str(name.as_str())?;
            }
            Ok(())
        }
    }

    /// `url.full`: no userinfo, no fragment, and the values of the signature
    /// parameters (the conventions' list and the policy's) `REDACTED`.
    pub(crate) enum Full<'a> {
        Url(&'a Url, &'a Policy),
        Uri(&'a Uri, &'a Policy),
    }

    impl fmt::Display for Full<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let (scheme, host_port, path, query, policy) = match *self {
                Full::Url(url, policy) => {
                    let host_port = &url[url::Position::BeforeHost..url::Position::AfterPort];
                    (url.scheme(), host_port, url.path(), url.query(), policy)
                }
                Full::Uri(uri, policy) => {
                    let authority = uri.authority().map_or("", http::uri::Authority::as_str);
                    let host_port = authority.rsplit('@').next().unwrap_or(authority);
                    (
                        uri.scheme_str().unwrap_or_default(),
                        host_port,
                        uri.path(),
                        uri.query(),
                        policy,
                    )
                }
            };
            write!(f, "{scheme}://{host_port}{path}")?;
            let Some(query) = query else {
                return Ok(());
            };
            f.write_str("?")?;
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                let (name, value) = match pair.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (pair, None),
                };
                let secret = REDACTED_QUERY
                    .iter()
                    .copied()
                    .chain(policy.redacted_query_parameters().iter().map(AsRef::as_ref))
                    .any(|secret| secret.eq_ignore_ascii_case(name));
                match value {
                    Some(_) if secret => write!(f, "{name}=REDACTED")?,
                    Some(value) => write!(f, "{name}={value}")?,
                    None => f.write_str(name)?,
                }
            }
            Ok(())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn url_full_has_no_userinfo_and_no_signature_values() {
            let policy = Policy::standard().redact_query_parameter("token");
            let url = Url::parse(
                "https://user:pw@bucket.s3.example.com:8443/k?X-Amz-Credential=AKIA%2F1&\
                 x-amz-signature=abc&part=2&flag&Token=t0k&sig=s#frag",
            )
            .unwrap();
            let shown = Full::Url(&url, &policy).to_string();
            assert_eq!(
                shown,
                "https://bucket.s3.example.com:8443/k?X-Amz-Credential=REDACTED&\
                 x-amz-signature=REDACTED&part=2&flag&Token=REDACTED&sig=REDACTED"
            );
            let uri: Uri = "http://a:b@h/p?AWSAccessKeyId=1&Signature=2&q=3"
                .parse()
                .unwrap();
            assert_eq!(
                Full::Uri(&uri, &policy).to_string(),
                "http://h/p?AWSAccessKeyId=REDACTED&Signature=REDACTED&q=3"
            );
        }
    }
}
