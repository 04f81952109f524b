//! [`Error`], the crate's one error type, and [`ErrorKind`].

use std::fmt;

use http::{HeaderValue, StatusCode};
use url::Url;

use crate::{AddressSpace, History};

/// A boxed error, as transports give them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong. Each variant says when it happens and how to avoid it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The chain needed more redirects than [`Policy::max_redirects`](crate::Policy::max_redirects)
    /// allows (default 10). The error carries the last 3xx's status and
    /// Location. Raise the limit, or use [`Policy::none`](crate::Policy::none)
    /// to see the first redirect.
    TooManyRedirects,
    /// A proven loop: the same method and URL got the same status and
    /// Location again, and no response in the cycle set a cookie. It fails
    /// before the limit is reached. Fix the server's redirect rules.
    RedirectLoop,
    /// The Location could not be used: it is not a valid URL reference, or
    /// the response has several Location fields with different values.
    /// A missing or empty Location is not an error: the 3xx is returned.
    InvalidLocation,
    /// The Location's scheme is not http or https (`file:`, `data:`,
    /// `ftp:`, `javascript:`, ...). Nothing more is sent.
    SchemeNotAllowed,
    /// An https URL redirected to plain http. Allow it with
    /// [`Policy::https_downgrade`](crate::Policy::https_downgrade)`(Downgrade::Allow)`;
    /// credentials are stripped all the same.
    InsecureRedirect,
    /// A hop had to replay the request body but could not: the body was a
    /// stream larger than [`Policy::max_replay_body`](crate::Policy::max_replay_body),
    /// or the stream failed. Raise the cap, send the body from memory, or set
    /// [`UnreplayableBody::ReturnRedirect`](crate::UnreplayableBody::ReturnRedirect)
    /// to get the 3xx back instead.
    BodyNotReplayable,
    /// Sending a request or reading its response failed (connection refused
    /// or dropped, TLS, protocol error, the body stream failed), or the
    /// writer given to the blocking `Response::copy_to` failed. The source
    /// is the transport's (or the writer's) error.
    Request,
    /// The timeout set on the request ran out. It covers the whole chain,
    /// not each hop.
    Timeout,
    /// The redirect hook returned an error (its error is the source).
    Hook,
    /// The client or the request could not be built: a bad URL or header
    /// given to the builder, or a TLS backend that failed to start (see the
    /// source). Also a reqwest client that follows redirects itself (given
    /// to [`Client::from_reqwest`](crate::Client::from_reqwest) or below the
    /// middleware): build it with `redirect(reqwest::redirect::Policy::none())`.
    Builder,
    /// A response body could not be decoded: JSON that does not match the
    /// type asked for, or a compressed or charset-encoded body that is
    /// corrupt (the source says which).
    Decode,
    /// The final response had an error status and `error_for_status` was
    /// asked for; [`Error::status`] gives it.
    Status,
    /// The network guard refused a hop: under
    /// [`NetworkGuard::NoEscalation`](crate::NetworkGuard::NoEscalation) (the
    /// default) a redirect led to an address space more private than the
    /// chain's first hop reached (a public server redirecting to 127.0.0.1 or
    /// 169.254.169.254); under
    /// [`NetworkGuard::PublicOnly`](crate::NetworkGuard::PublicOnly) a hop
    /// would reach an address that is not public and global. An IP literal or
    /// a local name is refused before anything is sent to it; a name is
    /// checked against the address that answered, and the response is
    /// withheld unread. [`Error::url`] is the refused URL, and the history is
    /// the chain so far. Exempt a network with
    /// [`Policy::allow_network`](crate::Policy::allow_network), or turn the
    /// guard off with [`NetworkGuard::Off`](crate::NetworkGuard::Off).
    PrivateNetwork,
}

/// The detail behind a kind: the words of the message, and any source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Detail {
    #[error(
        "too many redirects: the limit is {max}; raise it with Policy::max_redirects, \
         or use Policy::none() to see the redirect"
    )]
    TooManyRedirects { max: usize },
    #[error(
        "redirect loop: the same request was redirected to the same Location again, \
         with no cookie set in between; the server's redirect rules need fixing"
    )]
    RedirectLoop,
    #[error(
        "invalid Location header: several fields with different values; \
         the server must send exactly one"
    )]
    ConflictingLocations,
    #[error("invalid Location header: {0}; the server must send a valid URL reference")]
    UnparsableLocation(#[source] url::ParseError),
    #[error(
        "invalid Location header: it resolves to a URL of {len} bytes, longer than \
         the {max} an HTTP request target can carry"
    )]
    LocationTooLong { len: usize, max: usize },
    #[error("redirect to a `{scheme}:` URL refused: only http and https are followed")]
    SchemeNotAllowed { scheme: String },
    #[error(
        "redirect from https to http refused: it would send the request in clear text; \
         allow it with Policy::https_downgrade(Downgrade::Allow)"
    )]
    InsecureRedirect,
    #[error(
        "the request body cannot be sent again: the stream was longer than \
         max_replay_body ({cap} bytes); raise Policy::max_replay_body, send the body \
         from memory, or set UnreplayableBody::ReturnRedirect to get the redirect back"
    )]
    BodyOverCap { cap: usize },
    #[error(
        "the request body cannot be sent again: its stream failed; \
         set UnreplayableBody::ReturnRedirect to get the redirect back"
    )]
    BodyFailed,
    #[error("error sending request")]
    Request(#[source] BoxError),
    #[error(
        "timed out: the request's timeout covers the whole redirect chain; raise it \
         with RequestBuilder::timeout"
    )]
    Timeout(#[source] Option<BoxError>),
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // made by the reqwest adapter only
    #[error("the redirect hook failed")]
    Hook(#[source] BoxError),
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // made by the reqwest adapter only
    #[error("could not build the client")]
    Builder(#[source] BoxError),
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // made by the reqwest adapter only
    #[error("could not build the request")]
    InvalidRequest(#[source] BoxError),
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // made by the reqwest adapter only
    #[error(
        "the reqwest client followed a redirect itself, past this crate's rules \
         ({sent} was answered from {answered}); build it with \
         .redirect(reqwest::redirect::Policy::none()), or use Client::from_builder"
    )]
    FollowedBelow { sent: String, answered: String },
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // made by the reqwest adapter only
    #[error(
        "the reqwest client gave up on redirects of its own; build it with \
         .redirect(reqwest::redirect::Policy::none()), or use Client::from_builder"
    )]
    RedirectedBelow(#[source] BoxError),
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))] // made by the blocking client only
    #[error("could not write the response body to the writer given")]
    Write(#[source] std::io::Error),
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // made by the reqwest adapter only
    #[error("error decoding the response body")]
    Decode(#[source] BoxError),
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // made by the reqwest adapter only
    #[error("HTTP status {}", status_words(*.0))]
    Status(StatusCode, #[source] BoxError),
    #[error(
        "redirect from a {from} address to a {to} one ({addr}) refused; allow it with \
         Policy::allow_network, or turn the guard off with NetworkGuard::Off"
    )]
    Escalation {
        from: AddressSpace,
        to: AddressSpace,
        addr: String,
    },
    #[error(
        "request to a {to} address ({addr}) refused: NetworkGuard::PublicOnly lets a chain reach \
         public, globally routable addresses only; allow it with Policy::allow_network, or \
         choose NetworkGuard::NoEscalation or NetworkGuard::Off"
    )]
    NotPublic { to: &'static str, addr: String },
}

/// reqwest's words for an error status: "client error (404 Not Found)".
fn status_words(status: StatusCode) -> String {
    let class = if status.is_client_error() {
        "client error"
    } else {
        "server error"
    };
    format!("{class} ({status})")
}

impl Detail {
    fn kind(&self) -> ErrorKind {
        match self {
            Detail::TooManyRedirects { .. } => ErrorKind::TooManyRedirects,
            Detail::RedirectLoop => ErrorKind::RedirectLoop,
            Detail::ConflictingLocations
            | Detail::UnparsableLocation(_)
            | Detail::LocationTooLong { .. } => ErrorKind::InvalidLocation,
            Detail::SchemeNotAllowed { .. } => ErrorKind::SchemeNotAllowed,
            Detail::InsecureRedirect => ErrorKind::InsecureRedirect,
            Detail::BodyOverCap { .. } | Detail::BodyFailed => ErrorKind::BodyNotReplayable,
            Detail::Request(_) | Detail::Write(_) => ErrorKind::Request,
            Detail::Timeout(_) => ErrorKind::Timeout,
            Detail::Hook(_) => ErrorKind::Hook,
            Detail::Builder(_)
            | Detail::InvalidRequest(_)
            | Detail::FollowedBelow { .. }
            | Detail::RedirectedBelow(_) => ErrorKind::Builder,
            Detail::Decode(_) => ErrorKind::Decode,
            Detail::Status(..) => ErrorKind::Status,
            Detail::Escalation { .. } | Detail::NotPublic { .. } => ErrorKind::PrivateNetwork,
        }
    }
}

/// The crate's error: a kind, the URL concerned, the redirect history so far,
/// the 3xx status and Location that led to it (for redirect errors), and a
/// source (for transport errors).
///
/// URLs can carry secrets (tokens in a query, userinfo), so
/// [`Error::without_url`] drops every URL the error holds before you log it.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    detail: Detail,
    url: Option<Url>,
    status: Option<StatusCode>,
    location: Option<HeaderValue>,
    history: History,
    marks: Marks,
}

/// What a transport's error said of itself, kept for the `is_*` predicates
/// that no kind answers (reqwest's `is_connect`, `is_body`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Marks {
    pub(crate) connect: bool,
    pub(crate) body: bool,
}

impl Error {
    pub(crate) fn new(detail: Detail) -> Self {
        Self {
            inner: Box::new(Inner {
                detail,
                url: None,
                status: None,
                location: None,
                history: History::default(),
                marks: Marks::default(),
            }),
        }
    }

    pub(crate) fn with_url(mut self, url: Url) -> Self {
        self.inner.url = Some(url);
        self
    }

    pub(crate) fn with_redirect(
        mut self,
        status: StatusCode,
        location: Option<HeaderValue>,
    ) -> Self {
        self.inner.status = Some(status);
        self.inner.location = location;
        self
    }

    pub(crate) fn with_history(mut self, history: History) -> Self {
        self.inner.history = history;
        self
    }

    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // marked by the reqwest adapter only
    pub(crate) fn with_marks(mut self, marks: Marks) -> Self {
        self.inner.marks = marks;
        self
    }

    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // used by the reqwest adapter only
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.inner.detail.kind()
    }

    /// The URL concerned: the redirect's target where it was resolved,
    /// otherwise the URL of the request that failed.
    #[must_use]
    pub fn url(&self) -> Option<&Url> {
        self.inner.url.as_ref()
    }

    /// The status of the response that led to the error: the 3xx for
    /// redirect errors, the error status for [`ErrorKind::Status`] (as
    /// reqwest's `Error::status` gives it).
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The raw Location of the 3xx response that led to the error, as the
    /// server sent it.
    #[must_use]
    pub fn location(&self) -> Option<&HeaderValue> {
        self.inner.location.as_ref()
    }

    /// The redirects followed before the error.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.inner.history
    }

    /// Drop every URL this error holds (its URL, the Location and the
    /// history), so that it can be logged without leaking tokens.
    #[must_use]
    pub fn without_url(mut self) -> Self {
        self.inner.url = None;
        self.inner.location = None;
        self.inner.history = History::default();
        self
    }

    /// True for [`ErrorKind::Timeout`]: the request's timeout ran out, on
    /// any hop or while reading the final body.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// True for [`ErrorKind::Builder`].
    #[must_use]
    pub fn is_builder(&self) -> bool {
        self.kind() == ErrorKind::Builder
    }

    /// True for the errors of a redirect itself: [`ErrorKind::TooManyRedirects`],
    /// [`RedirectLoop`](ErrorKind::RedirectLoop), [`InvalidLocation`](ErrorKind::InvalidLocation),
    /// [`SchemeNotAllowed`](ErrorKind::SchemeNotAllowed) and
    /// [`InsecureRedirect`](ErrorKind::InsecureRedirect).
    #[must_use]
    pub fn is_redirect(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::TooManyRedirects
                | ErrorKind::RedirectLoop
                | ErrorKind::InvalidLocation
                | ErrorKind::SchemeNotAllowed
                | ErrorKind::InsecureRedirect
        )
    }

    /// True for [`ErrorKind::PrivateNetwork`]: the network guard refused a
    /// hop.
    #[must_use]
    pub fn is_private_network(&self) -> bool {
        self.kind() == ErrorKind::PrivateNetwork
    }

    /// True for [`ErrorKind::Status`] (from `error_for_status`).
    #[must_use]
    pub fn is_status(&self) -> bool {
        self.kind() == ErrorKind::Status
    }

    /// True for [`ErrorKind::Request`]: sending a request or reading its
    /// response failed.
    #[must_use]
    pub fn is_request(&self) -> bool {
        self.kind() == ErrorKind::Request
    }

    /// True when connecting failed (reqwest's `is_connect`; through the
    /// tower layer, look at the source).
    #[must_use]
    pub fn is_connect(&self) -> bool {
        self.inner.marks.connect
    }

    /// True for an error of a body: a request body that cannot be replayed
    /// ([`ErrorKind::BodyNotReplayable`]), or a body that failed while it was
    /// sent or read (reqwest's `is_body`).
    #[must_use]
    pub fn is_body(&self) -> bool {
        self.kind() == ErrorKind::BodyNotReplayable || self.inner.marks.body
    }

    /// True for [`ErrorKind::Decode`]: a response body that could not be
    /// decoded (JSON, compression, charset).
    #[must_use]
    pub fn is_decode(&self) -> bool {
        self.kind() == ErrorKind::Decode
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("redirect_policy::Error");
        d.field("kind", &self.kind());
        if let Some(url) = &self.inner.url {
            d.field("url", &Escaped(url.as_str().as_bytes()));
        }
        if let Some(status) = self.inner.status {
            d.field("status", &status);
        }
        if let Some(location) = &self.inner.location {
            d.field("location", &Escaped(location.as_bytes()));
        }
        d.field("hops", &self.inner.history.len());
        if let Some(source) = std::error::Error::source(&self.inner.detail) {
            d.field("source", &source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner.detail, f)?;
        if let (Some(status), Some(location)) = (self.inner.status, &self.inner.location) {
            write!(
                f,
                " ({} with Location {})",
                status.as_u16(),
                Escaped(location.as_bytes())
            )?;
        }
        if let Some(url) = &self.inner.url {
            write!(f, " for url {}", Escaped(url.as_str().as_bytes()))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.inner.detail)
    }
}

/// A raw header value shown quoted, escaped, and cut to a readable length.
struct Escaped<'a>(&'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 120;
        let shown = &self.0[..self.0.len().min(SHOWN)];
        write!(f, "\"{}\"", shown.escape_ascii())?;
        if self.0.len() > SHOWN {
            write!(f, "... ({} bytes in all)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_without_period_and_escape_locations() {
        let err = Error::new(Detail::ConflictingLocations)
            .with_redirect(
                StatusCode::FOUND,
                Some(HeaderValue::from_bytes(b"/a\xff").unwrap()),
            )
            .with_url(Url::parse("http://h/x?token=s").unwrap());
        let text = err.to_string();
        assert!(text.starts_with("invalid Location"), "{text}");
        assert!(text.contains(r#""/a\xff""#), "{text}");
        assert!(!text.ends_with('.'));
        let bare = err.without_url().to_string();
        assert!(!bare.contains("token"), "{bare}");
    }

    #[test]
    fn long_locations_are_cut() {
        let long = HeaderValue::from_str(&"a".repeat(65536)).unwrap();
        let err =
            Error::new(Detail::ConflictingLocations).with_redirect(StatusCode::FOUND, Some(long));
        let text = err.to_string();
        assert!(text.len() < 600, "{}", text.len());
        assert!(text.contains("65536 bytes"));
    }
}
